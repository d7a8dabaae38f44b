"""Where archives live: a local folder or an S3 bucket, behind one interface.

Archived objects are write-once: ``put_file``/``put_bytes`` never replace an
object. Writing the same bytes again is a no-op (a retried upload), other bytes
raise ObjectExistsError. There is deliberately no delete.

Every failure reaches callers as a StorageError with a one-line message; no
boto or OS traceback is meant for the user.
"""

from __future__ import annotations

import abc
import errno
import io
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from storage import layout
from storage.errors import NotFound, StorageError
from storage.values import Value

TYPE_CHECKING = False  # typing costs ~2 ms to import; BinaryIO is only an annotation here
if TYPE_CHECKING:
    from typing import BinaryIO

DEFAULT_LOCATION = "./archive"
DEFAULT_MULTIPART_THRESHOLD = 64 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest allowed part (except the last)
CHUNK = 1024 * 1024
TEMP_PREFIX = ".tmp-"  # never a valid key part, so listings skip temp files


def fsync_dir(folder: Path) -> None:
    """Make a rename or new entry in `folder` durable (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the data itself was synced
    finally:
        os.close(fd)

class ObjectExistsError(StorageError):
    """The key already holds different content; archived objects are never replaced."""

    http_status = 409


class ObjectNotFoundError(StorageError, NotFound):
    """No object at that key."""

    http_status = 404


class BackendUnavailableError(StorageError):
    """The whole backend is unusable (unreachable, no credentials, no bucket): stop trying."""

    http_status = 503


class ObjectInfo(Value):
    """key, size, sha256 (None when the backend does not know it)."""

    __slots__ = ("key", "size", "sha256")
    DEFAULTS = {"sha256": None}


# hashlib and secrets are imported where something is written or verified: a look-up
# (`newsarchive get` on a folder) reads one range and should not load OpenSSL for it.

def file_digest(path: str | os.PathLike) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def stream_digest(stream: BinaryIO) -> tuple[int, str]:
    import hashlib

    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return size, h.hexdigest()


def _key(key: str) -> str:
    try:
        return layout.check_key(key)
    except layout.UnsafeKeyError as e:
        raise StorageError(str(e)) from None


def _prefix(prefix: str) -> str:
    try:
        return layout.check_prefix(prefix)
    except layout.UnsafeKeyError as e:
        raise StorageError(str(e)) from None


def _check_range(offset: int, length: int) -> None:
    if offset < 0 or length < 0:
        raise StorageError(f"invalid byte range: offset {offset}, length {length}")


class Backend(abc.ABC):
    """An archive: write-once objects under validated keys (see storage.layout)."""

    location: str

    @abc.abstractmethod
    def put_file(self, key: str, path: str | os.PathLike) -> ObjectInfo: ...

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at the end of the object)."""

    @abc.abstractmethod
    def open_stream(self, key: str) -> BinaryIO:
        """A readable binary stream of the whole object; close it when done."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Archive keys starting with ``prefix``, in lexicographic order."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def _same_or_conflict(self, key: str, existing: ObjectInfo, size: int, sha: str) -> ObjectInfo:
        if existing.size == size and existing.sha256 is None:
            # Written by another tool without our metadata: compare the bytes.
            with self.open_stream(key) as stream:
                existing = ObjectInfo(key, *stream_digest(stream))
        if existing.size == size and existing.sha256 == sha:
            return ObjectInfo(key, size, sha)
        raise ObjectExistsError(f"{self.location}: {key} already exists with different content; archived objects are never replaced")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


# --------------------------------------------------------------------------- local


class LocalBackend(Backend):
    """An archive in a folder: ROOT/KEY, written atomically, never overwritten."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.location = str(self.root)
        self._resolved_root: str | None = None
        if self.root.exists() and not self.root.is_dir():
            raise StorageError(f"archive location is not a folder: {self.root}")

    def _path(self, key: str) -> Path:
        """Resolve a key to a path that provably stays inside the root."""
        key = _key(key)
        path = self.root.joinpath(*key.split("/"))
        self._inside(path, key)
        return path

    def _real_root(self) -> str:
        # The root is the user's own choice and resolved once it exists; every key below it is
        # resolved on each use (realpath walks each part: a third of an upload's CPU was this).
        if self._resolved_root is None:
            resolved = os.path.realpath(self.root)
            if not self.root.is_dir():
                return resolved
            self._resolved_root = resolved
        return self._resolved_root

    def _inside(self, path: Path, what: str) -> None:
        # realpath follows every existing symlink, so a link planted in the
        # archive that points elsewhere is caught before anything is written.
        root = self._real_root()
        if self._plain_below(root, path):
            return
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + os.sep):
            raise StorageError(f"archive key {what!r} resolves outside the archive {self.location}")

    def _plain_below(self, root: str, path: Path) -> bool:
        """True when `path` (the root and a key's plain parts) has no symlink below the
        resolved root: it then resolves to the root's real path and those parts, inside.
        One lstat a part (10 us a key) instead of realpath's walk from / (26 us); any
        link, or a root not resolved yet, is left to realpath."""
        base = self.root.parts
        if self._resolved_root is None or path.parts[:len(base)] != base:
            return False
        current = root
        for part in path.parts[len(base):]:
            current = current + os.sep + part
            try:
                mode = os.lstat(current).st_mode
            except FileNotFoundError:
                return True  # nothing below a missing part exists: the rest is literal
            except OSError:
                return False
            if stat.S_ISLNK(mode):
                return False
        return True

    def _write(self, key: str, fill) -> ObjectInfo:
        import hashlib
        import secrets

        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._inside(path.parent, key)  # re-check: mkdir may have raced a symlink
            tmp = path.parent / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            h = hashlib.sha256()
            size = 0
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in fill():
                        out.write(chunk)
                        h.update(chunk)
                        size += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                sha = h.hexdigest()
                try:
                    # link() fails if the key exists: no-overwrite without a race,
                    # and the final name only ever appears with complete content.
                    os.link(tmp, path)
                except FileExistsError:
                    if path.is_symlink() or not path.is_file():
                        raise StorageError(f"cannot write {key} to {self.location}: the key is taken by a folder or link") from None
                    return self._same_or_conflict(key, self._stat_path(key, path), size, sha)
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                        raise
                    # No hard links on this filesystem: check, then rename.
                    if os.path.lexists(path):
                        return self._same_or_conflict(key, self._stat_path(key, path), size, sha)
                    os.rename(tmp, path)
                fsync_dir(path.parent)
                return ObjectInfo(key, size, sha)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
        except StorageError:
            raise
        except OSError as e:
            raise StorageError(f"cannot write {key} to {self.location}: {e.strerror or e}") from None

    def put_file(self, key: str, path: str | os.PathLike) -> ObjectInfo:
        try:
            src = open(path, "rb")
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror or e}") from None
        with src:
            return self._write(key, lambda: iter(lambda: src.read(CHUNK), b""))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        return self._write(key, lambda: [bytes(data)])

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            if path.is_symlink() or not path.is_file():
                raise FileNotFoundError
            return open(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no such object in {self.location}: {key}") from None
        except OSError as e:
            raise StorageError(f"cannot read {key} from {self.location}: {e.strerror or e}") from None

    def get_bytes(self, key: str) -> bytes:
        with self._open(key) as f:
            return f.read()

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        with self._open(key) as f:
            f.seek(offset)
            return f.read(length)

    def open_stream(self, key: str) -> BinaryIO:
        return self._open(key)

    def _stat_path(self, key: str, path: Path) -> ObjectInfo:
        with self._open(key) as f:
            return ObjectInfo(key, *stream_digest(f))

    def stat(self, key: str) -> ObjectInfo | None:
        # A folder keeps no metadata, so sha256 is computed by reading the file.
        try:
            return self._stat_path(key, self._path(key))
        except ObjectNotFoundError:
            return None

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = _prefix(prefix)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        self._inside(start, prefix)
        yield from self._walk(start, folder, prefix)

    def _walk(self, folder: Path, rel: str, prefix: str) -> Iterator[str]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise StorageError(f"cannot list {folder}: {e.strerror or e}") from None
        # Sort as full keys sort ("a/..." after "a-b/..."), matching S3's order.
        items = sorted((e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e) for e in entries)
        for name, entry in items:
            if entry.is_symlink() or not layout.SAFE_PART.match(entry.name):
                continue  # archived objects are never links; temp files start with "."
            key = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                if (key + "/").startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix):
                try:
                    layout.check_key(key)
                except layout.UnsafeKeyError:
                    continue  # e.g. catalog.sqlite: not an archived object
                yield key


