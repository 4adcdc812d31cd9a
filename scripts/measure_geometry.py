#!/usr/bin/env python3
"""Measure the body-geometry constants of ``livematte/ops/geometry.py``; print tables.

What is measured, per person (IMAGE-mode keypoint stage, its 33 landmarks, matched to a
human-annotated person by OKS >= 0.5), against that person's own outline:

* **head top**: walking from the eye midpoint up the face (``geometry.face_up``) on three
  parallel lines, the farthest point still inside the person's outline (the top of the hair:
  hats sit there, ID-photo standards measure to it).  Its distance from the eye midpoint is
  divided by each candidate length (eye-mouth, ear-to-ear, eye-to-eye distance) and by
  ``geometry.top_head``'s distance; the median ratio is the constant and the spread (median
  absolute deviation / median) says which length predicts it best.  The error of
  ``geometry.hair_top`` against it is printed beside the two crown rules used before.
* **neck**: the narrowest cross-section of the mask on the segment shoulder midpoint -> mouth
  midpoint, as a fraction t of that segment (0 = shoulders, 1 = mouth).

Data (../shared/data, see SOURCES.md): the COCO / OCHuman keypoint sets (human-annotated
polygons; RLE masks are skipped), and MediaPipe's ``pose.jpg`` with its golden landmarks and
golden mask.  The analysis service's documented example (../shared/reference/
portrait-matting-service.md) is printed beside them: its ``top_head`` and ``neck`` against its
own eyes, mouth corners, ears and shoulders.

Usage::

    python scripts/measure_geometry.py [--json geometry.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from eval_keypoints import (  # noqa: E402
    COCO_FROM_BLAZEPOSE,
    KEYPOINT_SETS,
    make_stage,
    oks,
)

from livematte.frame import LANDMARK_INDEX, Frame  # noqa: E402
from livematte.ops import geometry  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SERVICE_DOC = REPO.parent / "shared" / "reference" / "portrait-matting-service.md"


def _mid(lm: np.ndarray, a: str, b: str) -> np.ndarray:
    return geometry.midpoint(lm, a, b)[0]


_dist = geometry.distance


def crown_from_mask(mask: np.ndarray, lm: np.ndarray) -> np.ndarray | None:
    """The mask's head top for landmarks ``lm``: walking from the eye midpoint up the face
    (``geometry.face_up``) on three parallel lines (a parting must not stop the walk), the
    farthest point still inside the outline, contiguous with the eyes; None when the eyes are
    outside the outline or it never ends (cut by the picture's edge)."""
    eyes = _mid(lm, "left_eye", "right_eye")
    up = geometry.face_up(lm)
    face = geometry.face_unit(lm)
    if face < 3:
        return None
    h, w = mask.shape
    side = np.array([-up[1], up[0]])
    steps = np.arange(0.0, 6.0 * face, 0.5)
    best = 0.0
    for lateral in (-0.3, 0.0, 0.3):
        pts = eyes + lateral * face * side + steps[:, None] * up
        x, y = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
        inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        if not inside.all():
            return None  # the picture's edge cuts the head
        inside[inside] = mask[y[inside], x[inside]] > 0
        if inside.all():
            return None
        best = max(best, float(steps[int(np.argmin(inside))]))
    if best < face:
        return None  # eyes outside the outline (occluded, or a poor match)
    return eyes + up * best


def neck_from_mask(mask: np.ndarray, lm: np.ndarray) -> float | None:
    """Fraction t (0 shoulders .. 1 mouth) of the mask's narrowest cross-section, or None."""
    mouth = _mid(lm, "mouth_left", "mouth_right")
    shoulders = _mid(lm, "left_shoulder", "right_shoulder")
    axis = mouth - shoulders
    length = float(np.hypot(*axis))
    sw = _dist(lm, "left_shoulder", "right_shoulder")
    if length < 8 or sw < 8:
        return None
    side = np.array([-axis[1], axis[0]]) / length
    h, w = mask.shape
    widths = []
    ts = np.linspace(0.05, 0.95, 19)
    steps = np.arange(0.0, 1.5 * sw, 0.5)
    for t in ts:
        p = shoulders + t * axis
        width = 0.0
        for sign in (-1.0, 1.0):
            q = p + sign * steps[:, None] * side
            x, y = np.round(q[:, 0]).astype(int), np.round(q[:, 1]).astype(int)
            inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
            inside[inside] = mask[y[inside], x[inside]] > 0
            if not inside[0]:
                return None  # the axis leaves the person: no neck to measure
            width += steps[int(np.argmin(inside))] if not inside.all() else steps[-1]
        widths.append(width)
    widths_a = np.array(widths)
    if widths_a.min() >= 0.9 * widths_a.max():  # no narrowing (hair, collar): nothing seen
        return None
    return float(ts[int(np.argmin(widths_a))])


def person_record(lm: np.ndarray, mask: np.ndarray, where: str) -> dict | None:
    crown = crown_from_mask(mask, lm)
    if crown is None:
        return None
    eyes, mouth = _mid(lm, "left_eye", "right_eye"), _mid(lm, "mouth_left", "mouth_right")
    rec = {
        "where": where,
        "crown_above_eyes": float(np.hypot(*(crown - eyes))),
        "eye_mouth": float(np.hypot(*(eyes - mouth))),
        "ears": _dist(lm, "left_ear", "right_ear"),
        "eyes": _dist(lm, "left_eye", "right_eye"),
        "neck_t": neck_from_mask(mask, lm),
    }
    _, up, dist, _ = geometry.crown_line(geometry.landmarks_array(lm))
    rec["crown / top_head"] = rec["crown_above_eyes"] / max(dist, 1e-6)
    scale = max(rec["crown_above_eyes"] + rec["eye_mouth"], 1e-6)  # crown to mouth
    for name, point in candidates(lm).items():
        rec[f"error {name}"] = float(np.hypot(*(point - crown))) / scale
    return rec


def candidates(lm: np.ndarray) -> dict[str, np.ndarray]:
    """The hair-top estimate now and the two crown rules before (for the tables)."""
    eyes, mouth = _mid(lm, "left_eye", "right_eye"), _mid(lm, "mouth_left", "mouth_right")
    em, ears = float(np.hypot(*(eyes - mouth))), _dist(lm, "left_ear", "right_ear")
    # Before: the JSON's (face axis, max(1.7 eye-mouth, 0.75 ears)) ...
    axis = (eyes - mouth) / max(em, 1e-6)
    json_before = eyes + axis * max(1.7 * em, 0.75 * ears)
    # ... and the stickers' / ID photos' (1.9 x max(eye distance, eye-mouth / 1.1)).
    face = max(_dist(lm, "left_eye", "right_eye"), em / 1.1)
    stickers_before = eyes + geometry.face_up(lm) * 1.9 * face
    return {"hair_top": geometry.hair_top(lm)[0], "json before": json_before,
            "stickers before": stickers_before}  # fmt: skip


def polygon_mask(seg: list, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for poly in seg:
        pts = np.round(np.array(poly, np.float64).reshape(-1, 2)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask


def keypoint_people(data: Path) -> list[dict]:
    stage = make_stage("image", max_people=8)
    out = []
    for subset, rel in KEYPOINT_SETS:
        file = data / rel
        if not file.is_file():
            continue
        coco = json.loads(file.read_text())
        for im in coco["images"]:
            anns = [
                a for a in coco["annotations"]
                if a["image_id"] == im["id"] and not a.get("iscrowd", 0)
                and isinstance(a["segmentation"], list) and a["num_keypoints"] >= 5
            ]  # fmt: skip
            if not anns:
                continue
            img = cv2.imread(str(file.parent / im["file_name"]))
            people = stage.process(Frame(img)).people
            for a in anns:
                gt = np.array(a["keypoints"], float).reshape(17, 3)
                scored = [(oks(p.landmarks[COCO_FROM_BLAZEPOSE, :2], gt, a["area"]), p)
                          for p in people]  # fmt: skip
                if not scored:
                    continue
                best, person = max(scored, key=lambda s: s[0])
                if best < 0.5 or person.source != "blazepose":
                    continue
                rec = person_record(
                    person.landmarks, polygon_mask(a["segmentation"], img.shape[:2]), subset
                )
                if rec is not None:
                    out.append(rec)
    return out


def golden_people(data: Path) -> list[dict]:
    gold = data / "mediapipe_golden"
    meta = json.loads((gold / "pose_expected_landmarks.json").read_text())
    xy = np.array(meta["landmarks_xy_px"], float)
    lm = np.zeros((33, 3))
    lm[:, :2] = xy[:33]
    lm[:, 2] = 1.0
    seg = cv2.imread(str(gold / "pose_expected_segmentation.png"))
    mask = ((seg[..., 0] > 128) & (seg[..., 2] < 128)).astype(np.uint8)  # blue = person
    rec = person_record(lm, mask, "mediapipe_golden")
    return [rec] if rec else []


def service_example(doc: Path) -> dict | None:
    """Ratios of the service's documented example (its own top_head / neck vs its parts)."""
    if not doc.is_file():
        return None
    parts: dict[str, np.ndarray] = {}
    for name, x, y in re.findall(
        r'"(\w+)": \{\s*"score": [\d.eE-]+,\s*"x": ([\d.]+),\s*"y": ([\d.]+)', doc.read_text()
    ):
        parts[name] = np.array([float(x), float(y)])
    need = (
        "top_head",
        "neck",
        "left_eye",
        "right_eye",
        "left_mouth_corner",
        "right_mouth_corner",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
    )
    if not all(n in parts for n in need):
        return None
    eyes = (parts["left_eye"] + parts["right_eye"]) / 2
    mouth = (parts["left_mouth_corner"] + parts["right_mouth_corner"]) / 2
    shoulders = (parts["left_shoulder"] + parts["right_shoulder"]) / 2
    crown = float(np.hypot(*(parts["top_head"] - eyes)))
    axis = mouth - shoulders
    # Its parts as landmarks: our points (now and before) against its own, in pixels.
    lm = np.zeros((33, 3))
    lm[:, 2] = 1.0
    renamed = {"left_mouth_corner": "mouth_left", "right_mouth_corner": "mouth_right"}
    for name in need[2:]:
        lm[LANDMARK_INDEX[renamed.get(name, name)], :2] = parts[name]
    before = candidates(lm)
    off = {
        "top_head now": geometry.top_head(lm)[0] - parts["top_head"],
        "top_head JSON before": before["json before"] - parts["top_head"],
        "top_head stickers before": before["stickers before"] - parts["top_head"],
        "neck now": geometry.neck(lm)[0] - parts["neck"],
        "neck JSON before": shoulders - parts["neck"],
        "neck stickers before": shoulders + 0.35 * axis - parts["neck"],
    }
    return {
        "crown / eye-mouth": crown / np.hypot(*(eyes - mouth)),
        "crown / ears": crown / np.hypot(*(parts["left_ear"] - parts["right_ear"])),
        "crown / eyes": crown / np.hypot(*(parts["left_eye"] - parts["right_eye"])),
        "neck t": float((parts["neck"] - shoulders) @ axis / (axis @ axis)),
        **{f"error px {k}": float(np.hypot(*v)) for k, v in off.items()},
    }


def summary(records: list[dict]) -> list[dict]:
    rows = []
    for unit in ("eye_mouth", "ears", "eyes"):
        r = np.array([x["crown_above_eyes"] / x[unit] for x in records if x[unit] > 1e-6])
        med = float(np.median(r))
        rows.append({"crown above eyes / length": unit, "median": med,
                     "spread (MAD / median)": float(np.median(np.abs(r - med))) / med,
                     "people": len(r)})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"shared data not found: {args.data}", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)
    people = keypoint_people(args.data)
    golden = golden_people(args.data)
    report = {"people": people, "golden": golden, "service": service_example(SERVICE_DOC)}
    print(f"COCO/OCHuman people matched (OKS >= 0.5, polygon masks): {len(people)}")
    for row in summary(people):
        print("  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                        for k, v in row.items()))  # fmt: skip
    necks = [p["neck_t"] for p in people if p["neck_t"] is not None]
    if necks:
        print(
            f"neck (narrowest cross-section) t: median {np.median(necks):.3f}, "
            f"quartiles {np.percentile(necks, 25):.3f}..{np.percentile(necks, 75):.3f} "
            f"({len(necks)} people)"
        )
    ratio = np.array([p["crown / top_head"] for p in people])
    med = float(np.median(ratio))
    print(
        f"outline crown / geometry.top_head distance: median {med:.3f}, spread "
        f"{float(np.median(np.abs(ratio - med))) / med:.3f}"
    )
    for name in candidates(np.zeros((33, 3))):
        errors = [p[f"error {name}"] for p in people]
        print(
            f"{name} vs the outline's crown, error / (crown-to-mouth): median "
            f"{np.median(errors):.3f}, 75th percentile {np.percentile(errors, 75):.3f}"
        )
    for g in golden:
        print(
            f"golden pose.jpg: crown / eye-mouth {g['crown_above_eyes'] / g['eye_mouth']:.3f}, "
            f"/ top_head {g['crown / top_head']:.3f}, neck t {g['neck_t']}, "
            f"hair_top error {g['error hair_top']:.3f}"
        )
    if report["service"]:
        print("service example: " + ", ".join(f"{k} {v:.3f}" for k, v in report["service"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
