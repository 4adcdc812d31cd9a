"""The one core every front uses: ``build_pipeline(config)`` and ``process_image(...)``.

A pipeline is an ordered list of stages.  Each stage follows one contract::

    stage.process(frame) -> frame   # fills its own fields, never mutates frame.image
    stage.reset()                   # new shot / resolution change
    stage.close()                   # release sessions and files

Order: keypoints (when enabled; the matting stage may use their person masks), matting,
effects (background + compositing into ``frame.output``), stickers, ID-photo crop.

Example::

    from livematte import load_config, build_pipeline, process_image
    result = process_image(cv2.imread("me.jpg"), load_config("photo"))
    rgba = result.output  # BGRA when the background is transparent
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from livematte.config import Config
from livematte.frame import Frame, Mode


class Stage(Protocol):
    """What every pipeline stage provides."""

    def process(self, frame: Frame) -> Frame: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


class Pipeline:
    """Stages run in order on each frame; also a context manager that closes them."""

    def __init__(self, stages: list[Stage], config: Config):
        self.stages = stages
        self.config = config
        self.mode = Mode(config.runtime.mode)
        self._size: tuple[int, int] | None = None

    def process(self, frame: Frame) -> Frame:
        """Run every stage on ``frame``; resets temporal state when the resolution changes."""
        frame.mode = self.mode
        if self._size is not None and frame.size != self._size:
            self.reset()
        self._size = frame.size
        start = time.perf_counter()
        for stage in self.stages:
            frame = stage.process(frame)
        frame.timings["total"] = (time.perf_counter() - start) * 1000.0
        return frame

    def run(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Process frames lazily, in order."""
        for frame in frames:
            yield self.process(frame)

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def close(self) -> None:
        for stage in self.stages:
            stage.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_pipeline(config: Config) -> Pipeline:
    """Build the pipeline ``config`` describes.

    Raises:
        ModelError: a model is unknown, missing or cannot run on the requested providers.
    """
    # Imported here so `livematte doctor` and config work never pay for model imports.
    from livematte.pipeline.effects import EffectsStage
    from livematte.pipeline.id_photo import IdPhotoStage, id_photo_enabled
    from livematte.pipeline.keypoints import KeypointStage
    from livematte.pipeline.matting import MattingStage
    from livematte.pipeline.stickers import StickerStage, stickers_enabled

    stages: list[Stage] = []
    id_photo = id_photo_enabled(config.effects)
    stickers = stickers_enabled(config)
    # Matting's person-ROI fusion needs the keypoint stage's per-person masks, its closer looks
    # the people's boxes.
    matting = config.matting
    keypoints = config.keypoints.enabled or matting.person_roi or matting.person_crops
    keypoints = keypoints or stickers or id_photo
    if keypoints:
        stages.append(KeypointStage(config.keypoints, config.runtime))
    stages.append(MattingStage(config.matting, config.temporal, config.runtime))
    stages.append(EffectsStage(config.effects, config.runtime))
    if stickers:
        stages.append(StickerStage(config.stickers, config.runtime))
    if id_photo:  # last: it crops and scales the finished composite
        stages.append(IdPhotoStage(config.effects, config.runtime))
    return Pipeline(stages, config)


def process_image(image: np.ndarray, config: Config) -> Frame:
    """Run a one-off pipeline on one BGR image (IMAGE mode) and return the filled frame."""
    from dataclasses import replace

    config = replace(config, runtime=replace(config.runtime, mode=Mode.IMAGE.value))
    with build_pipeline(config) as pipeline:
        return pipeline.process(Frame(image=image))
