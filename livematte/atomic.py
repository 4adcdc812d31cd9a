"""Temporary names next to an output, moved into place only when complete.

Every file or folder livematte writes is first built under a hidden temporary name in the
target folder, then renamed over the final name (atomic on one filesystem), so a crash or
Ctrl-C never leaves a half-written file under the final name.

Two promises on top of that:

* **Permissions follow the umask**, as with any Unix tool: ``mkstemp``/``mkdtemp`` create
  0600/0700, so :func:`publish` sets ``0666 & ~umask`` (folders ``0777 & ~umask``) before the
  rename; the final name never appears with the private mode.
* **Stale temporaries are removed** on the next run for the same output.  The name records
  the writer: ``.STEM.<pid>-<host>.<random>.<tag>SUFFIX`` (host: 6 hex digits of a hash of
  the host name).  One is stale when it was made on this host and its process no longer
  exists (``kill -9``, power loss): nothing can ever finish it.  A temporary from another host
  (a shared folder) is left alone: its pid means nothing here.  Names of versions that did
  not record the writer (``.STEM.<random>.<tag>SUFFIX``) are stale after
  :data:`LEGACY_STALE_SECONDS` without a write.  Only names that match the pattern for that
  exact output, tag and suffix are considered.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from livematte.errors import SinkError

#: Temporaries without a recorded writer (livematte <= 0.1.0) are stale after a day untouched:
#: a live writer of ours adds to its file at least every few seconds.
LEGACY_STALE_SECONDS = 24 * 3600
#: ``tempfile``'s random part: 8 characters of this alphabet.
_RANDOM = r"[a-z0-9_]{8}"


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


_HOST = _host_tag()


def current_umask() -> int:
    """The process umask (read without a window where it is changed, where Linux allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(temporary: Path, final: Path) -> None:
    """Give ``temporary`` the mode a plain ``open``/``mkdir`` would have, then rename it over
    ``final`` (replacing a file; a folder must be absent or empty)."""
    full = 0o777 if temporary.is_dir() else 0o666
    os.chmod(temporary, full & ~current_umask())
    os.replace(temporary, final)


def _folder(final: Path) -> Path:
    return final.parent if str(final.parent) else Path(".")


def _patterns(final: Path, tag: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(current, legacy) name patterns of ``final``'s temporaries with ``tag``."""
    stem, end = re.escape(f".{final.stem}."), re.escape(f".{tag}{final.suffix}")
    current = re.compile(rf"{stem}(?P<pid>\d+)-(?P<host>[0-9a-f]{{6}})\.{_RANDOM}{end}")
    return current, re.compile(rf"{stem}{_RANDOM}{end}")


def _writer_gone(pid: int, host: str) -> bool:
    if host != _HOST or os.name == "nt":  # Windows: os.kill(pid, 0) would terminate pid
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: alive, another user's
        return False
    return False


def remove_stale(final: Path, tag: str, entries: re.Pattern[str] | None = None) -> list[Path]:
    """Remove stale temporaries of ``final`` with ``tag`` (see the module docstring).

    Args:
        entries: for folder temporaries, the names a folder may hold to be removed (anything
            else there and it is left alone).

    Returns:
        The paths removed.
    """
    if os.name == "nt":
        return []
    current, legacy = _patterns(final, tag)
    removed = []
    try:
        candidates = list(os.scandir(_folder(final)))
    except OSError:
        return []
    for entry in candidates:
        match = current.fullmatch(entry.name)
        try:
            if match:
                stale = _writer_gone(int(match["pid"]), match["host"])
            elif legacy.fullmatch(entry.name):
                stale = time.time() - entry.stat().st_mtime > LEGACY_STALE_SECONDS
            else:
                continue
            path = Path(entry.path)
            if not stale:
                continue
            if entry.is_dir(follow_symlinks=False):
                names = os.listdir(path)
                if entries is None or not all(entries.fullmatch(n) for n in names):
                    continue
                shutil.rmtree(path)
            elif entry.is_file(follow_symlinks=False):
                path.unlink()
            else:
                continue
        except OSError:
            continue  # vanished or not ours to remove: never fail a run over a leftover
        removed.append(path)
    return removed


def make_temporary(
    final: Path, tag: str, *, directory: bool = False, entries: re.Pattern[str] | None = None
) -> Path:
    """Create a new empty temporary file (or folder) for ``final`` in its folder, after
    removing that output's stale temporaries.

    Raises:
        SinkError: the folder is missing or not writable.
    """
    folder = _folder(final)
    if not folder.is_dir():
        raise SinkError(f"output folder does not exist: {folder}")
    remove_stale(final, tag, entries)
    prefix, suffix = f".{final.stem}.{os.getpid()}-{_HOST}.", f".{tag}{final.suffix}"
    try:
        if directory:
            return Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder))
        handle, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    except OSError as exc:
        raise SinkError(f"cannot write in {folder}: {exc.strerror}") from exc
    os.close(handle)
    return Path(name)


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; move it into place only on success."""
    temporary = make_temporary(final, "partial")
    try:
        yield temporary
        publish(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
