#!/usr/bin/env python
"""Grey photos: do other looks at the same grey photo bring its matte closer to the colour one?

Issue 13's grey floor compares the matte of a grey copy of each p3m portrait with the matte of
the colour original (``scripts/eval_matting.py --sections gray``); ``eval_grey_inputs.py``
tried colourised and re-toned network inputs.  This script tries, on grey photos only
(``livematte.ops.grey.is_grey``, as a shipped change would be gated), other looks and other
ways of combining them, each a subclass of the stage parts it changes:

Embedded segmenter, ``photo`` preset with person ROI (``--models embedded``):

* ``flip-views``: the median of the three views and their three mirror images;
* ``flip-each``: each view averaged with its mirror image, then the median;
* ``flip-medians``: the median of the views and the mirrored median, averaged;
* ``views-mean``: the mean of the three views instead of their median;
* ``views-agree``: the views weighted by their agreement with the others (mean IoU > 0.5);
* ``clahe<clip>x<tiles>``: local contrast normalisation (CLAHE) of the views' input;
* ``flip-crops``: the closer look at each person found averaged with its mirror image;
* ``crops-wide``: closer looks at crop margins 0.25 (the preset's) and 0.4, averaged;
* ``twin:PATH``: the square model replaced by the .onnx file at PATH on grey photos (its
  views and closer looks), e.g. a grey twin made by ``scripts/train_grey_segmenter.py``.

``rvm_mobilenetv3`` (pulled), ``photo`` preset:

* ``flip``: each RVM pass averaged with the pass on the mirror image;
* ``passes<n>``: n recurrent passes per photo instead of ``rvm.PHOTO_PASSES`` (2);
* ``side<px>``: the person at this many pixels instead of ``rvm.PERSON_SIDE`` (256);
* ``clahe<clip>x<tiles>``: CLAHE of RVM's input (the gate's evidence keeps the grey photo).

``--pose-rois``: the landmark model's own person mask (``PersonMask``, the keypoint stage's
``pose_landmark_full_mask``) on fixed whole-frame ROIs, for the portraits where the keypoint
stage finds nobody in grey (so nothing else stands for the person): IoU of the mask (> 0.5)
against the colour photo's embedded ``photo`` result, with the pose flag, in colour and grey.
ROIs (square, axis-aligned): ``frame`` (the frame's long side, centred), ``frame1.25``
(1.25x), ``low1.5`` (1.5x, centred at three quarters of the height) and ``low2`` (2x,
centred on the bottom edge: the head high in a body-sized crop, as the model is trained).

For each variant: IoU (alpha > 0.5) of each grey copy's matte against the colour original's
(the colour photos are never changed: they are not grey), and SAD against the reference
mattes of the p3m portraits that are black-and-white photos to begin with (they take the grey
path too).

Usage::

    LIVEMATTE_CACHE=... python scripts/eval_grey_tta.py --json tta.json
    python scripts/eval_grey_tta.py --models embedded --variants grey,flip-views --limit 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_grey_inputs import summarise, table  # noqa: E402
from eval_matting import iou, make_keypoints, make_stage, run_image, sad  # noqa: E402

from livematte.ops.compose import resize_image  # noqa: E402
from livematte.ops.grey import is_grey  # noqa: E402
from livematte.ops.person_roi import CropMask  # noqa: E402
from livematte.stages import matting as matting_module  # noqa: E402
from livematte.stages import rvm as rvm_module  # noqa: E402
from livematte.stages.matting import MattingStage  # noqa: E402
from livematte.stages.matting_adapters import CoarseMatte, MultiViewAdapter  # noqa: E402
from livematte.stages.model_choice import SQUARE  # noqa: E402

EMBEDDED = (
    "grey",
    "flip-views",
    "flip-each",
    "flip-medians",
    "views-mean",
    "views-agree",
    "clahe1.5x4",
    "clahe2x8",
    "clahe3x8",
    "flip-crops",
    "crops-wide",
)
RVM = (
    "grey",
    "flip",
    "passes1",
    "passes3",
    "side224",
    "side288",
    "side320",
    "clahe1.5x4",
    "clahe2x8",
)


def clahe(image: np.ndarray, variant: str) -> np.ndarray:
    """A grey BGR image through CLAHE, ``variant`` "clahe<clip>x<tiles>"."""
    clip, tiles = variant.removeprefix("clahe").split("x")
    out = cv2.createCLAHE(float(clip), (int(tiles), int(tiles))).apply(image[..., 0])
    return cv2.merge([out, out, out])


def mirrored(predict, image: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """``predict(mirror image)``'s alpha, mirrored back."""
    return np.ascontiguousarray(predict(np.ascontiguousarray(image[:, ::-1])).alpha[:, ::-1])


