"""Temporary names and atomic renames: modes follow the umask, stale temporaries of an output
are removed on the next run (only ours, only when their writer is gone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from media import file_mode as mode
from media import umask_fixture  # noqa: F401 - the umask fixture

from livematte import atomic
from livematte.atomic import atomic_path, make_temporary, publish, remove_stale

REPO = Path(__file__).resolve().parents[1]


def test_current_umask_reads_without_changing_it(umask):
    assert atomic.current_umask() == umask
    assert os.umask(umask) == umask  # still set


def test_atomic_file_gets_the_mode_open_would_give(tmp_path, umask):
    with atomic_path(tmp_path / "out.png") as temporary:
        assert mode(temporary) == 0o600  # private while it is being written
        temporary.write_bytes(b"data")
    assert mode(tmp_path / "out.png") == 0o666 & ~umask
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert mode(tmp_path / "out.png") == mode(plain)


def test_published_folder_gets_the_mode_mkdir_would_give(tmp_path, umask):
    folder = make_temporary(tmp_path / "seq", "tmp", directory=True)
    publish(folder, tmp_path / "seq")
    (tmp_path / "plain").mkdir()
    assert mode(tmp_path / "seq") == 0o777 & ~umask == mode(tmp_path / "plain")


def _writer(final: Path) -> subprocess.Popen[str]:
    """A real process that makes a temporary for ``final`` and waits to be killed."""
    code = (
        "import sys, time; from pathlib import Path; from livematte.atomic import make_temporary;"
        f"print(make_temporary(Path({str(final)!r}), 'tmp'), flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip


def test_temporary_of_a_killed_writer_is_removed_on_the_next_run(tmp_path):
    final = tmp_path / "clip.mp4"
    writer = _writer(final)
    try:
        left = Path(writer.stdout.readline().strip())
        assert left.is_file() and left.name.startswith(f".clip.{writer.pid}-")
        make_temporary(final, "tmp").unlink()  # the writer is alive: its file stays
        assert left.is_file()
    finally:
        writer.send_signal(signal.SIGKILL)  # kill -9: no cleanup of its own
        writer.wait()
        writer.stdout.close()
    assert left.is_file()
    fresh = make_temporary(final, "tmp")
    assert not left.exists() and fresh.is_file()


def test_only_our_stale_temporaries_of_that_output_are_removed(tmp_path):
    gone = 2**22 + 12345  # above Linux's default pid_max: no such process
    while True:
        try:
            os.kill(gone, 0)
            gone += 1
        except ProcessLookupError:
            break
    host = atomic._HOST
    other_host = "000000" if host != "000000" else "111111"
    names = {
        f".clip.{gone}-{host}.abcd_123.tmp.mp4": False,  # ours, writer gone: removed
        f".clip.{os.getpid()}-{host}.abcd_123.tmp.mp4": True,  # writer alive
        f".clip.{gone}-{other_host}.abcd_123.tmp.mp4": True,  # another machine's pid
        f".clip.{gone}-{host}.abcd_123.tmp.mkv": True,  # another output
        f".clip2.{gone}-{host}.abcd_123.tmp.mp4": True,  # another output
        f".clip.{gone}-{host}.abcd_123.partial.mp4": True,  # another tag
        f".clip.{gone}-{host}.abcd_12.tmp.mp4": True,  # not our random part
        "clip.partial.mp4": True,  # a kept Ctrl-C partial is the user's
        ".clip.oldstyle.tmp.mp4": True,  # legacy name, recent: maybe still written
        ".clip.old_styl.tmp.mp4": False,  # legacy name, a day untouched
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    day_old = time.time() - atomic.LEGACY_STALE_SECONDS - 60
    os.utime(tmp_path / ".clip.old_styl.tmp.mp4", (day_old, day_old))
    removed = remove_stale(tmp_path / "clip.mp4", "tmp")
    assert sorted(p.name for p in removed) == sorted(n for n, kept in names.items() if not kept)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, k in names.items() if k)


def test_stale_folder_is_removed_only_when_it_holds_only_our_files(tmp_path):
    import re

    entries = re.compile(r"frame_\d{6}\.png")
    host, gone = atomic._HOST, 2**22 + 54321
    ours = tmp_path / f".seq.{gone}-{host}.abcdefgh.tmp"
    mixed = tmp_path / f".seq.{gone}-{host}.hgfedcba.tmp"
    for folder in (ours, mixed):
        folder.mkdir()
        (folder / "frame_000000.png").write_bytes(b"x")
    (mixed / "notes.txt").write_text("someone else's")
    assert remove_stale(tmp_path / "seq", "tmp", entries) == [ours]
    assert mixed.is_dir() and not ours.exists()
