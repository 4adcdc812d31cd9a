"""``livematte video`` flags: every conflict between inputs, output and flags is refused with one
line and a non-zero exit before a model loads (the run itself is tested in tests/test_video.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from livematte import cli
from livematte.io.synthetic import write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "a.mp4", frames=5)
    write_clip(folder / "b.mp4", frames=5)
    return folder


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["{a}", "out.mp4", "--format", "matte", "--bg", "white"], 2, "--bg only applies"),
        (["{a}", "out.mov", "--format", "prores4444", "--bg", "red"], 2, "--bg only applies"),
        (["{a}", "out.mov", "--format", "prores4444", "--codec", "h265"], 2, "--codec h265"),
        (["{a}", "out.webm", "--codec", "h264"], 2, "does not apply"),
        (["{a}", "out.mp4", "--quality", "60"], 2, "up to 51"),
        (["{a}", "{b}", "out.mp4"], 4, "not the file"),
        (["{a}", "{b}", "out.png"], 4, "not the file"),
        (["{a}", "{a}"], 4, "overwrite the input"),
        (["{a}", "seq.mp4", "--format", "png-seq"], 4, "writes a folder"),
        (["{a}", "{b}", "new/dir", "--format", "matte", "--bg", "red"], 2, "--bg"),
    ],
)
def test_conflicts_fail_before_any_model(clips, tmp_path, monkeypatch, capsys, no_model, args,
                                         code, message):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    args = [a.format(a=clips / "a.mp4", b=clips / "b.mp4") for a in args]
    assert cli.main(["video", *args, "--no-progress"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert list(tmp_path.iterdir()) == []  # no folder, no file


def test_quality_and_fps_are_checked_when_parsed(capsys):
    parser = cli.build_parser()
    assert parser.parse_args(["video", "a", "b", "--quality", "23"]).quality == 23
    assert parser.parse_args(["video", "a", "b", "--quality", "max"]).quality == "max"
    for bad in (["--quality", "ultra"], ["--quality", "-1"], ["--fps", "0"], ["--fps", "x"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(["video", "a", "b", *bad])
        assert info.value.code == 2