class GreyViews(MultiViewAdapter):
    """The embedded views, combined per ``variant`` on grey photos."""

    def __init__(self, views: MultiViewAdapter, variant: str) -> None:
        super().__init__(views.views, views.side)
        self.variant = variant

    def predict(self, image: np.ndarray) -> CoarseMatte:
        v = self.variant
        own = v.startswith(("flip-", "views-", "clahe")) and v != "flip-crops"
        if not (own and is_grey(image)):
            return super().predict(image)
        h, w = image.shape[:2]
        scale = self.side / max(h, w)
        grid = (max(1, round(w * scale)), max(1, round(h * scale)))

        def looks(im: np.ndarray, mirror: bool = False) -> list[np.ndarray]:
            return [
                cv2.resize(mirrored(view.predict, im) if mirror else view.predict(im).alpha, grid)
                for view in self.views
            ]

        if v.startswith("clahe"):
            alpha = np.median(looks(clahe(image, v)), axis=0)
        elif v == "flip-views":
            alpha = np.median(looks(image) + looks(image, True), axis=0)
        elif v == "flip-each":
            pairs = zip(looks(image), looks(image, True), strict=True)
            alpha = np.median([(a + b) / 2 for a, b in pairs], axis=0)
        elif v == "flip-medians":
            alpha = (np.median(looks(image), axis=0) + np.median(looks(image, True), axis=0)) / 2
        elif v == "views-mean":
            alpha = np.mean(looks(image), axis=0)
        elif v == "views-agree":
            masks = looks(image)
            sure = [m > 0.5 for m in masks]
            weights = (
                np.array([np.mean([iou(a, b) for b in sure if b is not a]) for a in sure]) + 1e-3
            )
            alpha = np.tensordot(weights / weights.sum(), np.stack(masks), 1)
        else:
            raise ValueError(f"unknown variant {v!r}")
        return CoarseMatte(alpha.astype(np.float32), resize_image(image, grid))


class GreyRvm(rvm_module.RvmMatting):
    """RVM's photo passes per ``variant`` on grey photos."""

    variant = "grey"

    def _multi_pass(self, image: np.ndarray, side: int | None) -> CoarseMatte:
        v = self.variant
        if v.startswith("side") and is_grey(image):
            size = (image.shape[1], image.shape[0])
            scale = rvm_module.working_scale(size, side, int(v.removeprefix("side")))
            return self._photo_pass(image, self._grid(size, scale))
        return super()._multi_pass(image, side)

    def _photo_pass(self, image: np.ndarray, grid: tuple[int, int]) -> CoarseMatte:
        v = self.variant
        if not is_grey(image) or v == "grey" or v.startswith("side"):
            return super()._photo_pass(image, grid)
        if v == "flip":
            coarse = super()._photo_pass(image, grid)
            other = mirrored(lambda im: super(GreyRvm, self)._photo_pass(im, grid), image)
            coarse.alpha = ((coarse.alpha + other) / 2).astype(np.float32)
            return coarse
        if v.startswith("passes"):
            self.rvm.reset()
            for _ in range(int(v.removeprefix("passes"))):
                coarse = self.rvm.predict_at(image, grid)
            self.rvm.reset()
            return coarse
        if v.startswith("clahe"):
            coarse = super()._photo_pass(clahe(image, v), grid)
            coarse.guide = resize_image(image, grid)  # the guided filter keeps the photo
            return coarse
        raise ValueError(f"unknown variant {v!r}")


