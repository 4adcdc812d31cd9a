"""Command-line interface: ``livematte <command> ...``: the one parser and the one ``main``.

Fronts stay thin: flags become config overrides (``config_from_args``), then the core runs.
Each subcommand is a module of this package (``image``, ``video``, ``cam``, ``serve`` with
``keys``, ``doctor``, ``models``); their registry and shared flags are ``livematte.cli.base``,
which they import (never this module, so there is no import circle).

Adding a subcommand is one function: decorate a builder that adds its flags to the given
parser and returns the handler (``Namespace -> exit status``).  Import heavy modules inside the
handler so ``livematte --help`` stays fast::

    @command("image", help="cut people out of photos")
    def _image(parser: argparse.ArgumentParser) -> Handler:
        parser.add_argument("inputs", nargs="+")
        add_config_args(parser)

        def run(args: argparse.Namespace) -> int:
            from livematte.api import process_image
            config = config_from_args(args, {"runtime.mode": "image"})
            ...
            return 0

        return run

Errors: any ``LivematteError`` or ``OSError`` prints one line ``livematte: error: ...`` and exits
with the error's ``exit_code`` (1 for plain OSError); ``--debug`` adds the traceback; Ctrl-C
exits 130.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from livematte.cli import base
from livematte.errors import LivematteError


class _Version(argparse.Action):
    """``--version``, with the version read only when asked for (see ``livematte.__getattr__``)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS,
            help="show program's version number and exit",
        )  # fmt: skip

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        from livematte import __version__

        print(f"livematte {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand; handlers are stored as ``_handler``."""
    # Importing a subcommand registers it; this order is the order `livematte --help` lists.
    from livematte.cli import image, video, cam, serve, doctor, models  # noqa: F401, I001

    parser = argparse.ArgumentParser(
        prog="livematte",
        description="Cut people out of camera feeds, videos and photos (ONNX Runtime, offline).",
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in base.COMMANDS.values():
        child = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        child.set_defaults(_handler=cmd.builder(child))
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, LivematteError) and exc.strerror:
        text = exc.strerror + (f": {exc.filename}" if exc.filename else "")
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._handler(args)
    except KeyboardInterrupt:
        if args.debug:
            traceback.print_exc()
        print("livematte: interrupted", file=sys.stderr)
        return 130
    except (LivematteError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"livematte: error: {_one_line(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
