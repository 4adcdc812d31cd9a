"""Matting stage: model adapters -> coarse mask -> refinement -> temporal stabilisation.

``MattingStage.process(frame)`` fills ``frame.alpha`` (HxW float32 0..1 at the frame's full
resolution) and, when ``config.foreground``, ``frame.foreground`` (HxWx3 uint8 BGR,
colour-decontaminated), and records ``segment``, ``temporal``, ``refine`` and ``foreground``
milliseconds in ``frame.timings``.

Model adapters (``livematte.stages.matting_adapters``) turn one family of ONNX models into
a ``CoarseMatte``: a mask covering the whole frame at the model's resolution, plus the frame
resized to the same grid as a guide.

Person ROI (``config.person_roi``): the keypoint stage's landmark model also segments each
tracked person in its 256x256 crop (``frame.person_masks``).  ``fuse_person_masks`` warps each
into the coarse grid and, inside the crop (feathered at its edge), keeps per pixel whichever
of the two probabilities is further from 0.5.  Rules measured on p3m / COCO+OCHuman
(``scripts/eval_matting.py --person-roi``): replace and mean erase the other people inside a
crop (TF.js three_people IoU 0.91 -> 0.32 / 0.79), max barely helps (COCO IoU +0.016), the
more-confident rule wins (p3m SAD 0.87x live / 0.85x photo, gradient 0.96-0.97x, COCO IoU
+0.03).  Everyone given is united first and a mask's "background" counts only near its
person (see ``fuse_person_masks``); ``config.person_crops`` adds a closer look per person;
``config.person_gate`` then fades out what neither a confident core nor a person found stands
behind (``person_gate.core_gate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from livematte.config import MattingConfig, RuntimeConfig, TemporalConfig
from livematte.frame import Frame, Mode
from livematte.ops.band import Band, find_band, opaque_mask
from livematte.ops.compose import resize_image
from livematte.ops.person_gate import core_gate
from livematte.ops.person_roi import CropMask, fuse_crop_masks, fuse_person_masks
from livematte.ops.pose_detection import REFILLS, Roi, crop_roi
from livematte.ops.refine import (
    closed_form_refine,
    estimate_foreground,
    fast_guided_upsample,
    fit_clip,
    upsample,
)
from livematte.ops.temporal import AlphaStabilizer, CoarseMaskStabilizer
from livematte.stages.matting_adapters import (
    CoarseMatte,
    MattingAdapter,
    MultiViewAdapter,
    RobustVideoMattingAdapter,
    SelfieSegmentationAdapter,
    adapter_for_session,
    refit,
)
from livematte.stages.model_choice import EMBEDDED, LANDSCAPE, SQUARE, choose_model, resolve_model
from livematte.stages.rvm import RvmMatting

__all__ = ["MattingStage"]

#: Margin added on each side of a person's box (fraction of its long side) for a closer look:
#: landmark boxes stop at the landmarks, so hair, hands and feet need room.
CROP_MARGIN = 0.25


class MattingStage:
    """Person matte at full resolution, temporally stable in VIDEO/LIVE modes.

    Args:
        config: model, fit, refinement, person-ROI fusion and foreground settings (fusion
            needs ``frame.person_masks`` from the keypoint stage; frames without any keep the
            whole-frame mask).
        temporal: stabilisation settings (used in VIDEO and LIVE modes only).
        runtime: execution providers and threads for the model sessions.

    Example::

        stage = MattingStage(MattingConfig(refine="guided"), TemporalConfig(), RuntimeConfig())
        frame = stage.process(Frame(image=cv2.imread("me.jpg")))
        rgba = np.dstack([frame.foreground, (frame.alpha * 255).astype(np.uint8)])

    Raises:
        ModelError / ProviderError: from the session factory when a model cannot be loaded.
    """

    def __init__(
        self,
        config: MattingConfig | None = None,
        temporal: TemporalConfig | None = None,
        runtime: RuntimeConfig | None = None,
        *,
        session_factory: Callable[..., object] | None = None,
    ) -> None:
        self.config = config or MattingConfig()
        self.temporal = temporal or TemporalConfig()
        self.runtime = runtime or RuntimeConfig()
        self._factory = session_factory
        self._adapters: dict[str, MattingAdapter] = {}
        self._stabilizer = AlphaStabilizer(
            self.temporal.strength,
            self.temporal.scene_cut_threshold,
            self.temporal.motion_threshold,
        )
        self._coarse_stabilizer = CoarseMaskStabilizer(
            self.temporal.strength,
            self.temporal.scene_cut_threshold,
            self.temporal.warp_threshold,
            self.temporal.change_threshold,
        )
        self._last: tuple[str, int, int] | None = None
        #: ``matting.model`` resolved for this pipeline ("auto" -> the best installed model).
        self.model = resolve_model(self.config.model, self.runtime.mode, self.runtime.providers)
        self._rvm: RvmMatting | None = None
        self._used: str | None = None
        self._views: MultiViewAdapter | None = None
        #: (frame, the frame on the model's grid) of the last ``refine`` call.
        self._small: tuple[np.ndarray, np.ndarray] | None = None
        self._band: Band | None = None

    def describe(self) -> str:
        """Which model and execution provider matte the frames, e.g. "rvm_mobilenetv3 (cpu)".

        Before the first frame, the model this stage will load; after, the one it ran.
        """
        name = self._used or (self.model if self.model != EMBEDDED else "selfie_segmentation")
        adapter = self._adapters.get(name)
        provider = getattr(getattr(adapter, "session", None), "provider", None)
        text = name + (f" ({provider})" if provider else "")
        if self._rvm is not None:
            text += " + selfie_segmentation person gating"
        return text

    @property
    def providers(self) -> dict[str, str]:
        """Execution provider actually used per loaded model."""
        return {
            name: str(getattr(getattr(a, "session", None), "provider", "?"))
            for name, a in self._adapters.items()
        }

    def adapter(self, name: str) -> MattingAdapter:
        """The adapter for a model name or .onnx path, loading it on first use."""
        found = self._adapters.get(name)
        if found is None:
            factory = self._factory
            if factory is None:
                from livematte.models.session import create_session as factory
            source: str | Path = Path(name) if name.endswith(".onnx") else name
            session = factory(
                source, providers=self.runtime.providers, threads=self.runtime.threads
            )
            found = adapter_for_session(session, self.config)
            self._adapters[name] = found
        return found

    def views(self) -> MultiViewAdapter | None:
        """The photo views of the embedded models (``config.multi_view``), or None.

        None when the model is not "auto" or a custom model stands under an embedded name.
        """
        embedded = self.config.model in ("auto", EMBEDDED)
        if self._views is None and self.config.multi_view and embedded:
            square, landscape = self.adapter(SQUARE), self.adapter(LANDSCAPE)
            if isinstance(square, SelfieSegmentationAdapter) and isinstance(
                landscape, SelfieSegmentationAdapter
            ):
                views = [refit(square, "stretch"), refit(square, "letterbox")]
                self._views = MultiViewAdapter([*views, refit(landscape, "stretch")])
        return self._views

    def person_crops(
        self, image: np.ndarray, boxes: list[tuple[float, float, float, float]]
    ) -> list[CropMask]:
        """The square embedded model on a square crop around each box (l, t, r, b), any finder.

        Boxes whose crop would not be smaller than the image give no closer look and are
        skipped, as are empty ones.  Measured on COCO/OCHuman with every person given (their
        annotated boxes): 0.567 IoU; with black outside the image and no look at people over
        half the image 0.545; adding the closer look (max) instead of replacing 0.554.
        """
        square = self.adapter(SQUARE)
        if not isinstance(square, SelfieSegmentationAdapter):
            return []
        view = refit(square, "stretch")
        side_px = square.input_size[0]
        height, width = image.shape[:2]
        crops = []
        for left, top, right, bottom in boxes:
            side = max(right - left, bottom - top) * (1.0 + 2.0 * CROP_MARGIN)
            if not 1.0 <= side < max(width, height):
                continue
            roi = Roi((left + right) / 2.0, (top + bottom) / 2.0, side, 0.0)
            prob = view.predict(crop_roi(image, roi, side_px)).alpha
            # Past the image's edge the crop is partly made up: two more fills to take the
            # median with (``fuse_crop_masks``); two more 256 px model runs, such crops only.
            refills: tuple[np.ndarray, ...] = ()
            if roi.past_edge(width, height):
                refills = tuple(
                    view.predict(crop_roi(image, roi, side_px, fill=fill)).alpha for fill in REFILLS
                )
            crops.append(CropMask(prob, roi.crop_to_image(side_px), refills))
        return crops

    def reset(self) -> None:
        """Forget temporal and recurrent state (new shot)."""
        self._stabilizer.reset()
        self._coarse_stabilizer.reset()
        for adapter in self._adapters.values():
            adapter.reset()
        if self._rvm is not None:
            self._rvm.reset()
        self._last = None

    def close(self) -> None:
        """Release model sessions."""
        for adapter in self._adapters.values():
            close = getattr(getattr(adapter, "session", None), "close", None)
            if close is not None:
                close()
        self._adapters.clear()
        self._views = None

    def process(self, frame: Frame) -> Frame:
        """Fill ``frame.alpha`` (and ``frame.foreground``) for one frame; returns ``frame``."""
        image = frame.image
        height, width = image.shape[:2]
        stateful = frame.mode is not Mode.IMAGE
        name = choose_model(self.model, width, height)
        # Photos on the embedded segmenter: the median of its views (config matting.multi_view).
        views = None if stateful or self.model != EMBEDDED else self.views()
        adapter = views or self.adapter(name)
        self._used = name
        key = (name, width, height)
        if not stateful or key != self._last:
            # IMAGE mode is stateless; a new model or resolution starts a new history.
            self.reset()
        self._last = key

        rvm = isinstance(adapter, RobustVideoMattingAdapter)
        # RVM's own recurrence does not stop its flicker on real clips (0.87e-3 against the
        # video preset's 0.62e-3): it goes through the same stabiliser as the segmenter.
        smooth = stateful and self.temporal.enabled and (rvm or not adapter.recurrent)
        t0 = time.perf_counter()
        if rvm:
            coarse = self._rvm_coarse(adapter, frame, stateful)
        else:
            coarse = adapter.predict(image)
            if self.config.person_crops and frame.people:
                crops = self.person_crops(image, [person.box for person in frame.people])
                coarse.alpha = fuse_crop_masks(coarse.alpha, crops, (width, height))
            if self.config.person_roi and frame.person_masks:
                coarse.alpha = fuse_person_masks(coarse.alpha, frame.person_masks, (width, height))
            if self.config.person_gate:
                boxes = [person.box for person in frame.people]
                coarse.alpha = coarse.alpha * core_gate(coarse.alpha, boxes, (width, height))
        t1 = time.perf_counter()
        if smooth and self.temporal.motion_compensation:
            # The model's own flips, on still and moving bodies alike, along optical flow.
            coarse.alpha = self._coarse_stabilizer.update(coarse.alpha, coarse.guide)
        t_coarse = time.perf_counter()
        alpha = self.refine(coarse.alpha, coarse.guide, image, matte=rvm and not stateful)
        t2 = time.perf_counter()
        if smooth:
            # Then the final alpha: it also carries image noise the guided filter let in.
            # refine() made ``alpha`` for this frame alone: the smoother works in it.
            alpha = self._stabilizer.update(alpha, coarse.guide, own=True)
            # It is also the smoother's history for the next frame: read-only, so a later
            # stage or an API caller that writes into frame.alpha fails loudly instead.
            alpha.flags.writeable = False
        t3 = time.perf_counter()
        frame.alpha = alpha
        if self.config.foreground:
            frame.foreground = self.foreground(image, alpha, coarse.foreground)
            frame.band = self.band(alpha)
        t4 = time.perf_counter()
        frame.timings.update(
            segment=(t1 - t0) * 1e3,
            refine=(t2 - t_coarse) * 1e3,
            temporal=(t3 - t2 + t_coarse - t1) * 1e3,
        )
        if self.config.foreground:
            frame.timings["foreground"] = (t4 - t3) * 1e3
        return frame

    def _rvm_coarse(
        self, adapter: RobustVideoMattingAdapter, frame: Frame, stateful: bool
    ) -> CoarseMatte:
        """RVM's gated coarse matte (``livematte.stages.rvm``), photo or video."""
        if self._rvm is None or self._rvm.rvm is not adapter:
            self._rvm = RvmMatting(adapter, self._evidence)
        if stateful:
            return self._rvm.video(frame, self.temporal.scene_cut_threshold)
        return self._rvm.photo(frame)

    def _evidence(self, frame: Frame) -> np.ndarray:
        """The embedded segmenter's person probability, fused with the keypoint stage's."""
        width, height = frame.size
        alpha = self.adapter(choose_model(EMBEDDED, width, height)).predict(frame.image).alpha
        if frame.person_masks:
            alpha = fuse_person_masks(alpha, frame.person_masks, (width, height))
        return alpha

    def refine(
        self, mask: np.ndarray, guide: np.ndarray, image: np.ndarray, *, matte: bool = False
    ) -> np.ndarray:
        """Full-resolution alpha from a coarse mask per ``config.refine``.

        ``matte``: the mask is a real matte (RVM), not a probability: the colour guide is used
        and the probability clip (``clip_low``/``clip_high``) is not applied.  ``guide`` (the
        frame on the mask's grid) is kept for ``foreground`` on the same ``image``.
        """
        cfg = self.config
        height, width = image.shape[:2]
        self._small = (image, guide)
        clip = (0.0, 1.0) if matte else (cfg.clip_low, cfg.clip_high)
        if cfg.refine == "none" or mask.shape == (height, width):
            # Models that already predict a full-resolution matte skip the guided filter.
            alpha = fit_clip(upsample(mask, (width, height)), *clip)
        else:
            color = matte or cfg.guide == "color" or cfg.refine == "closed_form"
            alpha = fast_guided_upsample(
                mask,
                image,
                cfg.guided_radius,
                cfg.guided_eps,
                guide_low=guide,
                color=color,
                clip=clip,
            )
        if cfg.refine == "closed_form":
            alpha = closed_form_refine(alpha, image, cfg.band_width, cfg.solve_scale)
        return alpha

    def foreground(
        self, image: np.ndarray, alpha: np.ndarray, predicted: np.ndarray | None = None
    ) -> np.ndarray:
        """Decontaminated BGR uint8 foreground per ``config.foreground_method``."""
        method = self.config.foreground_method
        if method == "auto":
            if predicted is not None:
                fg = resize_image(predicted, (image.shape[1], image.shape[0]))
                if fg is predicted:
                    fg = fg.copy()
                # Opaque pixels keep the frame itself (the model's colours only approximate it).
                cv2.copyTo(image, opaque_mask(alpha), fg)
                return fg
            # fast matches full-resolution blur fusion on the fringe test (16.6 vs 16.5) at
            # a quarter of the cost; ml is worth its time only on photos.
            method = "ml" if self.config.refine == "closed_form" else "fast"
        # The frame on the model's grid, when refine() just saw this frame: no second shrink.
        small = self._small[1] if self._small is not None and self._small[0] is image else None
        band = find_band(alpha) if method in ("fast", "blur_fusion") else None
        self._band = band
        return estimate_foreground(image, alpha, method, small, band)

    def band(self, alpha: np.ndarray) -> Band | None:
        """The band (``livematte.ops.band``) ``foreground`` found in ``alpha``, or None."""
        band = self._band
        return band if band is not None and band.source is alpha else None
