#!/usr/bin/env python
"""Grey photos: does giving the matting networks a colourised or re-toned input help?

Issue 13's grey floor compares the matte of a grey copy of each p3m portrait with the matte of
the colour original (``scripts/eval_matting.py --sections gray``).  This script tries changing
what the *networks* see when their input is grey - every pixel's channels equal - while the
rest of the pipeline (guided filter, closed-form band, foreground colours) keeps the true grey
pixels: each model session is wrapped so that only its image tensor is transformed.

Input variants (``--variants``):

* ``grey``: unchanged (the baseline, in the same run);
* ``mean-all`` / ``mean-person``: a luminance -> colour table, the mean BGR colour of the
  pixels at each grey level (OpenCV's BT.601 luminance), measured on the COCO and OCHuman
  photos in ../shared/data/keypoints - every pixel, or only the pixels inside the annotated
  person masks (a warm, skin-like tint) - never on the p3m portraits it is scored on;
* ``gamma1.5`` / ``gamma0.7``: a contrast curve (darker / brighter mid-tones).

For each variant and model (the embedded segmenter with the ``photo`` preset and person ROI,
as shipped, and ``rvm_mobilenetv3`` when pulled): IoU (alpha > 0.5) of each grey copy's matte
against the colour original's (unchanged by construction: the colour photos are not grey), and
SAD against the reference mattes of the p3m portraits that are black-and-white photos to begin
with (they are transformed too), which shows what a variant does to real grey photos.

Usage::

    LIVEMATTE_CACHE=... python scripts/eval_grey_inputs.py --json grey.json
    python scripts/eval_grey_inputs.py --variants grey,mean-all --models embedded --limit 5
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_matting import _coco_masks, iou, make_keypoints, make_stage, run_image, sad  # noqa: E402

from livematte.stages.matting import MattingStage  # noqa: E402

#: Channel spread (of 0..1) under which a tensor pixel counts as grey, and the share of pixels
#: allowed above it (JPEG chroma noise).
GREY_SPREAD = 2.5 / 255.0
GREY_OUTLIERS = 0.01
#: BT.601 luminance weights of R, G, B (cv2.COLOR_BGR2GRAY).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
#: Image inputs of the matting models: RVM's "src"; a single-input model's only input.
IMAGE_INPUTS = ("src",)


def mean_colour_table(data: Path, pixels: str) -> tuple[np.ndarray, int]:
    """256x3 mean BGR colour per grey level over the COCO/OCHuman photos, and images read.

    ``pixels``: "person" (inside the annotated person masks) or "all".
    """
    sums = np.zeros((256, 3))
    counts = np.zeros(256)
    images = 0
    for json_path in sorted((data / "keypoints").glob("*/*.json")):
        if "wholebody" in json_path.name:
            continue
        for name, mask in _coco_masks(json_path).items():
            path = json_path.parent / name
            image = cv2.imread(str(path)) if path.is_file() else None
            if image is None or image.shape[:2] != mask.shape:
                continue
            images += 1
            keep = mask.ravel() if pixels == "person" else slice(None)
            level = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).ravel()[keep]
            bgr = image.reshape(-1, 3)[keep].astype(np.float64)
            for channel in range(3):
                sums[:, channel] += np.bincount(level, bgr[:, channel], minlength=256)
            counts += np.bincount(level, minlength=256)
    table = sums / np.maximum(counts, 1.0)[:, None]
    empty = counts == 0
    table[empty] = np.arange(256)[empty, None]  # no pixel at that level: leave it grey
    return table, images


def gamma_table(gamma: float) -> np.ndarray:
    """256x3 (equal channels) contrast curve 255 * (level / 255) ** gamma."""
    return np.repeat((255.0 * (np.arange(256) / 255.0) ** gamma)[:, None], 3, axis=1)


def is_grey_tensor(x: np.ndarray, axis: int) -> bool:
    """True when the image tensor's channels (along ``axis``) are equal almost everywhere."""
    spread = x.max(axis=axis).astype(np.float32) - x.min(axis=axis).astype(np.float32)
    return float(np.mean(spread > GREY_SPREAD)) <= GREY_OUTLIERS


def transform_tensor(x: np.ndarray, axis: int, table: np.ndarray) -> np.ndarray:
    """The RGB 0..1 image tensor's luminance through ``table`` (256x3 BGR levels)."""
    rgb = np.moveaxis(x.astype(np.float32), axis, -1)
    level = np.clip(rgb @ LUMA * 255.0, 0.0, 255.0)
    grid = np.arange(256, dtype=np.float32)
    out = np.stack([np.interp(level, grid, table[:, 2 - c]) for c in range(3)], axis=-1) / 255.0
    return np.moveaxis(out, -1, axis).astype(x.dtype)


class TransformedSession:
    """A model session whose image input is transformed when it is grey; the rest passes."""

    def __init__(self, session: object, table: np.ndarray) -> None:
        self._session = session
        self._table = table
        names = list(getattr(session, "input_shapes", {}))
        self._image = next((n for n in names if n in IMAGE_INPUTS), None)
        if self._image is None and len(names) == 1:
            self._image = names[0]
        #: Calls whose image input was grey and transformed.
        self.transformed = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._session, name)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        x = inputs.get(self._image) if self._image else None
        if x is not None and x.ndim == 4 and 3 in (x.shape[1], x.shape[3]):
            axis = 3 if x.shape[3] == 3 else 1
            if is_grey_tensor(x, axis):
                inputs = {**inputs, self._image: transform_tensor(x, axis, self._table)}
                self.transformed += 1
        return self._session.run(inputs)


