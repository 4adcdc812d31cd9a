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
import os
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


#: Commands run with one OpenBLAS thread (``blas_threads``).  ``image`` and ``serve``: the photo
#: path's BLAS work is the closed-form band solve's ``@`` and ``np.linalg.inv`` on blocks of one
#: breadth-first level (``ops/band_solve.py``).  On 13 of the 15 p3m portraits (levels of up to
#: 89 unknowns) OpenBLAS's second thread did next to nothing per photo; on the two widest bands
#: (145-147: p_71bcce3a, p_51c916fc) it shares out each block product, and on this loaded
#: 2-core machine the solve then took 3.1-3.4 s instead of 0.09 s (4 of 4 warm runs).  One
#: thread against the default (two here), paired, medians: ``livematte image`` 1080p 1.08 s CPU
#: / 1.72 s wall against 1.19 / 1.76, 12 MP 1.88 / 1.95 against 1.92 / 2.24, p_71bcce3a 1.21 /
#: 1.18 against 1.55 / 1.20; a ``serve`` request for p_71bcce3a 0.71-0.81 s against 4.1-4.2 s
#: (BENCHMARKS.md, "BLAS threads on photos").
ONE_BLAS_THREAD = frozenset({"video", "cam", "image", "serve"})


def blas_threads(argv: Sequence[str]) -> None:
    """One OpenBLAS thread for the commands of ``ONE_BLAS_THREAD``, set before numpy (and OpenCV,
    which ships an OpenBLAS of its own) is first imported: OpenBLAS reads it once, when it loads.

    Video frames never call BLAS (the per-pixel work is OpenCV's and numpy's element-wise
    loops; the model is ONNX Runtime's) and photos only in the band solve (see the constant),
    but each OpenBLAS starts a thread per extra core when it loads, and those threads spin
    before they sleep (with two, ``import numpy`` alone spent 40 ms in its second): importing
    numpy, OpenCV and ONNX Runtime took 0.19 s CPU with one thread against 0.245 s (median of
    8 each, 2-core machine), a 2-frame ``livematte video`` process 0.43 against 0.52 s.  The
    bare transcode the ``video`` floor compares with loads no BLAS at all.  A variable the user
    set is kept; when numpy is already loaded (``main`` called in-process) nothing is changed.
    """
    if "numpy" in sys.modules:
        return
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in ONE_BLAS_THREAD:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit status (the console script exits with it)."""
    blas_threads(sys.argv[1:] if argv is None else argv)
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
