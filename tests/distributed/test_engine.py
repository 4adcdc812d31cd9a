"""``--engine``: parsing, the one-line error without Ray, and the worker's cancel path (no Ray
needed: the worker is a plain class until the driver wraps it)."""

from __future__ import annotations

import sys

import pytest

from livematte import cli
from livematte.config import load_config
from livematte.distributed import Engine, parse_engine
from livematte.distributed.batch import Resources, worker_config
from livematte.distributed.workers import MattingWorker
from livematte.errors import ConfigError, SourceError
from livematte.io.synthetic import write_clip


@pytest.mark.parametrize(
    ("text", "engine"),
    [
        ("local", Engine()),
        ("ray", Engine("ray")),
        ("ray=auto", Engine("ray", "auto")),
        ("ray=10.0.0.5:6379", Engine("ray", "10.0.0.5:6379")),
        ("ray=ray://head:10001", Engine("ray", "ray://head:10001")),
    ],
)
def test_engine_specs(text, engine):
    assert parse_engine(text) == engine


@pytest.mark.parametrize("text", ["spark", "ray=", "local=x", ""])
def test_bad_engine_specs_are_config_errors(text):
    with pytest.raises(ConfigError, match="--engine must be local, ray or ray=ADDRESS"):
        parse_engine(text)


def test_without_ray_one_line_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    clip = write_clip(tmp_path / "a.mp4", frames=3) and tmp_path / "a.mp4"
    out = tmp_path / "out"
    out.mkdir()
    status = cli.main(["video", str(clip), str(out), "--engine", "ray", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2
    assert err == "livematte: error: --engine ray needs Ray: pip install 'livematte[ray]'\n"
    assert not list(out.iterdir())


def test_worker_threads_follow_reserved_cpus_unless_given():
    config = load_config("default")
    assert config.runtime.threads == 0  # the video preset sets 1 itself
    assert worker_config(config, Resources(cpus=2), False).runtime.threads == 2
    assert worker_config(config, Resources(cpus=2), True) is config
    assert worker_config(config, Resources(cpus=0.5), False) is config
    with pytest.raises(ConfigError, match="--providers cuda,cpu"):
        worker_config(config, Resources(gpus=0.5), False)


def test_cancel_finalizes_the_part_done_and_never_the_final_name(tmp_path):
    write_clip(tmp_path / "a.mp4", frames=20)
    worker = MattingWorker(load_config("default", {"runtime.mode": "video"}))
    assert worker.ready() is None
    real = worker._pipeline

    class CancelAfterFive:  # the driver's cancel arriving while frame 5 is processed
        def process(self, frame):
            if frame.index == 5:
                worker.cancel()
            return real.process(frame)

        def reset(self):
            real.reset()

    worker._pipeline = CancelAfterFive()
    out = tmp_path / "out.mp4"
    task = worker.video(str(tmp_path / "a.mp4"), str(out), {"fmt": "auto"})
    assert task.interrupted and task.error is None
    assert not out.exists()
    assert task.results[0].frames == 6
    assert task.results[0].partial == str(tmp_path / "out.partial.mp4")
    assert "interrupted after 6 frames" in task.notices[-1]
    assert worker.progress() == (0, None)  # nothing running any more
    worker._pipeline = real
    worker.close()


def test_a_worker_that_cannot_build_its_pipeline_hands_over_the_error(tmp_path):
    # e.g. a background image that is not on the shared path this node sees
    missing = tmp_path / "nowhere.png"
    worker = MattingWorker(load_config("video", {"effects.background": str(missing)}))
    error = worker.ready()
    assert isinstance(error, SourceError) and str(missing) in str(error)