class GreyStage(MattingStage):
    """The evaluation mode's stage with ``variant``'s parts."""

    variant = "grey"
    #: ``twin:PATH`` variants: this photo is grey, and the views made for each case.
    _twin = False
    _twin_views: dict | None = None

    def process(self, frame):  # noqa: ANN001, ANN201
        self._twin = self.variant.startswith("twin:") and is_grey(frame.image)
        return super().process(frame)

    def adapter(self, name: str):  # noqa: ANN201
        if self._twin and name == SQUARE:
            name = self.variant.removeprefix("twin:")
        return super().adapter(name)

    def views(self) -> MultiViewAdapter | None:
        if self.variant.startswith("twin:"):
            cache = self._twin_views = self._twin_views or {}
            if self._twin not in cache:
                self._views = None
                cache[self._twin] = super().views()
            self._views = cache[self._twin]
            return self._views
        views = super().views()
        if views is not None and not isinstance(views, GreyViews):
            self._views = views = GreyViews(views, self.variant)
        return views

    def person_crops(self, image: np.ndarray, boxes: list) -> list[CropMask]:  # noqa: ANN001
        v = self.variant
        if not is_grey(image) or v not in ("flip-crops", "crops-wide"):
            return super().person_crops(image, boxes)
        if v == "crops-wide":
            crops = []
            for margin in (matting_module.CROP_MARGIN, 0.4):
                default, matting_module.CROP_MARGIN = matting_module.CROP_MARGIN, margin
                try:
                    crops += super().person_crops(image, boxes)
                finally:
                    matting_module.CROP_MARGIN = default
            return crops
        crops = super().person_crops(image, boxes)
        flipped = np.ascontiguousarray(image[:, ::-1])
        width = image.shape[1]
        mirror = [(width - r, t, width - x, b) for x, t, r, b in boxes]
        others = super().person_crops(flipped, mirror)
        for crop, other in zip(crops, others, strict=True):
            # The mirror image's crop of the mirrored box is the mirror of the crop.
            crop.probability = (crop.probability + other.probability[:, ::-1]) / 2
        return crops

    def _rvm_coarse(self, adapter, frame, stateful):  # noqa: ANN001, ANN202
        if self._rvm is None or self._rvm.rvm is not adapter:
            self._rvm = GreyRvm(adapter, self._evidence)
            self._rvm.variant = self.variant
        return super()._rvm_coarse(adapter, frame, stateful)


def stage_for(mode: str, variant: str) -> GreyStage:
    base = make_stage(mode)
    stage = GreyStage(base.config, base.temporal, base.runtime)
    stage.variant = variant
    return stage


def evaluate(data: Path, model: str, variants: list[str], limit: int) -> dict:
    """Per variant: grey-copy IoU against the colour result, SAD of the B&W originals."""
    mode = "photo+roi" if model == "embedded" else f"photo@{model}"
    folder = data / "matting" / "p3m_pseudo_gt"
    paths = sorted(p for p in folder.glob("*.jpg") if not p.stem.endswith("_alpha"))[:limit]
    keypoints = make_keypoints(mode)
    reference = make_stage(mode)
    stages = {v: stage_for(mode, v) for v in variants}
    rows = {v: {"iou": {}, "sad_grey_originals": {}} for v in variants}
    for path in paths:
        image = cv2.imread(str(path))
        truth = cv2.imread(str(path.with_name(path.stem + "_alpha.png")), 0) / 255.0
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        original_grey = is_grey(image)
        colour = None if original_grey else run_image(reference, image, keypoints)[0]
        for v, stage in stages.items():
            mono = run_image(stage, grey, keypoints)[0]
            if original_grey:
                # A black-and-white photo: its "colour" result is this variant's own.
                alpha = run_image(stage, image, keypoints)[0]
                rows[v]["sad_grey_originals"][path.stem] = sad(alpha, truth)
                rows[v]["iou"][path.stem] = iou(mono > 0.5, alpha > 0.5)
            else:
                rows[v]["iou"][path.stem] = iou(mono > 0.5, colour > 0.5)
            print(f"{model} {v} {path.stem} IoU {rows[v]['iou'][path.stem]:.3f}", flush=True)
    for row in rows.values():
        summarise(row)
    return rows


