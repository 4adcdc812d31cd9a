"""Silent packets that decode as part of an existing audio stream (AAC copied, Opus)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from livematte.io.silence import silence_packets
from livematte.io.synthetic import write_clip


@pytest.mark.parametrize("ext, codec", [("mp4", "aac"), ("mkv", "libopus")])
def test_silence_decodes_as_part_of_the_stream(tmp_path, ext, codec):
    path = tmp_path / f"clip.{ext}"
    write_clip(path, frames=5, audio=codec)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        packets = silence_packets(stream.codec_context, 0.3)
        seconds = sum(p.duration for p in packets) / stream.codec_context.sample_rate
        assert seconds == pytest.approx(0.3, abs=0.011)  # whole codec frames of 20 or 21 ms
        decoder = av.CodecContext.create(stream.codec_context.name, "r")
        decoder.extradata = stream.codec_context.extradata
        decoder.sample_rate, decoder.layout = stream.sample_rate, stream.layout
        samples = [f.to_ndarray() for p in packets for f in decoder.decode(p)]
    assert samples and np.abs(np.concatenate(samples, axis=-1)).max() < 1e-3
    assert silence_packets(stream.codec_context, 0.005) == []  # under half a frame
