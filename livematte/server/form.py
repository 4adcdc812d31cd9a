"""The multipart form of the matting routes: its OpenAPI schema and its optional fields
parsed into ``RenderOptions`` (every bad value is an ApiError 1107 naming the field).

The fields that change the picture map onto the same config keys as the CLI's flags
(``parse_look``), so the server runs the very pipeline ``livematte image`` runs."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.datastructures import UploadFile

from livematte.server import errors as E
from livematte.server.errors import ApiError
from livematte.server.images import RenderOptions

#: A parsed multipart form (starlette's ``FormData`` is one): field name -> text or file.
Form = Mapping[str, "str | UploadFile"]

_UPLOAD_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "the photo (PNG, JPEG, BMP, GIF, WebP; <= 15 MB); several -> zip",
        },
        "bg": {
            "type": "string",
            "description": "background, the CLI's --bg: transparent, original, blur[:N], "
            "#rrggbb or a colour name (bg_color is the same field)",
        },
        "bg_image": {"type": "string", "format": "binary", "description": "background image"},
        "stickers": {"type": "string", "description": "sticker pack: party, royal, bunny, angel"},
        "id_photo": {"type": "string", "description": "ID photo size: passport, us, 1inch, ..."},
        "dim": {"type": "number", "description": "darken the background, 0..1"},
        "desaturate": {"type": "number", "description": "desaturate the background, 0..1"},
        "light_wrap": {"type": "number", "description": "background light on the edges, 0..1"},
        "blur_kind": {"type": "string", "enum": ["lens", "gaussian"]},
        "crop": {"type": "boolean", "description": "crop to the person(s)"},
        "crop_margin": {"type": "string", "description": "margin around the crop: 30px or 10%"},
        "size": {"type": "string", "enum": ["full", "preview"], "description": "preview: 0.25 MP"},
        "format": {"type": "string", "enum": ["png", "jpg", "zip"]},
        "channels": {"type": "string", "enum": ["rgba", "alpha"]},
    },
}


def openapi_extra(description: str, ok: Mapping[str, object]) -> dict[str, object]:
    """OpenAPI for a hand-parsed multipart route (parsed by hand to check the key first)."""
    codes = ", ".join(f"{e.code} ({e.status})" for e in E.ALL_CODES)
    return {
        "description": description + f"\n\nError codes: {codes}; see livematte.server.errors.",
        "parameters": [
            {
                "name": "APIKEY",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "your key (`livematte keys create`); not needed in keyless mode",
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": _UPLOAD_SCHEMA}},
        },
        "responses": {"200": ok, "4XX": {"description": "error envelope (JSON)"}},
    }


def _truthy(value: str, field: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ApiError(E.BAD_OPTION, f"{field}: expected true or false, got {value!r}")


def _choice(value: str, field: str, choices: dict[str, str]) -> str:
    key = value.strip().lower()
    if key not in choices:
        raise ApiError(E.BAD_OPTION, f"{field}: {value!r} is not one of {', '.join(choices)}")
    return choices[key]


def _fraction(value: str, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise ApiError(E.BAD_OPTION, f"{field}: expected a number from 0 to 1, got {value!r}")
    return number


def parse_look(form: Form) -> dict[str, object]:
    """The fields that change the picture -> config overrides, the keys the CLI's flags set
    (``--bg``, ``--stickers``, ``--id-photo``, ``--dim``, ...), so a request and the same
    command line give the same pixels.

    ``bg`` takes the CLI's ``--bg`` grammar except files (``bg_image`` uploads a picture);
    ``bg_color`` is an alias of ``bg``.  Sticker packs are the shipped ones only: a client
    never names a path on the server.

    Raises:
        ApiError: 1107 naming the field, for any bad value.
    """
    from livematte.errors import ConfigError
    from livematte.stages.effects import parse_background
    from livematte.stages.id_photo import resolve_size
    from livematte.stages.stickers import list_packs

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None or isinstance(value, UploadFile):
            return None
        return str(value).strip()

    overrides: dict[str, object] = {}
    given = [name for name in ("bg", "bg_color") if text(name)]
    if len(given) > 1:
        raise ApiError(E.BAD_OPTION, "give bg or bg_color (the same field), not both")
    if given:
        spec = text(given[0]) or ""
        try:
            parse_background(spec, files=False)
        except ConfigError as exc:
            raise ApiError(E.BAD_OPTION, f"{given[0]}: {str(exc).split(': ', 1)[-1]}") from None
        overrides["effects.background"] = spec
    pack = text("stickers")
    if pack:
        if pack not in list_packs():
            known = ", ".join(list_packs())
            raise ApiError(E.BAD_OPTION, f"stickers: unknown pack {pack!r}; known: {known}")
        overrides["stickers.pack"] = pack
    size = text("id_photo")
    if size:
        try:
            resolve_size(size)
        except ConfigError as exc:
            raise ApiError(E.BAD_OPTION, f"id_photo: {str(exc).split(': ', 1)[-1]}") from None
        overrides["effects.id_photo"] = size
    for field in ("dim", "desaturate", "light_wrap"):
        value = text(field)
        if value:
            overrides[f"effects.{field}"] = _fraction(value, field)
    kind = text("blur_kind")
    if kind:
        overrides["effects.blur_kind"] = _choice(
            kind, "blur_kind", {"lens": "lens", "gaussian": "gaussian"}
        )
    if _truthy(text("first_person_only") or "", "first_person_only"):
        overrides["stickers.first_person_only"] = True
    return overrides


def parse_margin(value: str) -> tuple[float, str]:
    """'30px', '30' or '10%' -> (value, unit); at most 4096 px or 100 %."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(px|%)?\s*", value or "0")
    if not match:
        raise ApiError(E.BAD_OPTION, f"crop_margin: expected e.g. 30px or 10%, got {value!r}")
    amount, unit = float(match.group(1)), match.group(2) or "px"
    if amount > (100 if unit == "%" else 4096):
        raise ApiError(E.BAD_OPTION, f"crop_margin: {value!r} is too large")
    return amount, unit


# Accepted spellings -> canonical value ("auto" as remove.bg has it means full here).
_SIZES = {"full": "full", "auto": "full", "preview": "preview"}
_FORMATS = {"png": "png", "jpg": "jpg", "jpeg": "jpg", "zip": "zip"}
_CHANNELS = {"rgba": "rgba", "alpha": "alpha"}


def parse_options(form: Form) -> RenderOptions:
    """The optional fields -> RenderOptions (unknown fields are ignored, as other APIs do)."""

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None or isinstance(value, UploadFile):
            return None
        return str(value)

    margin = text("crop_margin")
    options = RenderOptions(
        look=tuple(sorted(parse_look(form).items())),
        crop=_truthy(text("crop") or "", "crop"),
        margin=parse_margin(margin) if margin else (0.0, "px"),
        preview=_choice(text("size") or "full", "size", _SIZES) == "preview",
        format=_choice(text("format") or "png", "format", _FORMATS),
        channels=_choice(text("channels") or "rgba", "channels", _CHANNELS),
    )
    if "effects.id_photo" in dict(options.look) and (
        options.crop or options.format == "zip" or options.channels == "alpha"
    ):
        raise ApiError(
            E.BAD_OPTION, "id_photo: cannot be combined with crop, zip or channels=alpha"
        )
    return options
