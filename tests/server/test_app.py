"""The HTTP API: contract, options, batch, keys/limits, errors; then the real pipeline."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import threading
import time
import zipfile

import numpy as np
import pytest
from media import SHARED_DATA, needs_shared
from PIL import Image
from server_helpers import (
    NO_LIMIT,
    SAMPLE,
    TestClient,
    assert_error,
    fake_process,
    image_bytes,
    png_bomb,
    post,
    truncated_jpeg,
)

from livematte.server.app import create_app
from livematte.server.engine import MattingResult, ServerSettings
from livematte.server.errors import ALL_CODES
from livematte.server.keys import KeyStore

ROUTES = ("/api/v1/matting", "/api/v1/matting2", "/api/v1/mattingAndAnalysis")


def png_of(response) -> Image.Image:
    img = Image.open(io.BytesIO(response.content))
    img.load()
    return img


def corner(img: Image.Image):
    return img.getpixel((0, 0))


# --- the contract ---------------------------------------------------------------------------------


def test_matting_returns_the_png_itself(client):
    r = post(client)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["x-livematte-model"] == "custom"  # the fake process, no pipeline
    img = png_of(r)
    assert img.mode == "RGBA" and img.size == (64, 48)
    assert img.getpixel((0, 0))[3] == 0 and img.getpixel((32, 24))[3] == 255


def test_matting2_envelope(client):
    r = post(client, "/api/v1/matting2")
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0 and body["msg"] is None
    assert isinstance(body["time"], int) and abs(body["time"] - time.time() * 1000) < 60_000
    png = base64.b64decode(body["data"]["imageBase64"])
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).mode == "RGBA"


def test_matting_and_analysis_envelope(client):
    body = post(client, "/api/v1/mattingAndAnalysis").json()
    assert body["code"] == 0 and set(body["data"]) == {"bodyAnalysis", "imageBase64"}
    assert body["data"]["bodyAnalysis"]["person_num"] == 1


def test_health_info_docs_and_page(client):
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/api/v1/info").json()
    assert info["keyless"] is True and info["max_batch"] == 16
    assert {int(c) for c in info["error_codes"]} == {e.code for e in ALL_CODES}
    spec = client.get("/openapi.json").json()
    for route in ROUTES:
        body = spec["paths"][route]["post"]["requestBody"]["content"]
        assert "file" in body["multipart/form-data"]["schema"]["properties"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI must come from this server, not a CDN: the page works offline.
    assert "cdn." not in docs.text
    script = re.search(r'src="([^"]+swagger-ui-bundle\.js)"', docs.text).group(1)
    assert client.get(script).status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="file-input"' in page.text
    for asset in ("app.js", "zip.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text


# --- optional fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "check"),
    [
        ({"bg_color": "#0000ff"}, lambda img: img.mode == "RGB" and corner(img) == (0, 0, 255)),
        ({"bg_color": "#0f0"}, lambda img: img.getpixel((0, 0)) == (0, 255, 0)),
        ({"bg": "red"}, lambda img: img.getpixel((0, 0)) == (255, 0, 0)),
        ({"bg": "blur:9"}, lambda img: img.mode == "RGB"),
        ({"bg": "original", "dim": "1"}, lambda img: img.getpixel((0, 0)) == (0, 0, 0)),
        ({"channels": "alpha"}, lambda img: img.mode == "L" and img.getpixel((0, 0)) == 0),
        ({"crop": "true"}, lambda img: img.size[0] < 64 and img.size[1] < 48),
        ({"crop": "1", "crop_margin": "10%"}, lambda img: img.size[0] < 64),
        ({"format": "jpg"}, lambda img: img.format == "JPEG" and min(img.getpixel((0, 0))) > 240),
        ({"format": "jpeg", "bg_color": "#000"}, lambda img: max(img.getpixel((0, 0))) < 16),
        ({"size": "preview"}, lambda img: img.size == (64, 48)),  # already under 0.25 MP
    ],
)  # fmt: skip
def test_options(client, data, check):
    r = post(client, data=data)
    assert r.status_code == 200, r.text
    assert check(png_of(r))


def test_preview_shrinks_big_inputs(client):
    files = {"file": ("big.jpg", image_bytes("JPEG", (1000, 800)), "image/jpeg")}
    img = png_of(post(client, files=files, data={"size": "preview"}))
    assert img.size[0] * img.size[1] <= 250_000 and abs(img.size[0] / img.size[1] - 1.25) < 0.01


def test_zip_format_and_bg_image(client):
    r = post(client, data={"format": "zip"})
    assert r.headers["content-type"] == "application/zip"
    assert sorted(zipfile.ZipFile(io.BytesIO(r.content)).namelist()) == ["alpha.png", "color.jpg"]
    green = Image.new("RGB", (8, 8), (0, 255, 0))
    buf = io.BytesIO()
    green.save(buf, "PNG")
    files = {
        "file": ("a.png", image_bytes("PNG", (64, 48)), "image/png"),
        "bg_image": ("bg.png", buf.getvalue(), "image/png"),
    }
    assert png_of(post(client, files=files)).getpixel((0, 0)) == (0, 255, 0)
    files["bg_image"] = ("bg.png", b"junk", "image/png")
    assert_error(post(client, files=files), 1103, 415)


# --- batch ----------------------------------------------------------------------------------------


def test_batch_gives_a_zip_with_errors_listed(client):
    files = [
        ("file", ("one.png", image_bytes("PNG", (32, 32)), "image/png")),
        ("file", ("two.jpg", image_bytes("JPEG", (40, 30)), "image/jpeg")),
        ("file", ("one.png", image_bytes("PNG", (16, 16)), "image/png")),
        ("file", ("../../bad name.jpg", b"not an image", "image/jpeg")),
    ]
    r = post(client, files=files)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.headers["x-files-failed"] == "1"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert sorted(zf.namelist()) == ["errors.json", "one-2.png", "one.png", "two.png"]
    [error] = json.loads(zf.read("errors.json"))
    assert (error["file"], error["code"]) == ("bad_name", 1103)  # no path, no space
    assert Image.open(io.BytesIO(zf.read("one-2.png"))).size == (16, 16)


def test_batch_analysis_and_all_failed(client):
    files = [("file", (f"p{i}.png", image_bytes("PNG", (20, 20)), "image/png")) for i in range(2)]
    zf = zipfile.ZipFile(
        io.BytesIO(post(client, "/api/v1/mattingAndAnalysis", files=files).content)
    )
    assert sorted(zf.namelist()) == ["p0.json", "p0.png", "p1.json", "p1.png"]
    bad = [("file", (f"p{i}.png", b"", "image/png")) for i in range(2)]
    assert_error(post(client, files=bad), 1102, 400)


# --- errors ---------------------------------------------------------------------------------------


def _file(data, name="x.jpg"):
    return {"file": (name, data, "image/jpeg")}


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"files": {"image": ("a.png", image_bytes(), "image/png")}}, 1101, 400),
        ({"files": {"file": ("", b"")}}, 1102, 400),
        ({"files": _file(b"")}, 1102, 400),
        ({"files": _file(b"\x13\x37" * 500)}, 1103, 415),
        ({"files": _file(truncated_jpeg())}, 1104, 422),
        ({"files": _file(png_bomb(), "bomb.png")}, 1106, 413),
        ({"data": {"bg_color": "0f0"}}, 1107, 400),  # the CLI's grammar: #0f0
        ({"data": {"bg": "reddish"}}, 1107, 400),
        ({"data": {"bg": "/etc/hostname"}}, 1107, 400),  # never the server's files
        ({"data": {"bg": "blur:900"}}, 1107, 400),
        ({"data": {"bg": "white", "bg_color": "black"}}, 1107, 400),
        ({"data": {"stickers": "../configs/stickers/party"}}, 1107, 400),
        ({"data": {"id_photo": "huge"}}, 1107, 400),
        ({"data": {"id_photo": "passport", "crop": "1"}}, 1107, 400),
        ({"data": {"dim": "2"}}, 1107, 400),
        ({"data": {"blur_kind": "box"}}, 1107, 400),
        ({"data": {"format": "tiff"}}, 1107, 400),
        ({"data": {"size": "huge"}}, 1107, 400),
        ({"data": {"channels": "rgb"}}, 1107, 400),
        ({"data": {"crop": "maybe"}}, 1107, 400),
        ({"data": {"crop_margin": "-3px"}}, 1107, 400),
        ({"data": {"crop_margin": "900%"}}, 1107, 400),
        ({"files": [("file", ("a.png", image_bytes(), "image/png"))] * 17}, 1108, 413),
    ],
)
def test_error_table(client, kwargs, code, status):
    assert_error(post(client, **kwargs), code, status)


def test_text_field_named_file_and_non_multipart(client):
    assert_error(client.post("/api/v1/matting", data={"file": "abc"}), 1101, 400)
    assert_error(client.post("/api/v1/matting", json={"file": "abc"}), 1101, 400)
    broken = {"content-type": "multipart/form-data"}  # no boundary
    assert_error(client.post("/api/v1/matting", content=b"x", headers=broken), 1101, 400)


def test_routes_and_methods(client):
    assert_error(client.get("/api/v1/matting"), 1405, 405)
    assert_error(client.post("/api/v2/matting"), 1404, 404)


def test_size_limits(make_client):
    c = make_client(
        settings=ServerSettings(
            keyless="on", warmup=False, rate=NO_LIMIT, max_file_bytes=2000, max_request_bytes=50_000
        )
    )
    assert_error(post(c, files=_file(image_bytes("JPEG", (300, 300)))), 1105, 413)
    big = {"file": ("a.bin", b"\x00" * 60_000, "image/png")}
    assert_error(post(c, files=big), 1105, 413)  # Content-Length over the request limit


def test_streamed_body_over_the_limit(make_client):
    c = make_client(
        settings=ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT, max_request_bytes=50_000)
    )

    def chunks():  # no Content-Length: the limit must trip while streaming
        yield b"--x\r\nContent-Disposition: form-data; name=file; filename=a.png\r\n\r\n"
        for _ in range(100):
            yield b"\x00" * 1000

    r = c.post(
        "/api/v1/matting",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert_error(r, 1105, 413)
    assert post(c).status_code == 200


def test_pipeline_crash_is_a_500_and_the_server_keeps_serving(make_client):
    calls = []

    def flaky(bgr, analysis):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return MattingResult(np.ones(bgr.shape[:2], np.float32), bgr, None)

    c = make_client(process=flaky)
    assert_error(post(c), 1202, 500)
    assert post(c).status_code == 200


def test_busy_answers_at_once(make_client):
    release = threading.Event()
    started = threading.Event()

    def slow(bgr, analysis):
        started.set()
        release.wait(10)
        return MattingResult(np.ones(bgr.shape[:2], np.float32), bgr, None)

    c = make_client(
        settings=ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT, workers=1, queue=0),
        process=slow,
    )
    first = {}
    thread = threading.Thread(target=lambda: first.setdefault("r", post(c)))
    thread.start()
    assert started.wait(10)
    t0 = time.monotonic()
    busy = post(c)
    assert time.monotonic() - t0 < 2
    assert_error(busy, 1201, 503)
    assert busy.headers["retry-after"] == "1"
    assert c.get("/health").json()["in_flight"] == 1
    release.set()
    thread.join(10)
    assert first["r"].status_code == 200
    assert post(c).status_code == 200


# --- keys, balance, rate --------------------------------------------------------------------------


@pytest.fixture
def keyed(make_client, tmp_path):
    store = KeyStore(tmp_path / "keys.sqlite3")
    c = make_client(
        settings=ServerSettings(keyless="off", warmup=False, rate=1000), key_store=store
    )
    yield c, store
    store.close()


def test_keys_required(keyed):
    c, store = keyed
    assert_error(post(c), 1002, 401)
    assert_error(post(c, headers={"APIKEY": "lm_wrongwrongwrongwrongwrong"}), 1003, 401)
    key, token = store.create()
    assert post(c, headers={"APIKEY": token}).status_code == 200
    assert post(c, headers={"X-Api-Key": token}).status_code == 200
    store.revoke(key.id)
    assert_error(post(c, headers={"APIKEY": token}), 1003, 401)


def test_balance_is_spent_only_on_success(keyed):
    c, store = keyed
    key, token = store.create(calls=1)
    assert_error(post(c, files=_file(b"junk")), 1002, 401)
    assert_error(post(c, files=_file(b"junk"), headers={"APIKEY": token}), 1103, 415)
    assert store.get(key.id).calls == 1  # a failure costs nothing
    ok = post(c, headers={"APIKEY": token})
    assert ok.status_code == 200 and ok.headers["x-calls-remaining"] == "0"
    assert_error(post(c, headers={"APIKEY": token}), 1001, 402)
    store.topup(key.id, 1)
    files = [("file", (f"{i}.png", image_bytes("PNG", (16, 16)), "image/png")) for i in range(2)]
    assert_error(post(c, files=files, headers={"APIKEY": token}), 1001, 402)  # 2 files, 1 call
    assert post(c, headers={"APIKEY": token}).status_code == 200
    assert store.get(key.id).used == 2


def test_batch_charges_per_image(keyed):
    c, store = keyed
    key, token = store.create(calls=5)
    files = [("file", (f"{i}.png", image_bytes("PNG", (16, 16)), "image/png")) for i in range(3)]
    files.append(("file", ("bad.png", b"junk", "image/png")))
    assert post(c, files=files, headers={"APIKEY": token}).status_code == 200
    assert store.get(key.id).calls == 2


def test_rate_limit(keyed):
    c, store = keyed
    _, token = store.create(rate=1.0)
    assert post(c, headers={"APIKEY": token}).status_code == 200
    limited = post(c, headers={"APIKEY": token})
    assert_error(limited, 1004, 429)
    assert int(limited.headers["retry-after"]) >= 1
    _, other = store.create(rate=1.0)
    assert post(c, headers={"APIKEY": other}).status_code == 200  # per key


def test_keyless_auto_only_for_loopback(make_client, tmp_path):
    settings = ServerSettings(keyless="auto", warmup=False)
    store = KeyStore(tmp_path / "k.sqlite3")
    app = create_app(settings=settings, process=fake_process, key_store=store)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)) as c:
        # The docs' examples send a placeholder key: ignored in keyless mode.
        r = post(c, headers={"APIKEY": "INSERT_YOUR_API_KEY_HERE"})
        assert r.status_code == 200 and c.get("/api/v1/info").json()["keyless"] is True
        # DNS rebinding: a loopback connection that names a foreign host needs a key.
        assert_error(post(c, headers={"Host": "evil.example"}), 1002, 401)
    with TestClient(app, base_url="http://192.168.1.9:8000", client=("192.168.1.7", 5)) as c:
        assert_error(post(c), 1002, 401)
        assert c.get("/api/v1/info").json()["keyless"] is False
    store.close()


# --- the real pipeline ----------------------------------------------------------------------------


def test_real_matting_cuts_out_the_astronaut(real_client):
    r = real_client.post("/api/v1/matting", files={"file": SAMPLE.read_bytes()})
    assert r.status_code == 200, r.text
    # The model that ran and its provider ("auto": the embedded one unless RVM is pulled).
    model = r.headers["x-livematte-model"]
    assert model.split()[0] in ("selfie_segmentation", "rvm_mobilenetv3") and "(cpu)" in model
    img = png_of(r)
    assert img.mode == "RGBA" and img.size == (512, 512)
    alpha = np.asarray(img)[..., 3]
    assert alpha[0, 0] == 0 and alpha[256, 256] > 200
    assert 0.2 < (alpha > 128).mean() < 0.9


def test_real_analysis_has_the_services_schema(real_client):
    r = real_client.post("/api/v1/mattingAndAnalysis", files={"file": SAMPLE.read_bytes()})
    body = r.json()
    assert body["code"] == 0
    analysis = body["data"]["bodyAnalysis"]
    assert analysis["person_num"] >= 1
    person = analysis["person_info"][0]
    assert len(person["body_parts"]) == 21
    assert {"nose", "top_head", "neck", "left_mouth_corner"} <= set(person["body_parts"])
    assert set(person["location"]) == {"score", "top", "left", "width", "height"}


THREE_PEOPLE = SHARED_DATA / "mediapipe_golden" / "three_people.jpg"


@needs_shared("mediapipe_golden", "three_people.jpg")
def test_real_analysis_lists_every_person_as_the_cli_does(real_client, tmp_path):
    from livematte import cli

    r = real_client.post("/api/v1/mattingAndAnalysis", files={"file": THREE_PEOPLE.read_bytes()})
    api = r.json()["data"]["bodyAnalysis"]
    out, analysis = tmp_path / "out.png", tmp_path / "out.json"
    assert cli.main(["image", str(THREE_PEOPLE), str(out), "--json", str(analysis),
                     "--preset", "default"]) == 0  # fmt: skip
    assert api == json.loads(analysis.read_text())
    assert api["person_num"] == 3
    noses = sorted(p["body_parts"]["nose"]["x"] for p in api["person_info"])
    assert min(np.diff(noses)) > 100  # three different people, not one found three times
    for person in api["person_info"]:
        assert len(person["body_parts"]) == 21 and person["source"] == "blazepose"
        assert 0.5 <= person["location"]["score"] <= 1.0
    areas = [p["location"]["width"] * p["location"]["height"] for p in api["person_info"]]
    assert areas[0] == max(areas)  # largest first


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_docs_curl_example_runs_unchanged(live_server, tmp_path):
    out = tmp_path / "out.png"
    # The documentation's command, host swapped: placeholder key, -f, -o out.png.
    subprocess.run(
        ["curl", "-sS", "-H", "APIKEY: INSERT_YOUR_API_KEY_HERE", "-F", f"file=@{SAMPLE}",
         "-f", f"{live_server}/api/v1/matting", "-o", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    img = Image.open(out)
    assert img.format == "PNG" and img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0


def test_the_docs_python_example_runs_unchanged(live_server, tmp_path):
    requests = pytest.importorskip("requests")
    response = requests.post(
        f"{live_server}/api/v1/matting2",
        files={"file": open(SAMPLE, "rb")},  # noqa: SIM115 - the docs' code, verbatim
        headers={"APIKEY": "INSERT_YOUR_API_KEY_HERE"},
        timeout=60,
    )
    body = response.json()
    assert body["code"] == 0 and body["msg"] is None
    png = Image.open(io.BytesIO(base64.b64decode(body["data"]["imageBase64"])))
    assert png.mode == "RGBA"


def test_importing_the_app_module_builds_no_engine():
    """``create_app`` users import the module; only ``uvicorn ...app:app`` builds the app."""
    import os
    import sys
    from pathlib import Path

    code = (
        "import threading, livematte.server.app as m; "
        "assert 'app' not in vars(m), 'built at import'; "
        "assert threading.active_count() == 1, 'threads started at import'; "
        "print(type(m.app).__name__)"
    )
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "LIVEMATTE_KEYLESS": "on", "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FastAPI"
