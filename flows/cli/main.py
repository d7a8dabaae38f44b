"""The `newsarchive` command group, its shared options, and the one error handler.

Commands live in flows/cli/crawling.py (crawl, sources, upload, deploy,
worker, demo) and flows/cli/reading.py (list, get, search, serve, pywb, reindex,
reextract, export); each is a few lines that hand off to the module doing
the work. Heavy imports (Prefect, Scrapy, boto3, the storage facade) happen
inside the commands, so `--help` and usage errors are fast.

Errors are one line on stderr and a non-zero exit, never a traceback:
NewsarchiveError (storage/errors.py) with its own exit code, usage errors
with 2, anything unexpected as one line with a hint to rerun with `--debug`
(or NEWSARCHIVE_DEBUG=1) for the traceback. 130 when interrupted.
"""

from __future__ import annotations

import sys
from typing import Sequence

import click

from flows.cli import crawling, reading
from flows.cli.options import CONTEXT, HelpLayoutCommand, debug_option
from flows.cli.quick import DEBUG_HINT, PROG, reported  # noqa: F401 - DEBUG_HINT: said here too

class _Group(click.Group):
    command_class = HelpLayoutCommand

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "[--debug] COMMAND [ARGS]...", prefix="usage: ")

    def format_epilog(self, ctx, formatter):
        HelpLayoutCommand.format_epilog(self, ctx, formatter)


@click.group(cls=_Group, context_settings=CONTEXT, invoke_without_command=True,
             help="Crawl news sites into WARC files and clean article text; keep them in a folder or S3; "
                  "get any snapshot of any URL back.",
             epilog="""examples:
  newsarchive demo                               try it on the bundled demo site
  newsarchive sources                            the sites in ./sources.toml
  newsarchive crawl example --max-pages 50       crawl one source into ./archive
  newsarchive list https://example.com/2024/05/story
  newsarchive get https://example.com/2024/05/story --as text
  newsarchive search '"sea level" AND flood' --from 2024-05 --count-by week
  newsarchive serve --port 8080                  the reading room, /api/ and wayback URLs on 127.0.0.1

environment:
  NEWSARCHIVE_ARCHIVE   default archive (./archive); a folder or s3://bucket/prefix
  NEWSARCHIVE_SOURCES   default sources file (./sources.toml)
  NEWSARCHIVE_DEBUG=1   tracebacks for unexpected errors
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...   S3 endpoint and credentials

Run 'newsarchive COMMAND --help' for the options and examples of each command.""")
@debug_option
@click.pass_context
def cli(ctx):
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help(), err=True)
        ctx.exit(2)


for _module in (crawling, reading):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def _usage_error(exc: click.UsageError) -> int:
    where = exc.ctx.command_path if exc.ctx is not None else PROG
    print(f"{PROG}: error: {' '.join(exc.format_message().split())} (see '{where} --help')", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Any command line, through click (flows/cli/quick.py's main reads plain `get`s itself)."""

    def invoke() -> int:
        try:
            return int(cli.main(args=list(argv) if argv is not None else None, prog_name=PROG,
                                standalone_mode=False) or 0)
        except click.UsageError as exc:
            return _usage_error(exc)
        except click.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            print(f"{PROG}: error: {' '.join(exc.format_message().split())}", file=sys.stderr)
            return exc.exit_code

    return reported(invoke)


def run() -> None:  # pragma: no cover
    sys.exit(main())
