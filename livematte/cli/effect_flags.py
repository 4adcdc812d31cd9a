"""Effect flags shared by ``image``, ``video`` and ``cam``: flags in, config overrides out."""

from __future__ import annotations

import argparse


def add_effect_args(parser: argparse.ArgumentParser) -> None:
    """Add --stickers, --dim, --desaturate, --light-wrap, --blur-kind, --first-person-only."""
    group = parser.add_argument_group("effects")
    group.add_argument(
        "--stickers", metavar="PACK", help="sticker pack: party, royal, bunny, angel or a TOML path"
    )
    group.add_argument("--dim", type=float, metavar="0..1", help="darken the background")
    group.add_argument(
        "--desaturate", type=float, metavar="0..1", help="take the colour out of the background"
    )
    group.add_argument(
        "--light-wrap",
        type=float,
        metavar="0..1",
        help="let the new background's light spill onto the person's edges",
    )
    group.add_argument(
        "--blur-kind", choices=("lens", "gaussian"), help="blur used by --bg blur:N (default lens)"
    )
    group.add_argument(
        "--first-person-only",
        action="store_true",
        help="stickers on the first (largest) person only",
    )


def effect_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Config overrides for the effect flags that were given."""
    overrides: dict[str, object] = {}
    if getattr(args, "stickers", None):
        overrides["stickers.pack"] = args.stickers
    for flag, key in (
        ("dim", "effects.dim"),
        ("desaturate", "effects.desaturate"),
        ("light_wrap", "effects.light_wrap"),
        ("blur_kind", "effects.blur_kind"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[key] = value
    if getattr(args, "first_person_only", False):
        overrides["stickers.first_person_only"] = True
    return overrides
