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
from dataclasses import replace as dc_replace
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
    """Stages run in order on each frame; also a context manager that closes them.

    Built by ``build_pipeline``, which records the config slices each stage was made from, so
    ``rebuild`` can change the config and keep every stage whose slice did not change (models
    stay loaded), and ``set_background`` can swap the background for an in-memory picture.
    """

    def __init__(
        self,
        stages: list[Stage],
        config: Config,
        slices: list[tuple[object, ...] | None] | None = None,
    ):
        self.stages = stages
        self.config = config
        self.mode = Mode(config.runtime.mode)
        #: (stage class, config slices...) per stage, what ``build_pipeline(reuse=...)`` matches;
        #: None for a stage no config describes (never taken over).
        self.slices = slices if slices is not None else [None] * len(stages)
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

    def rebuild(self, config: Config) -> Pipeline:
        """The pipeline for ``config``, taking over this one's stages whose config slices are
        unchanged (a new background or sticker pack does not reload the models) and closing
        the others.  Use the returned pipeline from then on, not ``self``."""
        new = build_pipeline(config, reuse=self)
        kept = {id(stage) for stage in new.stages}
        for stage in self.stages:
            if id(stage) not in kept:
                stage.close()
        return new

    def set_background(self, image: np.ndarray) -> None:
        """Composite over ``image`` (BGR uint8, cover-fitted to each frame) from now on."""
        from livematte.stages.effects import EffectsStage

        for i, stage in enumerate(self.stages):
            if isinstance(stage, EffectsStage):
                stage.close()
                self.stages[i] = EffectsStage(self.config.effects, self.config.runtime, image=image)
                self.slices[i] = None  # holds a picture no config names: never taken over

    def matting_model(self) -> str:
        """Which matting model and execution provider this pipeline uses (for the fronts)."""
        for stage in self.stages:
            describe = getattr(stage, "describe", None)
            if describe is not None:
                return str(describe())
        return "none"

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


def build_pipeline(
    config: Config, *, reuse: Pipeline | None = None, front: list[Stage] | None = None
) -> Pipeline:
    """Build the pipeline ``config`` describes.

    Args:
        config: the whole config; each stage gets only its slice.
        reuse: a pipeline whose stages are taken over where their class and config slices are
            equal (``Pipeline.rebuild`` does this and closes the rest).
        front: stages standing in for the keypoint and matting stages (they fill
            ``frame.alpha``, and ``frame.people`` when stickers or an ID photo follow).

    Raises:
        ModelError: a model is unknown, missing or cannot run on the requested providers.
    """
    # Imported here so `livematte doctor` and config work never pay for model imports.
    from livematte.stages.effects import EffectsStage
    from livematte.stages.id_photo import IdPhotoStage, id_photo_enabled
    from livematte.stages.keypoints import KeypointStage
    from livematte.stages.matting import MattingStage
    from livematte.stages.stickers import StickerStage, stickers_enabled

    old: dict[tuple[object, ...], Stage] = {}
    if reuse is not None:
        old = {key: s for key, s in zip(reuse.slices, reuse.stages, strict=True) if key}
    stages: list[Stage] = []
    slices: list[tuple[object, ...] | None] = []

    def add(cls: type, *parts: object) -> None:
        key = (cls, *parts)
        stages.append(old.pop(key) if key in old else cls(*parts))
        slices.append(key)

    id_photo = id_photo_enabled(config.effects)
    stickers = stickers_enabled(config)
    if front is not None:
        stages.extend(front)
        slices.extend([None] * len(front))
    else:
        # Matting's person-ROI fusion needs the keypoint stage's per-person masks, its closer
        # looks and person gating the people's boxes.
        matting = config.matting
        people = matting.person_roi or matting.person_crops or matting.person_gate
        keypoints = config.keypoints.enabled or people
        if keypoints or stickers or id_photo:
            # Built because something needs it, whatever ``enabled`` says: the same stage
            # serves analysis, stickers and ID photos (``rebuild`` keeps its models).
            add(KeypointStage, dc_replace(config.keypoints, enabled=True), config.runtime)
        add(MattingStage, config.matting, config.temporal, config.runtime)
    add(EffectsStage, config.effects, config.runtime)
    if stickers:
        add(StickerStage, config.stickers, config.runtime)
    if id_photo:  # last: it crops and scales the finished composite
        add(IdPhotoStage, config.effects, config.runtime)
    return Pipeline(stages, config, slices)


def process_image(image: np.ndarray, config: Config) -> Frame:
    """Run a one-off pipeline on one BGR image (IMAGE mode) and return the filled frame."""
    from dataclasses import replace

    config = replace(config, runtime=replace(config.runtime, mode=Mode.IMAGE))
    with build_pipeline(config) as pipeline:
        return pipeline.process(Frame(image=image))
