"""Upload decoding (formats, modes, EXIF, limits, bombs) and result rendering."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageFile
from server_helpers import fake_alpha, image_bytes, png_bomb, truncated_jpeg

from livematte.config import load_config
from livematte.frame import Frame
from livematte.ops.compose import cover_fit, fit_pixels
from livematte.server.errors import ApiError
from livematte.server.images import RenderOptions, decode_image, render, to_bgr
from livematte.stages.effects import EffectsStage


def decoded(data: bytes):
    return decode_image(data)


# --- formats and modes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode", "save"),
    [
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("PNG", "1", {}),
        ("PNG", "P", {}),
        ("JPEG", "RGB", {"quality": 95}),
        ("JPEG", "L", {}),
        ("JPEG", "CMYK", {}),
        ("BMP", "RGB", {}),
        ("BMP", "P", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {"lossless": True}),
    ],
)
def test_decodes_formats_and_modes_to_bgr(fmt, mode, save):
    image = decoded(image_bytes(fmt, (40, 30), mode, **save))
    assert image.bgr.dtype == np.uint8
    assert image.bgr.shape == (30, 40, 3)
    assert image.bgr.flags.c_contiguous
    assert image.alpha is None


def test_colours_arrive_as_bgr():
    data = image_bytes("PNG", (8, 8))
    bgr = decoded(data).bgr
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(bgr[..., ::-1], rgb)


def test_cmyk_jpeg_keeps_its_colours():
    red = Image.new("RGB", (16, 16), (220, 20, 30)).convert("CMYK")
    buf = io.BytesIO()
    red.save(buf, "JPEG", quality=98)
    b, g, r = decoded(buf.getvalue()).bgr[8, 8].astype(int)
    assert r > 180 and g < 70 and b < 80


def test_sixteen_bit_grey_is_scaled_not_clipped():
    values = np.array([[0, 257 * 128, 65535]], np.uint16).repeat(4, 0)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")  # I;16 grey PNG
    grey = decoded(buf.getvalue()).bgr[0, :, 0]
    assert list(grey) == [0, 128, 255]


def test_sixteen_bit_rgb_png_decodes():
    rgb16 = np.zeros((4, 4, 3), np.uint16) + 40000
    # Pillow cannot write 16-bit RGB; OpenCV can.
    import cv2

    ok, buf = cv2.imencode(".png", rgb16)
    assert ok
    image = decoded(buf.tobytes())
    assert image.bgr.shape == (4, 4, 3)
    assert abs(int(image.bgr[0, 0, 0]) - 40000 // 257) <= 1


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_transparency_is_returned_and_flattened_on_white(mode):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = (0, 0, 0)  # black colour under full transparency
    rgba[:, 5:, 3] = 255
    rgba[:, 5:, :3] = 50
    img = Image.fromarray(rgba, "RGBA")
    if mode != "RGBA":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    image = decoded(buf.getvalue())
    assert image.alpha is not None
    assert image.alpha[0, 0] == 0 and image.alpha[0, 9] == 255
    assert tuple(image.bgr[0, 0]) == (255, 255, 255)  # transparent black -> white, not black


def test_pa_mode_in_memory():
    img = Image.new("PA", (4, 4), (1, 0))  # PNG cannot hold PA, but a plugin may produce it
    bgr, alpha = to_bgr(img)
    assert bgr.shape == (4, 4, 3) and alpha is not None and alpha.max() == 0


def test_palette_transparency_is_kept():
    img = Image.new("P", (6, 6), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (3, 0, 6, 6))
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    image = decoded(buf.getvalue())
    assert image.alpha is not None and image.alpha[0, 0] == 0 and image.alpha[0, 5] == 255


def test_opaque_alpha_channel_counts_as_none():
    assert decoded(image_bytes("PNG", (8, 8), "RGBA")).alpha is None


def test_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    b, g, r = decoded(buf.getvalue()).bgr[4, 4]
    assert r > 200 and b < 50


def test_mpo_from_a_camera_decodes():
    frames = [Image.new("RGB", (12, 8), c) for c in ((0, 200, 0), (0, 0, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, "MPO", save_all=True, append_images=frames[1:])
    image = decoded(buf.getvalue())
    assert image.format == "MPO" and image.bgr.shape == (8, 12, 3)


@pytest.mark.parametrize(("orientation", "shape"), [(1, (30, 40)), (6, (40, 30)), (8, (40, 30))])
def test_exif_orientation_is_applied(orientation, shape):
    img = Image.open(io.BytesIO(image_bytes("JPEG", (40, 30))))
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decoded(buf.getvalue()).bgr.shape[:2] == shape


# --- bad inputs and limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", 1102),
        (b"\x00\x01random bytes, not an image" * 10, 1103),
        (image_bytes("TIFF", (8, 8)), 1103),  # a real image, but not a format we open
        (b"GIF89a" + b"\x00" * 3, 1104),
        (truncated_jpeg(), 1104),
        (image_bytes("PNG", (64, 64))[:60], 1104),
    ],
    ids=["empty", "random", "tiff", "gif-header-only", "truncated-jpeg", "truncated-png"],
)
def test_bad_inputs_get_their_codes(data, code):
    with pytest.raises(ApiError) as info:
        decoded(data)
    assert info.value.code == code


def test_file_size_limit():
    with pytest.raises(ApiError) as info:
        decode_image(image_bytes("PNG", (64, 64)), max_bytes=100)
    assert info.value.code == 1105 and info.value.status == 413


def test_pixel_limit_is_checked_from_the_header(monkeypatch):
    def never(*_a, **_k):  # decoding pixels at all would be the bug
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(ApiError) as info:
        decode_image(image_bytes("PNG", (300, 200)), max_pixels=300 * 200 - 1)
    assert info.value.code == 1106


def test_png_bomb_is_refused_before_decoding(monkeypatch):
    bomb = png_bomb()
    assert len(bomb) < 200_000  # compact: 400 MP in a few dozen kB
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda *_: pytest.fail("decoded the bomb"))
    with pytest.raises(ApiError) as info:
        decoded(bomb)
    assert info.value.code == 1106 and "pixels" in info.value.msg


# --- rendering ----------------------------------------------------------------------------------


@pytest.fixture
def matte():
    h, w = 40, 60
    fg = np.zeros((h, w, 3), np.uint8)
    fg[:] = (10, 20, 30)
    return fake_alpha(h, w), fg


def rendered(alpha, fg, options, *, input_alpha=None, bg_image=None):
    """``render`` of a frame that went through the real effects stage, as in the server."""
    effects = load_config("photo", options.overrides).effects
    stage = EffectsStage(effects, image=bg_image)
    frame = Frame(image=fg.copy(), alpha=alpha, foreground=fg, source_alpha=input_alpha)
    return render(stage.process(frame), options)


def open_png(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_render_default_is_rgba_png(matte):
    data, ext = rendered(*matte, RenderOptions())
    img = open_png(data)
    assert ext == "png" and img.mode == "RGBA" and img.size == (60, 40)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((30, 20)) == (30, 20, 10, 255)


def test_render_on_colour_and_jpg(matte):
    blue = RenderOptions(look=(("effects.background", "#0000ff"),))
    data, ext = rendered(*matte, blue)
    img = open_png(data)
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (0, 0, 255)
    data, ext = rendered(*matte, RenderOptions(format="jpg"))
    assert ext == "jpg" and data[:3] == b"\xff\xd8\xff"
    assert min(open_png(data).getpixel((0, 0))) > 240  # white by default


def test_render_background_image_covers(matte):
    bg = np.zeros((10, 10, 3), np.uint8)
    bg[:] = (0, 255, 0)
    img = open_png(rendered(*matte, RenderOptions(), bg_image=bg)[0])
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (0, 255, 0)


def test_render_alpha_only_and_zip(matte):
    img = open_png(rendered(*matte, RenderOptions(channels="alpha"))[0])
    assert img.mode == "L" and img.getpixel((0, 0)) == 0 and img.getpixel((30, 20)) == 255
    data, ext = rendered(*matte, RenderOptions(format="zip"))
    assert ext == "zip"
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["alpha.png", "color.jpg"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())


def test_render_crop_with_margins(matte):
    alpha, fg = matte
    tight = open_png(rendered(alpha, fg, RenderOptions(crop=True))[0])
    ys, xs = np.nonzero(alpha > 0.05)
    assert tight.size == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    padded = open_png(rendered(alpha, fg, RenderOptions(crop=True, margin=(5, "px")))[0])
    assert padded.size == (tight.size[0] + 10, tight.size[1] + 10)
    pct = open_png(rendered(alpha, fg, RenderOptions(crop=True, margin=(50, "%")))[0])
    assert pct.size[0] > alpha.shape[1]  # beyond the picture: padded, transparent
    assert pct.getpixel((0, 0))[3] == 0
    # A composite is not padded past its own edges (there is no background there).
    white = RenderOptions(look=(("effects.background", "white"),), crop=True, margin=(50, "%"))
    assert open_png(rendered(alpha, fg, white)[0]).size == (60, 40)


def test_render_crop_without_anyone_keeps_the_picture(matte):
    _, fg = matte
    img = open_png(rendered(np.zeros(fg.shape[:2], np.float32), fg, RenderOptions(crop=True))[0])
    assert img.size == (60, 40)


def test_render_multiplies_the_inputs_own_alpha(matte):
    alpha, fg = matte
    own = np.zeros(alpha.shape, np.uint8)
    img = open_png(rendered(alpha, fg, RenderOptions(), input_alpha=own)[0])
    assert img.getpixel((30, 20))[3] == 0


def test_helpers():
    assert fit_pixels(np.zeros((1000, 1000, 3), np.uint8), 250_000).shape[:2] == (500, 500)
    assert fit_pixels(np.zeros((10, 10, 3), np.uint8), 250_000).shape[:2] == (10, 10)
    assert cover_fit(np.zeros((10, 20, 3), np.uint8), (30, 30)).shape == (30, 30, 3)