def factory_for(table: np.ndarray | None, made: list[TransformedSession]) -> Callable[..., object]:
    """A ``session_factory`` for ``MattingStage`` wrapping every session with ``table``
    (appended to ``made``)."""
    from livematte.models.session import create_session

    def factory(source: object, **kwargs: object) -> object:
        session = create_session(source, **kwargs)  # type: ignore[arg-type]
        if table is None:
            return session
        made.append(TransformedSession(session, table))
        return made[-1]

    return factory


def stage_for(mode: str, table: np.ndarray | None, made: list[TransformedSession]) -> MattingStage:
    """The evaluation mode's matting stage (``eval_matting.make_stage``), sessions wrapped."""
    base = make_stage(mode)
    return MattingStage(
        base.config, base.temporal, base.runtime, session_factory=factory_for(table, made)
    )


def summarise(row: dict) -> None:
    """Add the mean, worst (and which) and passing count (>= 0.95) of ``row["iou"]`` to it."""
    per = row["iou"]
    row["mean_iou"] = float(np.mean(list(per.values())))
    row["worst_iou"] = float(min(per.values()))
    row["worst_image"] = min(per, key=per.get)
    row["passing"] = sum(v >= 0.95 for v in per.values())


def table(results: dict[str, dict[str, dict]], label: str) -> str:
    """Markdown table of ``results`` (model -> variant -> summarised row), variants named
    ``label``: IoU mean, worst, passing, the portraits below 0.95, SAD of the B&W originals."""
    lines = [
        f"\n| model | {label} | grey IoU mean | worst | >= 0.95 | IoU below 0.95 | "
        "SAD of the B&W originals |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        for name, row in rows.items():
            low = ", ".join(f"{k} {x:.3f}" for k, x in row["iou"].items() if x < 0.95)
            bw = ", ".join(f"{k} {x:.1f}" for k, x in row["sad_grey_originals"].items())
            lines.append(
                f"| {model} | {name} | {row['mean_iou']:.4f} | {row['worst_iou']:.3f} "
                f"({row['worst_image']}) | {row['passing']}/{len(row['iou'])} | {low} | {bw} |"
            )
    return "\n".join(lines)


def evaluate(data: Path, modes: dict[str, str], tables: dict, limit: int) -> dict:
    """Per model and variant: grey-copy IoU against the colour result, SAD of grey originals."""
    folder = data / "matting" / "p3m_pseudo_gt"
    paths = sorted(p for p in folder.glob("*.jpg") if not p.stem.endswith("_alpha"))[:limit]
    out: dict[str, dict] = {}
    for model, mode in modes.items():
        keypoints = make_keypoints(mode)
        reference = stage_for(mode, None, [])
        made: dict[str, list[TransformedSession]] = {name: [] for name in tables}
        stages = {name: stage_for(mode, table, made[name]) for name, table in tables.items()}
        rows: dict[str, dict] = {name: {"iou": {}, "sad_grey_originals": {}} for name in tables}
        for path in paths:
            image = cv2.imread(str(path))
            truth = cv2.imread(str(path.with_name(path.stem + "_alpha.png")), 0)
            grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            original_grey = bool(np.abs(image.astype(np.int16) - grey).max() <= 8)
            colour = None if original_grey else run_image(reference, image, keypoints)[0]
            for name, stage in stages.items():
                mono = run_image(stage, grey, keypoints)[0]
                if original_grey:
                    # A black-and-white photo: its "colour" result is this variant's own.
                    alpha = run_image(stage, image, keypoints)[0]
                    rows[name]["sad_grey_originals"][path.stem] = sad(alpha, truth / 255.0)
                    rows[name]["iou"][path.stem] = iou(mono > 0.5, alpha > 0.5)
                else:
                    rows[name]["iou"][path.stem] = iou(mono > 0.5, colour > 0.5)
                print(f"{model} {name} {path.stem} IoU {rows[name]['iou'][path.stem]:.3f}")
        for name, row in rows.items():
            summarise(row)
            row["transformed_calls"] = sum(session.transformed for session in made[name])
        out[model] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--variants", default="grey,mean-all,mean-person,gamma1.5,gamma0.7")
    parser.add_argument("--models", default="embedded,rvm_mobilenetv3")
    parser.add_argument("--limit", type=int, default=100, help="max p3m portraits")
    parser.add_argument("--json", type=Path, help="write all results here")
    args = parser.parse_args(argv)
    if not (args.data / "matting" / "p3m_pseudo_gt").is_dir():
        parser.error(f"no p3m_pseudo_gt under {args.data}")
    tables: dict[str, np.ndarray | None] = {}
    for name in args.variants.split(","):
        if name == "grey":
            tables[name] = None
        elif name in ("mean-all", "mean-person"):
            tables[name], n = mean_colour_table(args.data, name.removeprefix("mean-"))
            mid = tables[name][128].round(1)
            print(f"{name}: {n} COCO/OCHuman photos; level 128 -> BGR {mid.tolist()}")
        elif name.startswith("gamma"):
            tables[name] = gamma_table(float(name.removeprefix("gamma")))
        else:
            parser.error(f"unknown variant {name!r}")
    modes = {
        m: "photo+roi" if m == "embedded" else f"photo@{m}" for m in args.models.split(",") if m
    }
    results = evaluate(args.data, modes, tables, args.limit)
    print(table(results, "input variant"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
