"""The multipart form of the matting routes: its OpenAPI schema and its optional fields
parsed into ``RenderOptions`` (every bad value is an ApiError 1107 naming the field)."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import UploadFile

from livematte.server import errors as E
from livematte.server.errors import ApiError
from livematte.server.images import RenderOptions

_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "the photo (PNG, JPEG, BMP, GIF, WebP; <= 15 MB); several -> zip",
        },
        "bg_color": {"type": "string", "description": "background colour, e.g. #00ff00"},
        "bg_image": {"type": "string", "format": "binary", "description": "background image"},
        "crop": {"type": "boolean", "description": "crop to the person(s)"},
        "crop_margin": {"type": "string", "description": "margin around the crop: 30px or 10%"},
        "size": {"type": "string", "enum": ["full", "preview"], "description": "preview: 0.25 MP"},
        "format": {"type": "string", "enum": ["png", "jpg", "zip"]},
        "channels": {"type": "string", "enum": ["rgba", "alpha"]},
    },
}


def openapi_extra(description: str, ok: dict[str, Any]) -> dict[str, Any]:
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


def parse_color(value: str) -> tuple[int, int, int]:
    """'#rgb' or '#rrggbb' (the '#' optional) -> BGR tuple.

    Raises:
        ApiError: 1107 for anything else.
    """
    text = value.strip().lstrip("#")
    if re.fullmatch(r"[0-9a-fA-F]{3}", text):
        text = "".join(c * 2 for c in text)
    if not re.fullmatch(r"[0-9a-fA-F]{6}", text):
        raise ApiError(E.BAD_OPTION, f"bg_color: expected a hex colour like #00ff00, got {value!r}")
    r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


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


def parse_options(form: Any) -> RenderOptions:
    """The optional fields -> RenderOptions (unknown fields are ignored, as other APIs do)."""

    def text(name: str) -> str | None:
        value = form.get(name)
        if value is None or isinstance(value, UploadFile):
            return None
        return str(value)

    bg = text("bg_color")
    margin = text("crop_margin")
    return RenderOptions(
        background=parse_color(bg) if bg else None,
        crop=_truthy(text("crop") or "", "crop"),
        margin=parse_margin(margin) if margin else (0.0, "px"),
        preview=_choice(text("size") or "full", "size", _SIZES) == "preview",
        format=_choice(text("format") or "png", "format", _FORMATS),
        channels=_choice(text("channels") or "rgba", "channels", _CHANNELS),
    )
