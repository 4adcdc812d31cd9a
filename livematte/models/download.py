"""Explicit model downloads with sha256 verification, and checksum verification of all models.

Nothing here runs implicitly: a model is fetched only by ``pull`` (``livematte models pull``).
Downloads go to a temporary file in the cache directory and are renamed into place only after
the checksum matched, so an interrupted or corrupt download never leaves a file that looks valid.

Example::

    path = pull("rvm_mobilenetv3")
    for name, status in verify():
        print(name, status)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from livematte.atomic import publish
from livematte.errors import DownloadError, ModelError
from livematte.models.registry import (
    ModelSpec,
    converted_path,
    get_spec,
    installed_path,
    list_specs,
    model_path,
    provenance_path,
)

#: ``verify`` statuses.
OK = "ok"
MISSING = "missing"  # an embedded file is absent: the install is broken
NOT_DOWNLOADED = "not downloaded"  # an external model nobody pulled: fine
MISMATCH = "checksum mismatch"
NO_CHECKSUM = "no checksum"  # embedded file present but no manifest entry to check it against
CONVERTED = "ok (converted locally)"  # pulled as TF.js, converted; matches its provenance record

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pull(
    name_or_spec: str | ModelSpec,
    *,
    url_override: str | None = None,
    force: bool = False,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download a model into the user cache and verify its sha256; return its path.

    Args:
        name_or_spec: registered model name or a spec.
        url_override: fetch from this address instead (a mirror); the pinned sha256 still
            applies, so a mirror cannot swap the file.
        force: download even when a verified file is already cached.
        timeout: seconds without data before giving up.
        progress: called as ``progress(bytes_so_far, total_or_None)``.

    Raises:
        DownloadError: offline, HTTP error, timeout or checksum mismatch (nothing is kept).
        ModelError: unknown name, or an embedded model (nothing to download) is missing.
    """
    spec = get_spec(name_or_spec)
    dest = model_path(spec)
    if spec.embedded:
        if dest.is_file():
            return dest
        raise ModelError(
            f"embedded model {spec.name!r} is missing from the installation ({dest}); "
            "reinstall livematte"
        )
    url = url_override or spec.url
    assert url is not None and spec.sha256 is not None  # enforced by ModelSpec
    if not url.startswith(("https://", "http://", "file:")):
        raise DownloadError(f"cannot download {spec.name!r}: unsupported URL {url!r}")
    if dest.is_file() and not force and sha256_file(dest) == spec.sha256:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create cache directory {dest.parent}: {exc}") from exc
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, spec.name, timeout, progress)
        if digest != spec.sha256:
            raise DownloadError(
                f"checksum mismatch for {spec.name!r} from {url}: expected {spec.sha256}, "
                f"got {digest}; the file was not kept"
            )
        publish(tmp, dest)  # mkstemp's 0600 -> what the umask gives any file
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def _fetch(
    url: str,
    out: object,
    name: str,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> str:
    """Stream ``url`` into ``out`` and return the sha256; map failures to DownloadError."""
    # Imported here: urllib.request (with ssl and http) costs every command ~40 ms to start.
    import urllib.error
    import urllib.request

    from livematte import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"livematte/{__version__}"})
    digest = hashlib.sha256()
    where = f"cannot download {name!r} from {url}"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done = 0
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)  # type: ignore[attr-defined]
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{where}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise DownloadError(f"{where}: {text} (are you offline?)") from exc
    except TimeoutError as exc:
        raise DownloadError(f"{where}: no data for {timeout:g} s (timed out)") from exc
    except OSError as exc:
        # Mid-stream resets and local write errors (disk full) both end up here.
        raise DownloadError(f"{where}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def verify(specs: list[ModelSpec] | None = None) -> list[tuple[str, str]]:
    """Check the sha256 of every embedded and cached model.

    Returns:
        ``(name, status)`` pairs; status is one of ``OK``, ``CONVERTED`` (a locally converted
        model matching its provenance record), ``MISSING`` (embedded file absent),
        ``NOT_DOWNLOADED`` (external model never pulled: not a problem), ``MISMATCH``,
        ``NO_CHECKSUM`` (embedded file present but the manifest has no entry for it).
    """
    results = []
    for spec in specs if specs is not None else list_specs():
        path = installed_path(spec) or model_path(spec)
        if not path.is_file():
            status = MISSING if spec.embedded else NOT_DOWNLOADED
        elif path == converted_path(spec):
            # Converted here: checked against the digest recorded when it was written (its
            # inputs were checked against pinned sha256s before the conversion).
            expected = _recorded_sha256(provenance_path(spec))
            status = CONVERTED if sha256_file(path) == expected else MISMATCH
        elif spec.sha256 is None:
            status = NO_CHECKSUM
        else:
            status = OK if sha256_file(path) == spec.sha256 else MISMATCH
        results.append((spec.name, status))
    return results


def _recorded_sha256(record: Path) -> str | None:
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("onnx_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def is_failure(status: str) -> bool:
    """True for statuses that mean a broken install or a corrupt cached file."""
    return status in (MISSING, MISMATCH, NO_CHECKSUM)
