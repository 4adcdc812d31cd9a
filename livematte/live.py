"""The key bindings of ``livematte cam``: hotkeys turned into config changes.

The LIVE runner (:class:`livematte.runner.LiveRunner`) hands every hotkey action other than
quit and pause to :class:`LiveControls`, whose method of that name switches the background or
stickers on/off by building the pipeline anew from the changed config.

Example::

    controls = LiveControls(build_pipeline(config), ["blur", "#00ff00"])
    run = LiveRunner(source, controls.process, sinks, controls=controls).run()
    controls.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from livematte.frame import Frame

if TYPE_CHECKING:
    from livematte.api import Pipeline
    from livematte.config import Config


class LiveControls:
    """What the hotkeys change, as config: the background and stickers on/off.

    Each switch is a new config handed to ``build_pipeline`` (its one rule says which stages
    run: "stickers off" drops the keypoint stage too unless something else needs it, such as
    ``matting.person_roi``), built from a pool of every stage made so far, so models load once
    and switching back costs nothing.  Every background is built up front: a bad ``--bg``
    fails at start, not at its hotkey.

    Args:
        pipeline: from ``build_pipeline(config)``.
        backgrounds: background specs to cycle; the config's own comes first.
    """

    def __init__(self, pipeline: Pipeline, backgrounds: Sequence[str] = ()) -> None:
        from livematte.api import Pipeline
        from livematte.stages.stickers import stickers_enabled

        self.pipeline = pipeline
        self._base = pipeline.config
        current = self._base.effects.background
        self.backgrounds = [current] + [b for b in backgrounds if b != current]
        self._bg = 0
        self.stickers_on = stickers_enabled(self._base)
        self._has_stickers = self.stickers_on
        # Every stage built so far, with its config slices (what build_pipeline reuses).
        self._pool = Pipeline(list(pipeline.stages), self._base, list(pipeline.slices))
        for i in range(1, len(self.backgrounds)):
            self._bg = i
            self._switch()
        self._bg = 0
        self._switch()

    @property
    def config(self) -> Config:
        """The config the hotkeys have made of the original one."""
        from livematte.config import replace

        pack = self._base.stickers.pack if self.stickers_on else ""
        return replace(
            self._base,
            {"effects.background": self.backgrounds[self._bg], "stickers.pack": pack},
        )

    def _switch(self) -> None:
        from livematte.api import build_pipeline

        new = build_pipeline(self.config, reuse=self._pool)
        pooled = {id(stage) for stage in self._pool.stages}
        for stage, key in zip(new.stages, new.slices, strict=True):
            if id(stage) not in pooled:
                self._pool.stages.append(stage)
                self._pool.slices.append(key)
        self.pipeline = new

    def process(self, frame: Frame) -> Frame:
        """Run the current pipeline on ``frame``."""
        return self.pipeline.process(frame)

    def next_background(self) -> str:
        """Switch to the next background; returns a notice."""
        if len(self.backgrounds) < 2:
            return "only one background: give --bg several times to cycle"
        self._bg = (self._bg + 1) % len(self.backgrounds)
        self._switch()
        return f"background: {self.backgrounds[self._bg]}"

    def toggle_stickers(self) -> str:
        """Turn stickers (and keypoints that run only for them) off or back on."""
        if not self._has_stickers:
            return "no sticker pack: start with --stickers PACK"
        self.stickers_on = not self.stickers_on
        running = {id(stage) for stage in self.pipeline.stages}
        self._switch()
        for stage in self.pipeline.stages:
            if id(stage) not in running:
                stage.reset()  # back from the pool: its tracks are stale after the pause
        return f"stickers {'on' if self.stickers_on else 'off'}"

    def close(self) -> None:
        """Close every stage built (the pipeline's and those waiting in the pool)."""
        self._pool.close()
