"""Model adapters: one family of ONNX matting/segmentation models -> a ``CoarseMatte``.

* ``SelfieSegmentationAdapter`` - the embedded MediaPipe models (NHWC RGB 0..1 input of a
  fixed size; output person probability).  Letterbox: the frame is scaled to fit and padded
  with black, and the padding is cropped out of the output; stretch: scaled to fill.
* ``RobustVideoMattingAdapter`` - RVM's published ONNX signature (``src`` [B,3,H,W] RGB 0..1,
  recurrent ``r1i..r4i``, ``downsample_ratio`` [1] fp32 -> ``fgr, pha, r1o..r4o``), or the
  same without ``downsample_ratio`` (converted from the TF.js export: the low-resolution
  branch).  The adapter owns the four state tensors and resets them on resolution change.
* ``MultiViewAdapter`` - photos: the per-pixel median of several views of one frame (the
  embedded models at different fits), on one grid of the frame's own aspect.
* ``MODNetAdapter`` - MODNet's published ONNX signature (``[1,3,H,W]`` RGB normalised to
  -1..1, short side scaled to 512 when the frame is outside 512, H and W multiples of 32;
  output matte ``[1,1,H,W]``).

``adapter_for_session`` picks the adapter from a session's input signature.  A session is
anything with ``OnnxSession``'s shape: ``models.session.ModelSession``, or a test's fake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import cv2
import numpy as np

from livematte.config import MattingConfig
from livematte.errors import ModelError
from livematte.ops.compose import resize_image

#: One dimension of a declared input shape: a size, or a symbolic name, or None (unknown).
Dim: TypeAlias = "int | str | None"


class OnnxSession(Protocol):
    """What the adapters need of a loaded model (``models.session.ModelSession`` is one): the
    declared input shapes and the output names, in the model's order, and ``run`` (every
    output by name).  ``input_types`` ("tensor(float16)"...) and ``reset()`` (forget the
    model's own recurrent state) are used when a session has them."""

    @property
    def input_shapes(self) -> Mapping[str, Sequence[Dim]]: ...

    @property
    def output_names(self) -> Sequence[str]: ...

    def run(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]: ...


@dataclass
class CoarseMatte:
    """A model's mask for one frame, before refinement.

    Attributes:
        alpha: hxw float32 0..1 covering the whole frame (padding already cropped out).
        guide: hxwx3 uint8 BGR, the frame resized to ``alpha``'s grid.
        foreground: hxwx3 uint8 BGR foreground when the model predicts one, else None.
    """

    alpha: np.ndarray
    guide: np.ndarray
    foreground: np.ndarray | None = None


class MattingAdapter(Protocol):
    """What ``MattingStage`` needs from a model family."""

    #: The model carries state between frames (no extra temporal smoothing is applied).
    recurrent: bool

    @property
    def session(self) -> OnnxSession | None:
        """The model's session (its provider is reported; the stage closes it)."""
        ...

    def predict(self, image: np.ndarray) -> CoarseMatte:
        """Coarse matte of one HxWx3 uint8 BGR frame."""
        ...

    def reset(self) -> None:
        """Forget recurrent state."""
        ...


def _input_dtype(session: OnnxSession, name: str) -> type[np.floating]:
    # fp16 exports (RVM ships one) need fp16 inputs; sessions without type info get float32.
    types = getattr(session, "input_types", None)
    text = str(types.get(name, "")) if isinstance(types, Mapping) else ""
    return np.float16 if "float16" in text else np.float32


def _shapes(session: OnnxSession) -> dict[str, list[Dim]]:
    return {name: list(shape) for name, shape in session.input_shapes.items()}


class SelfieSegmentationAdapter:
    """MediaPipe-style segmentation: fixed NHWC RGB 0..1 input, person probability out.

    Args:
        session: object with ``run(dict) -> dict`` (a ``ModelSession``).
        input_size: (width, height) of the model input.
        fit: "letterbox" (keep aspect, pad black, crop the padding out) or "stretch".
    """

    recurrent = False

    def __init__(
        self,
        session: OnnxSession,
        input_size: tuple[int, int],
        fit: str = "letterbox",
        input_name: str = "image",
        output_name: str | None = None,
    ) -> None:
        self.session = session
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.fit = fit
        self.input_name = input_name
        self.output_name = output_name
        mw, mh = self.input_size
        self._buf = np.zeros((1, mh, mw, 3), np.float32)
        self._geometry: tuple[int, int, int, int] | None = None

    def geometry(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, content_w, content_h) of the frame inside the model input."""
        mw, mh = self.input_size
        if self.fit == "stretch":
            return 0, 0, mw, mh
        s = min(mw / width, mh / height)
        cw = min(mw, max(1, round(width * s)))
        ch = min(mh, max(1, round(height * s)))
        return (mw - cw) // 2, (mh - ch) // 2, cw, ch

    def predict(self, image: np.ndarray) -> CoarseMatte:
        """Coarse person mask of ``image`` (HxWx3 uint8 BGR)."""
        x0, y0, cw, ch = geo = self.geometry(image.shape[1], image.shape[0])
        if geo != self._geometry:
            self._buf.fill(0.0)  # padding must be black again where the old content was
            self._geometry = geo
        content = resize_image(image, (cw, ch))
        rgb = cv2.cvtColor(content, cv2.COLOR_BGR2RGB)
        np.multiply(
            rgb,
            np.float32(1.0 / 255.0),
            out=self._buf[0, y0 : y0 + ch, x0 : x0 + cw],
            casting="unsafe",
        )
        outputs = self.session.run({self.input_name: self._buf})
        out = outputs[self.output_name] if self.output_name else next(iter(outputs.values()))
        mh, mw = self._buf.shape[1:3]
        mask = np.asarray(out, np.float32).reshape(mh, mw)[y0 : y0 + ch, x0 : x0 + cw]
        return CoarseMatte(np.clip(mask, 0.0, 1.0), content)

    def reset(self) -> None:
        """Stateless: nothing to forget."""


def refit(adapter: SelfieSegmentationAdapter, fit: str) -> SelfieSegmentationAdapter:
    """The same model and session as ``adapter``, fitting frames by ``fit``."""
    return SelfieSegmentationAdapter(
        adapter.session, adapter.input_size, fit, adapter.input_name, adapter.output_name
    )


class MultiViewAdapter:
    """Per-pixel median of several views' masks, on a grid of the frame's aspect.

    Each embedded model fails on its own: the 256x144 landscape model smears a forearm over
    a wall and keeps a tarp, the stretched square model keeps a statue, the letterboxed one a
    flowering tree (p3m SAD 90.8 / 256.6 / 429.2 / 197.3 on one photo each).  Where one view
    fails the other two rarely do, so the median of three (square stretched, square
    letterboxed, landscape stretched) takes p3m from SAD 41.6 to 23.6 (photo preset,
    ``scripts/eval_matting.py``); in a trial run four views (a tie broken by the mean), the mean
    of three and three plus their mirror images were worse (32.8, 31.2, 36.9).

    Args:
        views: stateless adapters of the same frame.
        side: long side of the output grid (the views' own resolution).
    """

    recurrent = False

    def __init__(self, views: list[MattingAdapter], side: int = 256) -> None:
        self.views = list(views)
        self.side = int(side)

    @property
    def session(self) -> OnnxSession | None:
        """The first view's session (for the provider report)."""
        return self.views[0].session

    def predict(self, image: np.ndarray) -> CoarseMatte:
        """Median of the views' masks, each resized to the common grid."""
        h, w = image.shape[:2]
        scale = self.side / max(h, w)
        grid = (max(1, round(w * scale)), max(1, round(h * scale)))
        masks = [
            cv2.resize(view.predict(image).alpha, grid, interpolation=cv2.INTER_LINEAR)
            for view in self.views
        ]
        alpha = np.median(np.stack(masks), axis=0).astype(np.float32)
        return CoarseMatte(alpha, resize_image(image, grid))

    def reset(self) -> None:
        """Stateless: nothing to forget."""


class RobustVideoMattingAdapter:
    """RVM-signature recurrent matting model; owns the four recurrent state tensors.

    Two signatures share it: the official ONNX (``downsample_ratio`` input, RVM's own refiner
    upsamples to the input size) and the low-resolution branch converted from the TF.js
    export (no ratio input: the network runs at the size it is given, the caller shrinks the
    frame).  ``predict_at`` runs either at an explicit working size with ratio 1.

    Args:
        session: object with ``run(dict) -> dict``.
        downsample_ratio: RVM's internal downsampling; 0 = auto (long side 512 px, as RVM's
            own converter does).
        max_side: frames larger than this are resized before the model (memory on 4K/8K).
    """

    recurrent = True
    STATES = ("r1i", "r2i", "r3i", "r4i")
    OUTPUTS = ("r1o", "r2o", "r3o", "r4o")
    #: Working sizes are rounded to this: the encoder downsamples by 16 before its decoder
    #: upsamples again, and other sizes misalign its skip connections.
    MULTIPLE = 16

    def __init__(
        self, session: OnnxSession, downsample_ratio: float = 0.0, max_side: int = 1920
    ) -> None:
        self.session = session
        self.downsample_ratio = float(downsample_ratio)
        self.max_side = int(max_side)
        self.dtype = _input_dtype(session, "src")
        shapes = _shapes(session)
        self.has_ratio = "downsample_ratio" in shapes
        # Zero initial states: [1, C, 1, 1] where the model declares C (the converted model
        # needs it), else RVM's documented [1, 1, 1, 1].
        self._zeros = [
            np.zeros((1, c if isinstance(c, int) and c > 0 else 1, 1, 1), self.dtype)
            for c in (_dim(shapes.get(name), 1) for name in self.STATES)
        ]
        self._state: list[np.ndarray] | None = None
        self._key: tuple[int, int, float] | None = None

    @property
    def state(self) -> list[np.ndarray] | None:
        """Current recurrent state (None before the first frame / after a reset)."""
        return self._state

    def reset(self) -> None:
        """Drop the recurrent state: the next frame starts from zeros."""
        self._state = None
        self._key = None
        reset = getattr(self.session, "reset", None)
        if callable(reset):
            reset()

    def working_size(self, width: int, height: int, ratio: float | None = None) -> tuple[int, int]:
        """(w, h) the network sees for a frame: ``ratio`` of it, sides multiples of 16."""
        s = min(1.0, self.max_side / max(height, width))
        if ratio is None:
            ratio = self.downsample_ratio or min(1.0, 512.0 / (max(height, width) * s))
        m = self.MULTIPLE
        return (
            max(m, round(width * s * ratio / m) * m),
            max(m, round(height * s * ratio / m) * m),
        )

    def predict(self, image: np.ndarray) -> CoarseMatte:
        """Alpha and foreground of one frame, carrying the state from the previous one."""
        h, w = image.shape[:2]
        if not self.has_ratio:
            return self.predict_at(image, self.working_size(w, h))
        s = min(1.0, self.max_side / max(h, w))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        ratio = self.downsample_ratio or min(1.0, 512.0 / max(size))
        return self._run(resize_image(image, size), ratio)

    def predict_at(self, image: np.ndarray, size: tuple[int, int]) -> CoarseMatte:
        """Run the network at exactly ``size`` = (w, h) (no internal resize, no refiner)."""
        return self._run(resize_image(image, size), 1.0)

    def _run(self, content: np.ndarray, ratio: float) -> CoarseMatte:
        key = (content.shape[1], content.shape[0], ratio)
        if key != self._key:  # state tensors are shaped by the (downsampled) resolution
            self.reset()
            self._key = key
        src = cv2.cvtColor(content, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
        src = (src.astype(np.float32) * (1.0 / 255.0)).astype(self.dtype, copy=False)
        state = self._state or self._zeros
        feed: dict[str, np.ndarray] = {"src": src}
        if self.has_ratio:
            feed["downsample_ratio"] = np.array([ratio], np.float32)
        feed.update(zip(self.STATES, state, strict=True))
        out = self.session.run(feed)
        self._state = [np.asarray(out[name]) for name in self.OUTPUTS]
        pha = np.asarray(out["pha"], np.float32)[0, 0]
        fgr = np.asarray(out["fgr"], np.float32)[0].transpose(1, 2, 0)
        fgr = cv2.cvtColor(np.clip(fgr * 255.0 + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
        return CoarseMatte(np.clip(pha, 0.0, 1.0), content, fgr)


def _dim(shape: list[Dim] | None, index: int) -> Dim:
    return shape[index] if shape is not None and len(shape) > index else None


class MODNetAdapter:
    """MODNet-signature trimap-free portrait matting: [1,3,H,W] in -1..1 -> [1,1,H,W] matte."""

    recurrent = False

    def __init__(
        self, session: OnnxSession, ref_size: int = 512, input_name: str | None = None
    ) -> None:
        self.session = session
        self.ref_size = int(ref_size)
        self.input_name = input_name or next(iter(_shapes(session)))
        self.dtype = _input_dtype(session, self.input_name)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(w, h) MODNet's reference pre-processing resizes a frame to (multiples of 32)."""
        ref = self.ref_size
        if max(height, width) < ref or min(height, width) > ref:
            if width >= height:
                rh, rw = ref, int(width / height * ref)
            else:
                rw, rh = ref, int(height / width * ref)
        else:
            rh, rw = height, width
        return max(32, rw - rw % 32), max(32, rh - rh % 32)

    def predict(self, image: np.ndarray) -> CoarseMatte:
        """Matte of one frame at MODNet's working size."""
        size = self.input_size(image.shape[1], image.shape[0])
        content = resize_image(image, size)
        rgb = cv2.cvtColor(content, cv2.COLOR_BGR2RGB).astype(np.float32)
        x = ((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None].astype(self.dtype)
        out = next(iter(self.session.run({self.input_name: x}).values()))
        matte = np.asarray(out, np.float32).reshape(size[1], size[0])
        return CoarseMatte(np.clip(matte, 0.0, 1.0), content)

    def reset(self) -> None:
        """Stateless: nothing to forget."""


def adapter_for_session(session: OnnxSession, config: MattingConfig) -> MattingAdapter:
    """Pick the adapter matching a session's input signature.

    Raises:
        ModelError: the signature is none of MediaPipe-, RVM- or MODNet-style.
    """
    shapes = _shapes(session)
    names = list(shapes)
    if {"src", *RobustVideoMattingAdapter.STATES} <= set(names):
        return RobustVideoMattingAdapter(session, config.downsample_ratio)
    shape = shapes[names[0]] if len(names) == 1 else []
    if len(shape) == 4 and shape[1] == 3:
        return MODNetAdapter(session, input_name=names[0])
    if len(shape) == 4 and shape[3] == 3:
        height, width = shape[1], shape[2]
        if isinstance(height, int) and isinstance(width, int):
            output = session.output_names[0] if session.output_names else None
            return SelfieSegmentationAdapter(
                session, (width, height), config.fit, input_name=names[0], output_name=output
            )
    raise ModelError(
        f"model inputs {shapes} match no supported signature: MediaPipe-style NHWC image, "
        "RVM (src, r1i..r4i[, downsample_ratio]) or MODNet-style [1,3,H,W]"
    )
