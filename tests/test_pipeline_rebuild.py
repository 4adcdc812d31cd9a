"""``Pipeline.rebuild`` keeps the stages whose config did not change (models stay loaded)."""

from __future__ import annotations

import numpy as np

from livematte.api import build_pipeline
from livematte.config import load_config
from livematte.frame import Frame
from livematte.stages.effects import EffectsStage
from livematte.stages.keypoints import KeypointStage
from livematte.stages.matting import MattingStage
from livematte.stages.stickers import StickerStage


def _by_type(pipeline):
    return {type(stage): stage for stage in pipeline.stages}


def test_rebuild_keeps_unchanged_stages_and_closes_the_rest(monkeypatch):
    closed = []
    monkeypatch.setattr(EffectsStage, "close", lambda self: closed.append(self))
    first = build_pipeline(load_config("photo", {"keypoints.enabled": True}))
    before = _by_type(first)
    second = first.rebuild(load_config("photo", {"effects.background": "blur:5",
                                                 "stickers.pack": "party"}))  # fmt: skip
    after = _by_type(second)
    # Stickers need the keypoint stage: the same one (its `enabled` flag is not its business).
    assert after[KeypointStage] is before[KeypointStage]
    assert after[MattingStage] is before[MattingStage]
    assert after[EffectsStage] is not before[EffectsStage] and closed == [before[EffectsStage]]
    assert StickerStage in after
    third = second.rebuild(second.config)
    assert [id(s) for s in third.stages] == [id(s) for s in second.stages]


def test_set_background_uses_the_picture_and_is_never_reused():
    pipeline = build_pipeline(load_config("default", {"effects.background": "white"}), front=[])
    green = np.zeros((4, 4, 3), np.uint8)
    green[:] = (0, 255, 0)
    pipeline.set_background(green)
    frame = Frame(image=np.zeros((8, 8, 3), np.uint8), alpha=np.zeros((8, 8), np.float32))
    assert (pipeline.process(frame).output == (0, 255, 0)).all()
    effects = _by_type(pipeline)[EffectsStage]
    assert _by_type(pipeline.rebuild(pipeline.config))[EffectsStage] is not effects
