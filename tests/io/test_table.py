"""The sink table and the two protocols: every sink by name, every source and sink alike."""

from __future__ import annotations

import numpy as np
import pytest

from livematte.errors import SinkError
from livematte.frame import Frame
from livematte.io.base import Sink, SinkBase, Source
from livematte.io.capture import CameraSource, StreamSource
from livematte.io.sinks import ImageSink, MemorySink, NullSink, PngSequenceSink
from livematte.io.sources import open_source
from livematte.io.synthetic import SyntheticSource
from livematte.io.table import SINKS, make_sink, open_sink
from livematte.io.video_sink import VideoFileSink


def test_every_sink_is_in_the_table_and_keeps_the_protocol():
    assert set(SINKS) == {"window", "vcam", "stream", "video", "png-seq", "image", "memory",
                          "null"}  # fmt: skip
    for name, kind in SINKS.items():
        assert issubclass(kind, SinkBase), name
    made = [make_sink("null", "composite"), make_sink("memory"),
            make_sink("vcam", (32, 24), 30), make_sink("window", "t")]  # fmt: skip
    assert all(isinstance(sink, Sink) for sink in made)


def test_an_unknown_sink_names_the_known_ones():
    with pytest.raises(SinkError, match="unknown sink 'ndi'; use one of window, vcam"):
        make_sink("ndi")


def test_open_sink_picks_the_file_sink_for_the_output(tmp_path):
    assert type(open_sink(tmp_path / "frames", "png-seq")) is PngSequenceSink
    assert type(open_sink(tmp_path / "out.mp4")) is VideoFileSink


def test_a_sink_sent_a_frame_counts_it_and_its_latency(tmp_path):
    frame = Frame(np.full((24, 32, 3), 9, np.uint8))
    for sink in (NullSink(keep=1), MemorySink(), ImageSink(tmp_path / "one.png", "composite")):
        with sink:
            sink.send(frame, captured_at=0.0)
        assert sink.frames == 1 and len(sink.latencies) == 1, type(sink).__name__
    assert (tmp_path / "one.png").exists()


def test_files_cameras_and_streams_are_one_source_protocol(tmp_path):
    sources = [SyntheticSource(16, 12, 2), open_source("synthetic:16x12:2"),
               CameraSource(0), StreamSource(str(tmp_path / "x.mp4"))]  # fmt: skip
    assert all(isinstance(source, Source) for source in sources)
    with open_source("synthetic:16x12:3") as source:
        frames = list(source.items())
    assert [f.index for f in frames] == [0, 1, 2] and source.status == "live"
