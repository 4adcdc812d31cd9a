"""``livematte video`` on an input cut short: written, exit 0, and the user is told."""

from __future__ import annotations

import av
from media import truncated_copy, write_h264

from livematte import cli
from livematte.io.synthetic import SyntheticSource


def test_truncated_input_is_written_with_exit_0_and_a_warning(tmp_path, capsys):
    images = (frame.image for frame in SyntheticSource(160, 120, 50, 25))
    full = write_h264(tmp_path / "full.mkv", images, 25, audio_lead=0.5)
    cut = truncated_copy(full, 0.6, tmp_path / "cut.mkv")
    out = tmp_path / "out.mp4"
    status = cli.main(["video", cut, str(out), "--no-progress", "--preset", "default"])
    err = capsys.readouterr().err
    assert status == 0, err
    warning = [line for line in err.splitlines() if "warning: cut.mkv ended early: " in line]
    assert len(warning) == 1 and "of ~50 frames" in warning[0]
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("done: ") and "; cut.mkv ended early: " in summary
    assert "audio cut by " in err
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert f"done: {frames} frames " in summary and 10 < frames < 40
