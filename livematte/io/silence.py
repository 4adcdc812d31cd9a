"""Silent audio packets for a stream that ends before its video (see ``VideoFileSink``).

A copied stream has no encoder of ours, so the silence comes from a fresh encoder of the same
codec, used only when its setup (extradata) is the stream's, so the packets decode as part of
it; the caller gives them their timestamps.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from av.audio.codeccontext import AudioCodecContext
    from av.packet import Packet

#: Encoders for silence where FFmpeg's own for the codec is missing or experimental.
SILENCE_ENCODER = {"opus": "libopus", "vorbis": "libvorbis", "mp3": "libmp3lame"}


def silence_packets(ctx: AudioCodecContext, seconds: float) -> list[Packet]:
    """Packets of silence, about ``seconds`` long (whole codec frames), for a stream set up
    like ``ctx``; their timestamps are the caller's to set.

    Raises:
        ValueError: no encoder, or its setup (extradata) differs from the stream's, so its
            packets would not decode as part of it.
    """
    import av

    rate = ctx.sample_rate
    if seconds * rate < 1:
        return []
    name = SILENCE_ENCODER.get(ctx.name, ctx.name)
    encoder = av.CodecContext.create(name, "w")
    encoder.sample_rate, encoder.layout = rate, ctx.layout
    encoder.format = encoder.codec.audio_formats[0]
    encoder.time_base = Fraction(1, rate)
    if ctx.bit_rate:
        encoder.bit_rate = ctx.bit_rate
    encoder.open()
    if ctx.extradata and encoder.extradata != ctx.extradata:
        raise ValueError(f"{name} would not match the stream's {ctx.name} setup")
    size = encoder.frame_size or ctx.frame_size or 1024  # PCM has no frame size: any will do
    count = round(seconds * rate / size)
    if count <= 0:
        return []
    fmt = encoder.format
    dtype = {"s16": np.int16, "s32": np.int32, "flt": np.float32, "dbl": np.float64}
    zeros = np.zeros(
        (len(ctx.layout.channels), size) if fmt.is_planar else (1, size * len(ctx.layout.channels)),
        dtype=dtype[fmt.name.rstrip("p")],
    )
    packets: list[Packet] = []
    for number in range(count + 1):  # one more: an encoder holds a frame back (priming)
        frame = av.AudioFrame.from_ndarray(zeros, format=fmt.name, layout=ctx.layout)
        frame.sample_rate, frame.pts = rate, number * size
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    for packet in packets:
        packet.duration = packet.duration or size
    return packets[:count]
