"""Explicit downloads against a real HTTP server on 127.0.0.1 (never the internet), and verify."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import pytest

from livematte.errors import DownloadError, ModelError
from livematte.models import download, registry
from livematte.models.registry import ModelSpec

PAYLOAD = b"not really onnx, but bytes with a known sha256\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path/www`` on a free port; yield the base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.onnx").write_bytes(PAYLOAD)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LIVEMATTE_MODELS", str(tmp_path / "no-user-models.toml"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_USER_LOADED", set())
    return tmp_path / "cache" / "models"


def _spec(url: str, sha: str = PAYLOAD_SHA) -> ModelSpec:
    return registry.register(
        ModelSpec(name="tiny", task="matting", url=url, sha256=sha), replace=True
    )


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_pull_downloads_and_verifies(server, cache):
    _spec(f"{server}/model.onnx")
    seen = []
    path = download.pull("tiny", progress=lambda done, total: seen.append((done, total)))
    assert path == cache / "tiny.onnx"
    assert path.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert _leftovers(cache) == ["tiny.onnx"]
    assert dict(download.verify([registry.get_spec("tiny")])) == {"tiny": download.OK}


def test_pull_skips_verified_file_and_force_refetches(server, cache):
    _spec(f"{server}/model.onnx")
    first = download.pull("tiny")
    calls = []
    download.pull("tiny", progress=lambda *a: calls.append(a))
    assert calls == []  # cached and verified: no request
    download.pull("tiny", force=True, progress=lambda *a: calls.append(a))
    assert calls and first.read_bytes() == PAYLOAD


def test_url_override_still_checks_the_pinned_sha(server, cache):
    _spec("https://example.invalid/model.onnx")
    assert download.pull("tiny", url_override=f"{server}/model.onnx").is_file()


@pytest.mark.parametrize(
    ("path", "sha", "error"),
    [
        ("model.onnx", "f" * 64, "checksum mismatch.*not kept"),
        ("missing.onnx", PAYLOAD_SHA, "HTTP 404"),
    ],
)
def test_pull_failures_leave_nothing(server, cache, path, sha, error):
    _spec(f"{server}/{path}", sha)
    with pytest.raises(DownloadError, match=error) as info:
        download.pull("tiny")
    assert "\n" not in str(info.value)
    assert _leftovers(cache) == []


def test_connection_refused_is_a_download_error(cache):
    with socket.socket() as sock:  # grab a free port, then close it so nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _spec(f"http://127.0.0.1:{port}/model.onnx")
    with pytest.raises(DownloadError, match="refused|offline") as info:
        download.pull("tiny", timeout=5)
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, ModelError)
    assert _leftovers(cache) == []


def test_mismatch_keeps_a_previous_good_file(server, cache):
    _spec(f"{server}/model.onnx")
    good = download.pull("tiny")
    _spec(f"{server}/model.onnx", "e" * 64)
    with pytest.raises(DownloadError):
        download.pull("tiny")  # cached file does not match the new pin: re-download fails
    assert good.read_bytes() == PAYLOAD  # the earlier file was not clobbered by a bad one


def test_verify_statuses(tmp_path, cache):
    embedded_dir = tmp_path / "data"
    embedded_dir.mkdir()
    (embedded_dir / "good.onnx").write_bytes(PAYLOAD)
    (embedded_dir / "bad.onnx").write_bytes(b"tampered")
    (embedded_dir / "unpinned.onnx").write_bytes(PAYLOAD)
    specs = [
        ModelSpec(name="good", task="matting", file="good.onnx", sha256=PAYLOAD_SHA),
        ModelSpec(name="bad", task="matting", file="bad.onnx", sha256=PAYLOAD_SHA),
        ModelSpec(name="gone", task="matting", file="gone.onnx", sha256=PAYLOAD_SHA),
        ModelSpec(name="unpinned", task="matting", file="unpinned.onnx"),
        ModelSpec(name="remote", task="matting", url="https://h/r.onnx", sha256=PAYLOAD_SHA),
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(registry, "DATA_DIR", embedded_dir)
        result = dict(download.verify(specs))
    assert result == {
        "good": download.OK,
        "bad": download.MISMATCH,
        "gone": download.MISSING,
        "unpinned": download.NO_CHECKSUM,
        "remote": download.NOT_DOWNLOADED,
    }
    assert [download.is_failure(s) for s in result.values()] == [False, True, True, True, False]


def test_embedded_models_verify_when_present():
    present = [s for s in registry.list_specs() if s.embedded and registry.model_path(s).is_file()]
    if not present:
        pytest.skip("embedded ONNX files not generated yet (scripts/convert_mediapipe.py)")
    assert dict(download.verify(present)) == {s.name: download.OK for s in present}


def test_pulling_an_embedded_model_returns_its_path():
    spec = registry.get_spec("selfie_segmentation")
    if not registry.model_path(spec).is_file():
        with pytest.raises(ModelError, match="reinstall"):
            download.pull(spec)
    else:
        assert download.pull(spec) == registry.model_path(spec)