# --------------------------------------------------------------------------- S3

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_UNAVAILABLE_CODES = {
    "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem",
}


class _S3Stream(io.RawIOBase):
    """A GetObject body whose read errors become StorageError."""

    def __init__(self, body, fail):
        self._body = body
        self._fail = fail

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        try:
            data = self._body.read(len(buf))
        except Exception as e:  # urllib3/botocore errors mid-stream
            raise self._fail(e) from None
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


class S3Backend(Backend):
    """An archive in an S3 (or S3-compatible) bucket under a key prefix.

    Endpoint, credentials and region come only from the standard AWS
    variables and profiles (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_PROFILE, ...).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        multipart_chunksize: int | None = None,
        max_attempts: int | None = None,
    ):
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise StorageError(f"not a valid S3 bucket name: {bucket!r}")
        prefix = prefix.strip("/")
        for part in prefix.split("/") if prefix else []:
            try:
                layout.safe_part(part)
            except layout.UnsafeKeyError as e:
                raise StorageError(f"S3 archive prefix: {e}") from None
        self.bucket = bucket
        self.prefix = prefix
        self.location = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.multipart_threshold = multipart_threshold
        self.multipart_chunksize = max(MIN_PART_SIZE, multipart_chunksize or min(multipart_threshold, DEFAULT_MULTIPART_THRESHOLD))
        if max_attempts is None:
            max_attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 5)
        self.max_attempts = max_attempts
        self.list_page_size = 1000  # keys per ListObjectsV2 request (S3's maximum)
        self._client_ = None
        self._direct_ = False  # not looked for yet; then a DirectS3, or None (boto3 only)
        self._conditional_writes = True  # send If-None-Match: * until the server says it cannot

    # -- client and errors

    @property
    def _client(self):
        if self._client_ is None:
            self._client_ = self._make_client()
        return self._client_

    def _make_client(self):
        import boto3
        import botocore.exceptions
        from botocore.config import Config

        def config(path_style: bool) -> Config:
            return Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": self.max_attempts},
                s3={"addressing_style": "path"} if path_style else {},
            )

        try:
            session = boto3.session.Session()
            client = session.client("s3", config=config(False))
            host = urlparse(client.meta.endpoint_url).hostname or ""
            if not (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")):
                # S3-compatible servers (MinIO, moto, Ceph) rarely do virtual hosts.
                client = session.client("s3", config=config(True))
        except botocore.exceptions.BotoCoreError as e:
            raise BackendUnavailableError(f"cannot configure S3 for {self.location}: {e}") from None
        # If-None-Match: * also on CompleteMultipartUpload, which boto3's
        # transfer manager does not let callers pass: a botocore event hook.
        client.meta.events.register("before-parameter-build.s3.CompleteMultipartUpload", self._add_if_none_match)
        client.meta.events.register("before-parameter-build.s3.PutObject", self._add_if_none_match)
        return client

    def _direct(self):
        """Signed GETs without boto3 (storage/s3direct.py) when the settings allow, else None."""
        if self._direct_ is False:
            from storage.s3direct import DirectS3

            self._direct_ = DirectS3.from_environment(self.bucket)
        return self._direct_

    def _direct_read(self, read, key: str = ""):
        """``read(direct)`` when a direct read is possible and the server answers it; else None."""
        direct = self._direct()
        if direct is None:
            return None
        from storage.s3direct import NoSuchKey, Refused

        try:
            return read(direct)
        except NoSuchKey:  # what boto3's NoSuchKey becomes in _error, without building boto3 for it
            raise ObjectNotFoundError(f"no such object in {self.location}: {key}") from None
        except Refused:
            return None  # boto3 asks again: its retries, its errors, its messages

    def _add_if_none_match(self, params, **kwargs):
        if self._conditional_writes:
            params.setdefault("IfNoneMatch", "*")

    @property
    def endpoint(self) -> str:
        try:
            return self._client.meta.endpoint_url
        except StorageError:
            return "(unconfigured)"

    def _error(self, e: BaseException, action: str, key: str = "") -> StorageError:
        """Turn any boto/urllib3 failure into one line."""
        import botocore.exceptions as bx

        what = f"{self.location}/{key}" if key else self.location
        cause = e.__context__ if type(e).__name__ == "S3UploadFailedError" else None
        if isinstance(cause, bx.ClientError):
            e = cause
        if isinstance(e, (bx.EndpointConnectionError, bx.ConnectionClosedError, bx.ConnectTimeoutError, bx.ReadTimeoutError)) or (
            isinstance(e, bx.HTTPClientError)
        ):
            detail = str(getattr(e, "kwargs", {}).get("error", e))
            if "refused" in detail.lower():
                reason = "connection refused"
            elif isinstance(e, (bx.ConnectTimeoutError, bx.ReadTimeoutError)) or "timed out" in detail.lower():
                reason = "timed out"
            else:
                reason = detail.split(":")[-1].strip() or type(e).__name__
            return BackendUnavailableError(f"cannot reach S3 endpoint {self.endpoint}: {reason}")
        if isinstance(e, bx.NoCredentialsError):
            return BackendUnavailableError(
                f"no AWS credentials for {self.location}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            )
        if isinstance(e, bx.ClientError):
            err = e.response.get("Error", {})
            code = str(err.get("Code", "")) or str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code == "NoSuchBucket":
                return BackendUnavailableError(f"S3 bucket {self.bucket!r} does not exist at {self.endpoint}")
            if code in ("NoSuchKey", "404", "NotFound"):
                return ObjectNotFoundError(f"no such object in {self.location}: {key}")
            if code in _UNAVAILABLE_CODES or code == "403":
                return BackendUnavailableError(f"S3 refused {action} {what}: {code}")
            message = err.get("Message") or ""
            return StorageError(f"S3 {action} {what} failed: {code} {message}".strip())
        if isinstance(e, bx.BotoCoreError):
            return StorageError(f"S3 {action} {what} failed: {e}")
        return StorageError(f"S3 {action} {what} failed: {type(e).__name__}: {e}")

    def _full(self, key: str) -> str:
        key = _key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @staticmethod
    def _code(e: BaseException) -> str:
        cause = e.__context__ if type(e).__name__ == "S3UploadFailedError" else e
        response = getattr(cause, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    # -- reads

    def stat(self, key: str) -> ObjectInfo | None:
        full = self._full(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=full)
        except StorageError:
            raise
        except Exception as e:
            err = self._error(e, "stat", key)
            if isinstance(err, ObjectNotFoundError):
                return None
            raise err from None
        sha = (head.get("Metadata") or {}).get("sha256")
        return ObjectInfo(key, int(head["ContentLength"]), sha)

    def _get(self, key: str, **kwargs):
        full = self._full(key)
        try:
            return self._client.get_object(Bucket=self.bucket, Key=full, **kwargs)["Body"]
        except StorageError:
            raise
        except Exception as e:
            raise self._error(e, "read", key) from None

    def _read_all(self, key: str, body) -> bytes:
        try:
            with body:
                return body.read()
        except Exception as e:
            raise self._error(e, "read", key) from None

    def get_bytes(self, key: str) -> bytes:
        full = self._full(key)
        data = self._direct_read(lambda direct: direct.get(full), key)
        if data is not None:
            return data
        return self._read_all(key, self._get(key))

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        _check_range(offset, length)
        if length == 0:
            return b""
        full = self._full(key)
        data = self._direct_read(lambda direct: direct.get(full, (offset, offset + length - 1)), key)
        if data is not None:
            return data
        try:
            body = self._get(key, Range=f"bytes={offset}-{offset + length - 1}")
        except StorageError as e:
            if "InvalidRange" in str(e):  # offset at or past the end, as a file read gives
                return b""
            raise
        return self._read_all(key, body)

    def open_stream(self, key: str) -> BinaryIO:
        body = self._get(key)
        return io.BufferedReader(_S3Stream(body, lambda e: self._error(e, "read", key)), CHUNK)

    def list(self, prefix: str = "") -> Iterator[str]:
        prefix = _prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        found = self._direct_read(lambda direct: direct.list(base + prefix, self.list_page_size))
        if found is not None:
            for full in found:
                try:
                    yield layout.check_key(full[len(base):])
                except layout.UnsafeKeyError:
                    continue  # foreign objects in the bucket are not ours to list
            return
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base + prefix, PaginationConfig={"PageSize": self.list_page_size}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(base):]
                    try:
                        yield layout.check_key(key)
                    except layout.UnsafeKeyError:
                        continue  # foreign objects in the bucket are not ours to list
        except StorageError:
            raise
        except Exception as e:
            raise self._error(e, "list", prefix) from None

    # -- writes

    def put_file(self, key: str, path: str | os.PathLike) -> ObjectInfo:
        try:
            size, sha = file_digest(path)
        except OSError as e:
            raise StorageError(f"cannot read {path}: {e.strerror or e}") from None
        return self._put(key, size, sha, lambda: self._upload_file(key, path, sha))

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        import hashlib

        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        return self._put(
            key, len(data), sha,
            lambda: self._client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, Metadata={"sha256": sha}),
        )

    def _upload_file(self, key: str, path, sha: str) -> None:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_chunksize,
        )
        self._client.upload_file(
            str(path), self.bucket, self._full(key), ExtraArgs={"Metadata": {"sha256": sha}}, Config=config
        )

    def _put(self, key: str, size: int, sha: str, send) -> ObjectInfo:
        # HEAD first: a retried upload of the same bytes costs no transfer, and
        # servers without conditional writes still never get an overwrite here.
        existing = self.stat(key)
        if existing is not None:
            return self._same_or_conflict(key, existing, size, sha)
        try:
            send()
        except Exception as e:
            code = self._code(e)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                # Someone wrote the key between our HEAD and PUT.
                existing = self.stat(key)
                if existing is not None:
                    return self._same_or_conflict(key, existing, size, sha)
            if code == "NotImplemented" and self._conditional_writes:
                self._conditional_writes = False  # server lacks If-None-Match; HEAD still guards
                return self._put(key, size, sha, send)
            raise self._error(e, "upload", key) from None
        return ObjectInfo(key, size, sha)


# --------------------------------------------------------------------------- opening


def default_location() -> str:
    return os.environ.get("NEWSARCHIVE_ARCHIVE") or DEFAULT_LOCATION


def parse_s3_location(location: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, prefix)."""
    rest = location[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageError(f"S3 archive location needs a bucket: {location!r} (expected s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def open_backend(location: str | None = None, **options) -> Backend:
    """A backend for ``location``: ``s3://bucket/prefix`` or a folder path.

    Without a location, NEWSARCHIVE_ARCHIVE, else ./archive. ``options`` go to
    S3Backend (multipart_threshold, multipart_chunksize, max_attempts).
    """
    location = location or default_location()
    if location.startswith("s3://"):
        bucket, prefix = parse_s3_location(location)
        return S3Backend(bucket, prefix, **options)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", location):
        raise StorageError(f"unsupported archive location {location!r}: use a folder path or s3://bucket/prefix")
    return LocalBackend(location)