#: ``--pose-rois``: name -> (size as a multiple of the long side, centre y as a share of height).
POSE_ROIS = {
    "frame": (1.0, 0.5),
    "frame1.25": (1.25, 0.5),
    "low1.5": (1.5, 0.75),
    "low2": (2.0, 1.0),
}


def pose_rois(data: Path, limit: int) -> dict:
    """The landmark model's mask on fixed ROIs, where nobody is found in a portrait's grey copy."""
    from livematte.frame import Frame, Mode
    from livematte.ops.pose_detection import Roi
    from livematte.ops.pose_landmarks import PersonMask

    folder = data / "matting" / "p3m_pseudo_gt"
    paths = sorted(p for p in folder.glob("*.jpg") if not p.stem.endswith("_alpha"))[:limit]
    keypoints = make_keypoints("photo+roi")
    reference = make_stage("photo+roi")
    out: dict[str, dict] = {}
    for path in paths:
        image = cv2.imread(str(path))
        grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if is_grey(image) or keypoints.process(Frame(image=grey, mode=Mode.IMAGE)).people:
            continue
        colour = run_image(reference, image, keypoints)[0] > 0.5
        height, width = image.shape[:2]
        rows = {}
        for name, (size, cy) in POSE_ROIS.items():
            roi = Roi(width / 2.0, cy * height, size * max(width, height), 0.0)
            row = {}
            for label, picture in (("colour", image), ("grey", grey)):
                result = keypoints.landmarks(picture, roi)
                mask = PersonMask(0, result.mask_logits, roi.crop_to_image(256))
                prob = cv2.warpAffine(mask.probability, mask.crop_to_image, (width, height))
                row[label] = {"iou": iou(prob > 0.5, colour), "flag": float(result.score)}
            rows[name] = row
            print(
                f"{path.stem} {name}: colour IoU {row['colour']['iou']:.3f} "
                f"(flag {row['colour']['flag']:.2f}), grey {row['grey']['iou']:.3f} "
                f"(flag {row['grey']['flag']:.2f})",
                flush=True,
            )
        out[path.stem] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--models", default="embedded,rvm_mobilenetv3")
    parser.add_argument("--variants", help="comma-separated (default: all for each model)")
    parser.add_argument("--limit", type=int, default=100, help="max p3m portraits")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument(
        "--pose-rois", action="store_true", help="only the landmark-mask ROI check (see above)"
    )
    args = parser.parse_args(argv)
    if not (args.data / "matting" / "p3m_pseudo_gt").is_dir():
        parser.error(f"no p3m_pseudo_gt under {args.data}")
    if args.pose_rois:
        found = pose_rois(args.data, args.limit)
        if args.json:
            args.json.write_text(json.dumps(found, indent=1))
        return 0
    results = {}
    for model in (m for m in args.models.split(",") if m):
        known = EMBEDDED if model == "embedded" else RVM
        variants = args.variants.split(",") if args.variants else list(known)
        twin = model == "embedded"  # twin:PATH replaces the embedded square model only
        unknown = [v for v in variants if v not in known and not (twin and v.startswith("twin:"))]
        if unknown:
            parser.error(f"unknown variants for {model}: {', '.join(unknown)}")
        results[model] = evaluate(args.data, model, variants, args.limit)
    print(table(results, "variant"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
