"""The cam hotkeys (``livematte.live.LiveControls``): backgrounds cycled and stickers toggled
as config changes on the real pipeline, models kept, live to a virtual camera and a stream."""

from __future__ import annotations

import numpy as np
from media import RecordingBackend

from livematte.api import build_pipeline
from livematte.config import load_config
from livematte.frame import Frame
from livematte.io.capture import StreamSource
from livematte.io.live_sinks import StreamSink, VirtualCameraSink
from livematte.runner import LiveRunner


def test_real_pipeline_live_to_vcam_and_stream(clip, vcam_backend, tmp_path):
    from livematte.live import LiveControls

    config = load_config("live", {"effects.background": "#00ff00", "runtime.threads": 1})
    controls = LiveControls(build_pipeline(config), ["blur:4", "transparent"])
    try:
        vcam = []

        def sinks(size, fps):
            vcam.append(VirtualCameraSink(size, fps, backend=vcam_backend))
            return [vcam[0], StreamSink(str(tmp_path / "live.ts"), size, fps)]

        runner = LiveRunner(
            StreamSource(clip, fps=30), controls.process, sinks, duration=1.5, controls=controls
        )
        stats = runner.run()
        assert controls.next_background() == "background: blur:4"
        assert controls.toggle_stickers().startswith("no sticker pack")
    finally:
        controls.close()
    assert stats.processed >= 10 and not stats.threads_left
    assert {"segment", "effects", "wait"} <= set(stats.stage_ms)
    assert vcam[0].frames >= 10 and RecordingBackend.last.size == (160, 120)


def test_controls_cycle_backgrounds_and_toggle_stickers():
    from livematte.live import LiveControls
    from livematte.stages.effects import EffectsStage
    from livematte.stages.keypoints import KeypointStage
    from livematte.stages.matting import MattingStage
    from livematte.stages.stickers import StickerStage

    def stage(kind):
        return next(s for s in controls.pipeline.stages if isinstance(s, kind))

    config = load_config("stream", {"stickers.pack": "party", "effects.background": "white"})
    controls = LiveControls(build_pipeline(config), ["#ff0000", "white"])
    assert controls.backgrounds == ["white", "#ff0000"]
    first, matting = stage(EffectsStage), stage(MattingStage)
    assert controls.next_background() == "background: #ff0000"
    second = stage(EffectsStage)
    assert second is not first and second.spec.kind == "color"
    assert stage(MattingStage) is matting  # models stay loaded
    assert controls.toggle_stickers() == "stickers off"
    kinds = {type(s) for s in controls.pipeline.stages}
    assert StickerStage not in kinds and KeypointStage not in kinds  # CPU saved too
    frame = controls.process(Frame(image=np.full((72, 128, 3), 90, np.uint8)))
    assert frame.output is not None and tuple(frame.output[0, 0]) == (0, 0, 255)
    keypoints = next(s for s in controls._pool.stages if isinstance(s, KeypointStage))
    assert controls.toggle_stickers() == "stickers on"
    assert stage(KeypointStage) is keypoints and StickerStage in {
        type(s) for s in controls.pipeline.stages
    }
    controls.next_background()
    assert stage(EffectsStage) is first
    controls.close()


def test_stickers_off_keeps_the_keypoints_matting_needs():
    # With matting.person_roi the keypoint stage serves matting too: the sticker hotkey used
    # to remove it (LiveControls re-derived build_pipeline's rule, wrongly).
    from livematte.live import LiveControls
    from livematte.stages.keypoints import KeypointStage
    from livematte.stages.stickers import StickerStage

    config = load_config("live", {"stickers.pack": "party", "matting.person_roi": True})
    controls = LiveControls(build_pipeline(config))
    assert controls.toggle_stickers() == "stickers off"
    kinds = {type(s) for s in controls.pipeline.stages}
    assert KeypointStage in kinds and StickerStage not in kinds
    controls.close()
