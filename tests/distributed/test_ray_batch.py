"""``livematte video ... --engine ray`` on a real local Ray cluster (2 CPUs): the same frames
as the local batch, failures reported per file, exit status as locally."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'livematte[ray]'")

from livematte import cli  # noqa: E402
from livematte.io.sources import open_source  # noqa: E402
from livematte.io.synthetic import write_clip  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "livematte" / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for seed, name in enumerate(("a", "b", "c")):
        write_clip(folder / f"{name}.mp4", frames=12, size=(192, 108), seed=seed)
    (folder / "broken.mp4").write_text("not a video at all")
    return folder


def _frames(path):
    with open_source(path) as source:
        return [frame.image.astype(np.int16) for frame in source]


def _video(*args: str) -> int:
    return cli.main(["video", *args, "--preset", "video", "--bg", "#2050c0", "--no-progress"])


def test_three_clips_over_ray_equal_the_local_batch(cluster, clips, tmp_path, capsys):
    inputs = [str(clips / f"{name}.mp4") for name in ("a", "b", "c")]
    local, remote = tmp_path / "local", tmp_path / "ray"
    local.mkdir()
    remote.mkdir()
    assert _video(*inputs, str(local)) == 0
    assert _video(*inputs, str(remote), "--engine", "ray", "--workers", "2") == 0
    assert "done: 36 frames in " in capsys.readouterr().err
    assert sorted(p.name for p in remote.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    for name in ("a", "b", "c"):
        mine, theirs = _frames(remote / f"{name}.mp4"), _frames(local / f"{name}.mp4")
        assert len(mine) == len(theirs) == 12
        worst = max(float(np.abs(m - t).mean()) for m, t in zip(mine, theirs, strict=True))
        assert worst <= 1.0, f"{name}: mean abs frame difference {worst:.2f} levels"


def test_a_failing_file_is_reported_and_the_others_are_written(cluster, clips, tmp_path, capsys):
    inputs = [str(clips / name) for name in ("a.mp4", "broken.mp4", "c.mp4")]
    assert _video(*inputs, str(tmp_path), "--engine", "ray") == 1
    err = capsys.readouterr().err
    assert f"skipping {clips / 'broken.mp4'}: not a video FFmpeg can read" in err
    assert "1 failed: " in err and "done: 24 frames" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "c.mp4"]


def test_a_single_bad_input_exits_with_its_own_error_code(cluster, clips, tmp_path, capsys):
    status = _video(str(clips / "broken.mp4"), str(tmp_path / "out.mp4"), "--engine", "ray")
    assert status == 3  # SourceError, as locally
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("livematte: error: not a video FFmpeg can read")
    assert not list(tmp_path.iterdir())


def test_more_cpus_per_task_than_the_cluster_has_is_one_clear_line(cluster, clips, tmp_path,
                                                                   capsys):  # fmt: skip
    status = _video(str(clips / "a.mp4"), str(tmp_path / "o.mp4"), "--engine", "ray",
                    "--cpus-per-task", "3")  # fmt: skip
    assert status == 2
    assert "the Ray cluster has 2 CPU(s); a worker needs 3" in capsys.readouterr().err


def test_photos_over_ray_equal_the_local_batch_and_a_bad_one_is_skipped(cluster, tmp_path,
                                                                       capsys):  # fmt: skip
    sample = cv2.imread(str(SAMPLE))
    photos = tmp_path / "in"
    photos.mkdir()
    for n in range(4):  # four different photos: shifted crops of the sample
        cv2.imwrite(str(photos / f"p{n}.png"), sample[n * 16 : n * 16 + 400, n * 24 : n * 24 + 420])
    (photos / "broken.png").write_bytes(b"not a png")
    local, remote = tmp_path / "local", tmp_path / "ray"
    options = ["--preset", "default", "--bg", "#2050c0"]
    assert cli.main(["image", str(photos), str(local) + "/", *options]) == 1
    capsys.readouterr()
    ray_options = ["--engine", "ray", "--workers", "2"]
    assert cli.main(["image", str(photos), str(remote) + "/", *options, *ray_options]) == 1
    err = capsys.readouterr().err
    assert f"livematte: skipped {photos / 'broken.png'}: not a readable image" in err
    assert "4/5 images in " in err and "livematte: error: 1 image(s) failed" in err
    names = sorted(p.name for p in local.iterdir())
    assert names == [f"p{n}.png" for n in range(4)]
    assert sorted(p.name for p in remote.iterdir()) == names
    for name in names:
        mine = cv2.imread(str(remote / name)).astype(np.int16)
        theirs = cv2.imread(str(local / name)).astype(np.int16)
        assert np.abs(mine - theirs).mean() <= 1.0, name
