"""storage/values.py: Capture and its kind behave as the frozen dataclasses they were."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass

import pytest

from storage.backends import ObjectInfo
from storage.capture import Capture, TextRecord, as_dict, field_names


@dataclass(frozen=True, slots=True)
class Reference:  # what Capture was, field for field
    urlkey: str
    timestamp: str
    url: str
    status: int | None
    mime: str | None
    digest: str | None
    warc: str
    offset: int
    length: int
    record_id: str | None = None
    source: str | None = None
    text: bool = False
    warc_date: str | None = None


ARGS = ("com,example)/a", "20240501120000", "http://example.com/a", 200, "text/html", "sha1:X", "warc/x.warc.gz", 10, 20)


def test_capture_is_built_and_compared_as_the_dataclass_was():
    ours, ref = Capture(*ARGS, source="news"), Reference(*ARGS, source="news")
    assert as_dict(ours) == {name: getattr(ref, name) for name in field_names(Capture)}
    assert field_names(Capture) == tuple(Reference.__dataclass_fields__)
    assert ours == Capture(*ARGS[:3], status=200, mime="text/html", digest="sha1:X", warc="warc/x.warc.gz",
                           offset=10, length=20, source="news")
    assert ours != Capture(*ARGS) and ours != ref  # another class is never equal
    assert hash(ours) == hash(Capture(*ARGS, source="news")) and len({ours, Capture(*ARGS, source="news")}) == 1
    assert repr(ours).replace("Capture(", "Reference(") == repr(ref)
    assert ours.with_text(True).text is True and ours.text is False
    assert pickle.loads(pickle.dumps(ours)) == ours and copy.deepcopy(ours) == ours


def test_capture_is_immutable_and_its_arguments_checked():
    capture = Capture(*ARGS)
    with pytest.raises(AttributeError):
        capture.url = "x"
    with pytest.raises(AttributeError):
        del capture.url
    with pytest.raises(AttributeError):
        capture.other = 1  # slots: no new attributes
    with pytest.raises(TypeError):
        Capture(*ARGS[:8])
    with pytest.raises(TypeError):
        Capture(*ARGS, nonsense=1)
    with pytest.raises(TypeError):
        Capture(*ARGS, url="twice")


def test_text_record_and_object_info():
    row = {"refers_to": "<urn:uuid:1>", "record_id": "<urn:uuid:2>", "url": "http://example.com/a",
           "timestamp": "20240501120000", "digest": None, "warc": "warc/x.text.warc.gz", "offset": 0, "length": 9}
    assert as_dict(TextRecord(**row)) == row
    assert ObjectInfo("k", 3) == ObjectInfo("k", 3, None) != ObjectInfo("k", 3, "ab")


@pytest.mark.parametrize("xdg", [None, "", "   ", "/tmp/xdg-cache", "/tmp/xdg-cache/", "relative/dir", "~/cache"])
@pytest.mark.parametrize("home", [None, "/root", "/home/someone/", "relative"])
def test_the_s3_catalog_folder_is_platformdirs_cache_folder(monkeypatch, xdg, home):
    import platformdirs

    from storage.catalog import user_cache_dir

    for name, value in (("XDG_CACHE_HOME", xdg), ("HOME", home)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert user_cache_dir() == platformdirs.user_cache_dir("newsarchive")
