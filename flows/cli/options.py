"""What every command shares: the --debug, --archive and --sources options, and the help layout."""

from __future__ import annotations

import click

from flows.cli.quick import DEFAULT_ARCHIVE, debug_enabled, set_debug

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

__all__ = ["CONTEXT", "debug_enabled", "debug_option", "archive_option", "sources_option", "command",
           "HelpLayoutCommand"]


def _set_debug(ctx, param, value):
    set_debug(value)
    return value


def debug_option(fn):
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help="show the traceback of unexpected errors (also NEWSARCHIVE_DEBUG=1)")(fn)


def archive_option(fn):
    return click.option("--archive", "-a", metavar="A", envvar="NEWSARCHIVE_ARCHIVE", default=DEFAULT_ARCHIVE,
                        show_envvar=False,
                        help="archive: a folder or s3://bucket/prefix (default: $NEWSARCHIVE_ARCHIVE or ./archive)")(fn)


def sources_option(fn):
    return click.option("--sources", "-s", metavar="FILE", envvar="NEWSARCHIVE_SOURCES", default="./sources.toml",
                        help="sources file (default: $NEWSARCHIVE_SOURCES or ./sources.toml)")(fn)


class HelpLayoutCommand(click.Command):
    """Help as `usage: ...`, then the description, the options and the examples (epilog, kept as written)."""

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)), prefix="usage: ")

    def format_epilog(self, ctx, formatter):
        if self.epilog:
            formatter.write_paragraph()
            formatter.write(self.epilog.rstrip() + "\n")


def command(name: str | None = None, **kwargs):
    """click.command with this command line's help layout."""
    return click.command(name, cls=HelpLayoutCommand, context_settings=CONTEXT, **kwargs)
