"""What every subcommand shares: the registry (``command``), the handler type, the flags every
processing command takes (``add_config_args``) and how they become a ``Config``.

Subcommand modules import this one; ``livematte.cli`` imports them all and builds the parser,
so no subcommand ever imports the CLI (no import circle).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livematte.errors import ConfigError

if TYPE_CHECKING:
    from livematte.config import Config

Handler = Callable[[argparse.Namespace], int | None]
Builder = Callable[[argparse.ArgumentParser], Handler]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    builder: Builder


COMMANDS: dict[str, _Command] = {}


def command(name: str, *, help: str) -> Callable[[Builder], Builder]:
    """Register a subcommand builder (see the module docstring)."""

    def decorate(builder: Builder) -> Builder:
        if name in COMMANDS:
            raise ValueError(f"livematte command {name!r} is registered twice")
        COMMANDS[name] = _Command(name, help, builder)
        return builder

    return decorate


# --- shared helpers for fronts -------------------------------------------------------------------


def add_config_args(parser: argparse.ArgumentParser, *, preset: str | None = None) -> None:
    """Add the flags every processing command shares: preset/config, --set, providers, threads."""
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--preset",
        default=preset,
        metavar="NAME|PATH",
        help="preset name (see livematte.list_presets()) or a TOML file"
        + (f" (default: {preset})" if preset else ""),
    )
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set matting.refine=none (repeatable)",
    )
    group.add_argument(
        "--providers",
        metavar="LIST",
        help="execution providers in order, e.g. cuda,cpu (cpu is used only if listed)",
    )
    group.add_argument("--threads", type=int, metavar="N", help="ONNX Runtime threads (0 = auto)")
    group.add_argument(
        "--model",
        metavar="auto|embedded|NAME",
        help="matting model (config matting.model; default auto: the best installed model - "
        "rvm_mobilenetv3 once pulled - for photos and video; live stays on the embedded "
        "model unless a GPU execution provider is active); embedded: the built-in "
        "segmenter, works offline with nothing pulled; NAME: a registered model or .onnx path",
    )


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Turn ``["a.b=1", ...]`` into ``{"a.b": "1"}``.

    Raises:
        ConfigError: an item has no ``=`` or an empty key.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def config_from_args(
    args: argparse.Namespace, extra: Mapping[str, object] | None = None
) -> Config:
    """Build the ``Config`` for a command from ``add_config_args`` flags plus ``extra``.

    Precedence, lowest first: preset, ``extra`` (the command's own flags), ``--set``,
    ``--providers``/``--threads``.
    """
    from livematte.config import load_config

    overrides: dict[str, object] = dict(extra or {})
    overrides.update(parse_overrides(getattr(args, "overrides", []) or []))
    if getattr(args, "providers", None):
        overrides["runtime.providers"] = args.providers
    if getattr(args, "threads", None) is not None:
        overrides["runtime.threads"] = args.threads
    if getattr(args, "model", None):
        overrides["matting.model"] = args.model
    return load_config(getattr(args, "preset", None), overrides)


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def add_pixel_limit_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--max-megapixels``: the one pixel limit of ``image`` and ``serve`` (outputs.MAX_PIXELS),
    checked from a picture's header before it is decoded."""
    from livematte.outputs import MAX_PIXELS

    parser.add_argument(
        "--max-megapixels",
        type=positive_float,
        default=MAX_PIXELS / 1e6,
        metavar="MP",
        help="pixel limit per picture, checked from its header before decoding "
        "(default: %(default)g)",
    )
