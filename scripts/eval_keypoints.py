#!/usr/bin/env python3
"""Evaluate the body-keypoint stage; print tables and optionally write JSON.

Sections (data from ../shared/data, see its SOURCES.md):

a. MediaPipe goldens: our landmarks vs the reference pipeline's expected ones (mean error as a
   fraction of the image's longer side; floor 0.02).
b. Human-annotated COCO-17 keypoints (COCO val/train minis, OCHuman): per-person OKS with the
   COCO sigmas, greedy one-to-one matching per image; recall of GT people with >= 10 labelled
   keypoints at OKS >= 0.5 and mean OKS of those matched; crowded/occluded images (OCHuman or
   >= 3 annotated people) reported separately.  Side by side in one run: MoveNet + BlazePose
   landmarks (the default), the BlazePose-only pipeline from before, MoveNet alone (its 17
   keypoints, same input size and tiles), and with ``--variants`` the tuning variants; ms per
   image is wall time on one core.
c. Side by side (``--reference-python``): mediapipe 0.10.21's legacy ``mp.solutions.pose``
   (single person) run in its own virtual environment as a subprocess on the same images (and
   on the video), compared on the GT people it finds.
d. pose_squats.mp4: error vs the per-frame expected landmarks, and jitter (mean |frame-to-frame
   acceleration|) of the feet, which stay still through a squat, with and without smoothing.
m. Small people in big photos: the same images 3 x 3 to a 1920x1440 picture, same GT.
e. Speed on one core: median ms per 720p frame with one tracked person, and with detection;
   IMAGE mode on a 1080p photo of 4 people (with and without decoding their masks); MoveNet +
   BlazePose and BlazePose alone.

Usage::

    python scripts/eval_keypoints.py --json eval_keypoints.json \
        --reference-python /work/mpref-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from livematte.config import KeypointsConfig, RuntimeConfig  # noqa: E402
from livematte.frame import Frame, Mode  # noqa: E402
from livematte.stages.keypoints import KeypointStage  # noqa: E402

DATA = REPO.parent / "shared" / "data"
#: BlazePose indices of the 17 COCO keypoints, in COCO order.
COCO_FROM_BLAZEPOSE = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
COCO_SIGMAS = np.array(
    [.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]
) / 10.0  # fmt: skip
KEYPOINT_SETS = [
    ("coco", "keypoints/coco/person_keypoints_subset.json"),
    ("coco_val2017_mini", "keypoints/coco_val2017_mini/person_keypoints_val2017_subset.json"),
    ("coco_train2017_mini", "keypoints/coco_train2017_mini/person_keypoints_train2017_subset.json"),
    ("ochuman", "keypoints/ochuman/ochuman_subset.json"),
]
FEET = [27, 28, 29, 30, 31, 32]

# Runs inside the reference venv (numpy<2, mediapipe 0.10.21); reads a job as JSON on stdin.
REFERENCE_SCRIPT = r"""
import json, sys
import cv2
import mediapipe as mp
job = json.load(sys.stdin)
out = {"images": {}, "video": None}
def rows(res, w, h):
    if res.pose_landmarks is None:
        return None
    return [[p.x * w, p.y * h, p.visibility] for p in res.pose_landmarks.landmark]
with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                            min_detection_confidence=0.5) as pose:
    for path in job["images"]:
        img = cv2.imread(path)
        h, w = img.shape[:2]
        out["images"][path] = rows(pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), w, h)
if job.get("video"):
    frames = []
    cap = cv2.VideoCapture(job["video"])
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                smooth_landmarks=True) as pose:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            h, w = img.shape[:2]
            frames.append(rows(pose.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), w, h))
    out["video"] = frames
json.dump(out, sys.stdout)
"""


def make_stage(mode: str, threads: int = 1, **overrides: object) -> KeypointStage:
    """A keypoint stage with default settings plus ``overrides``."""
    return KeypointStage(
        KeypointsConfig(enabled=True, **overrides), RuntimeConfig(mode=mode, threads=threads)
    )


def _numbers(text: str, key: str) -> list[float]:
    return [float(v) for v in re.findall(rf"(?m)^\s*{key}: (-?[\d.eE+-]+)", text)]


def golden_cases(data: Path) -> list[tuple[str, Path, np.ndarray]]:
    """(name, image, expected (33, 2) px) for every landmark golden we can read."""
    g = data / "mediapipe_golden"
    cases = []
    pose = g / "pose.jpg"
    if pose.is_file():
        w, h = 1000, 667
        js = json.loads((g / "pose_expected_landmarks.json").read_text())
        cases.append(("pose.jpg / python solution", pose, np.array(js["landmarks_xy_px"], float)))
        for name, file in [
            ("pose.jpg / tasks pose_landmarks.pbtxt", "pose_landmarks.pbtxt"),
            ("pose.jpg / tasks detector graph", "pose_expected_landmarks_detector_graph.prototxt"),
        ]:
            text = (g / file).read_text()
            xy = np.stack([_numbers(text, "x")[:33], _numbers(text, "y")[:33]], axis=1)
            cases.append((name, pose, xy * [w, h]))
    sample = g / "mp_samples_pose_test_image.jpg"
    if sample.is_file():
        js = json.loads((g / "mp_samples_pose_expected_landmarks.json").read_text())
        w, h = js["image_size_wh"]
        xy = np.array(js["landmarks"]["full"], float)[:, :2] * [w, h]
        cases.append(("mp_samples test_image / tasks full", sample, xy))
    return cases


def eval_goldens(data: Path, stage: KeypointStage) -> list[dict]:
    """Section (a)."""
    rows = []
    for name, path, expected in golden_cases(data):
        img = cv2.imread(str(path))
        people = stage.process(Frame(img)).people
        if not people:
            rows.append({"case": name, "found": 0, "mean_err_px": None, "mean_err_frac": None})
            continue
        # The goldens are single-person: compare with whoever is closest.
        errs = [np.linalg.norm(p.landmarks[:, :2] - expected, axis=1) for p in people]
        err = min(errs, key=lambda e: e.mean())
        side = max(img.shape[:2])
        rows.append(
            {"case": name, "found": len(people), "mean_err_px": float(err.mean()),
             "max_err_px": float(err.max()), "mean_err_frac": float(err.mean() / side)}
        )  # fmt: skip
    return rows


def oks(pred: np.ndarray, gt: np.ndarray, area: float) -> float:
    """COCO object keypoint similarity of predicted (17, 2) vs GT (17, 3) keypoints."""
    labelled = gt[:, 2] > 0
    if not labelled.any():
        return 0.0
    d2 = np.sum((pred - gt[:, :2]) ** 2, axis=1)
    e = d2 / (2.0 * (2.0 * COCO_SIGMAS) ** 2 * (area + np.spacing(1)))
    return float(np.mean(np.exp(-e[labelled])))


def load_keypoint_sets(data: Path) -> list[dict]:
    """One record per image: path, subset, GT people (keypoints (17, 3), area, count)."""
    images = []
    for subset, rel in KEYPOINT_SETS:
        file = data / rel
        if not file.is_file():
            continue
        coco = json.loads(file.read_text())
        anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for im in coco["images"]:
            people = [a for a in anns.get(im["id"], []) if not a.get("iscrowd", 0)]
            gts = [
                {"kps": np.array(a["keypoints"], float).reshape(17, 3), "area": float(a["area"]),
                 "n": int(a["num_keypoints"])}
                for a in people if a["num_keypoints"] > 0
            ]  # fmt: skip
            images.append({
                "path": file.parent / im["file_name"], "subset": subset, "gts": gts,
                "crowded": subset == "ochuman" or len(people) >= 3,
            })  # fmt: skip
    return images


def match(preds: list[np.ndarray], gts: list[dict]) -> dict[int, float]:
    """Greedy one-to-one matching by OKS: {gt index: oks} (unmatched GT people absent)."""
    pairs = sorted(
        ((oks(p, g["kps"], g["area"]), i, j) for i, p in enumerate(preds)
         for j, g in enumerate(gts)), reverse=True,
    )  # fmt: skip
    used_p, out = set(), {}
    for score, i, j in pairs:
        if score <= 0 or i in used_p or j in out:
            continue
        used_p.add(i)
        out[j] = score
    return out


def summarise(records: list[dict]) -> dict:
    """Recall at OKS >= 0.5 and mean OKS of matched, over GT people with >= 10 keypoints."""
    eligible = [r for r in records if r["n"] >= 10]
    hits = [r["oks"] for r in eligible if r["oks"] >= 0.5]
    return {
        "gt_people": len(eligible),
        "recall_oks50": len(hits) / len(eligible) if eligible else None,
        "mean_oks_matched": float(np.mean(hits)) if hits else None,
        "mean_oks_all": float(np.mean([r["oks"] for r in eligible])) if eligible else None,
    }


Predict = Callable[[np.ndarray], list[np.ndarray]]
#: A found person whose OKS with every labelled person is below this is counted as spurious (an
#: upper bound on false positives: COCO leaves some small or crowded people unlabelled).
SPURIOUS_OKS = 0.1


def stage_predict(stage: KeypointStage) -> Predict:
    """A pipeline's people as (17, 2) COCO keypoints, from a keypoint stage in IMAGE mode."""
    def run(img: np.ndarray) -> list[np.ndarray]:
        return [p.landmarks[COCO_FROM_BLAZEPOSE, :2] for p in stage.process(Frame(img)).people]

    return run


def movenet_predict(stage: KeypointStage) -> Predict:
    """MoveNet alone (same input size and tiles as ``stage``): its 17 keypoints per person."""
    cfg = stage.config

    def run(img: np.ndarray) -> list[np.ndarray]:
        found = stage.finder.find_movenet(img, cfg.image_detect_size, cfg.image_tiles)
        return [k[:, :2] for k in found.keypoints[: cfg.max_people]]

    return run


MAIN_PIPELINES = ("movenet+blazepose", "blazepose (before)", "movenet alone")
VARIANT_PIPELINES = (
    "new/no-agreement", "new/no-fusion", "new/no-face-detector", "new/no-tiles",
    "new@256", "new@320", "new@512",
)  # fmt: skip


def people_row(name: str, r: dict) -> dict:
    """One line of the side-by-side table."""
    return {
        "pipeline": name,
        "recall all": r["all"]["recall_oks50"],
        "not crowded": r["not_crowded"]["recall_oks50"],
        "crowded": r["crowded_occluded"]["recall_oks50"],
        "mean OKS matched": r["all"]["mean_oks_matched"],
        "people found": r["people_found"],
        "spurious": r["spurious"],
        "ms median": r["ms_median"],
        "ms mean": r["ms_mean"],
    }


def pipelines(names: list[str], max_people: int) -> dict[str, tuple[Predict, KeypointStage]]:
    """The pipelines compared in section (b), by name (each with the stage it runs)."""
    variants = {
        "movenet+blazepose": {},
        "blazepose (before)": {"detector": "blazepose"},
        "movenet alone": {},
        "new/no-agreement": {},
        "new/no-fusion": {},
        "new/no-face-detector": {"face_detector": False},
        "new/no-tiles": {"image_tiles": 0},
        "new@256": {"image_detect_size": 256},
        "new@320": {"image_detect_size": 320},
        "new@512": {"image_detect_size": 512},
    }
    out = {}
    for name in names:
        if name not in variants:
            raise SystemExit(f"unknown pipeline {name!r}; known: {', '.join(variants)}")
        overrides = {"detector": "movenet", "max_people": max_people, **variants[name]}
        stage = make_stage("image", **overrides)
        stage.agree_oks = 0.0 if name == "new/no-agreement" else stage.agree_oks
        stage.fuse = name != "new/no-fusion"
        run = movenet_predict(stage) if name == "movenet alone" else stage_predict(stage)
        out[name] = (run, stage)
    return out


#: Section (m)'s people per picture: a 3 x 3 mosaic holds 9 to 30 labelled people.
MOSAIC_MAX_PEOPLE = 16


def mosaics(images: list[dict], n: int = 3, cell: tuple[int, int] = (640, 480)) -> list[dict]:
    """Big photos of small people: the images n x n to a picture (each fitted into ``cell``,
    black around it), their GT people moved and scaled with them; leftovers are dropped."""
    out = []
    for start in range(0, len(images) - n * n + 1, n * n):
        canvas = np.zeros((cell[1] * n, cell[0] * n, 3), np.uint8)
        gts = []
        for k, im in enumerate(images[start : start + n * n]):
            img = cv2.imread(str(im["path"]))
            s = min(cell[0] / img.shape[1], cell[1] / img.shape[0])
            w, h = round(img.shape[1] * s), round(img.shape[0] * s)
            x0, y0 = (k % n) * cell[0], (k // n) * cell[1]
            canvas[y0 : y0 + h, x0 : x0 + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            for g in im["gts"]:
                kps = g["kps"].copy()
                kps[:, :2] = kps[:, :2] * s + [x0, y0]
                gts.append({**g, "kps": kps, "area": g["area"] * s * s})
        name = f"mosaic{start // (n * n)}"
        out.append({"path": Path(name), "img": canvas, "subset": "mosaic", "gts": gts,
                    "crowded": True})  # fmt: skip
    return out


def eval_keypoints(
    data: Path, run: Predict, reference: dict | None, images: list[dict] | None = None
) -> dict:
    """Sections (b) and (c) for one pipeline; ms per image is wall time of ``run``."""
    records, ref_rows, times, found, spurious = [], [], [], 0, 0
    for im in images if images is not None else load_keypoint_sets(data):
        img = im["img"] if "img" in im else cv2.imread(str(im["path"]))
        t0 = time.perf_counter()
        preds = run(img)
        times.append((time.perf_counter() - t0) * 1000.0)
        found += len(preds)
        spurious += sum(
            max((oks(p, g["kps"], g["area"]) for g in im["gts"]), default=0.0) < SPURIOUS_OKS
            for p in preds
        )
        ours = match(preds, im["gts"])
        for j, g in enumerate(im["gts"]):
            records.append({"image": im["path"].name, "subset": im["subset"], "n": g["n"],
                            "crowded": im["crowded"], "oks": ours.get(j, 0.0)})  # fmt: skip
        if reference is not None:
            ref = reference["images"].get(str(im["path"]))
            row = {
                "image": im["path"].name,
                "ref_found": ref is not None,
                "ours_found": len(preds),
            }
            if ref is not None and im["gts"]:
                pred = np.array(ref, float)[COCO_FROM_BLAZEPOSE, :2]
                scores = [oks(pred, g["kps"], g["area"]) for g in im["gts"]]
                j = int(np.argmax(scores))
                row.update(ref_oks=scores[j], ours_oks=ours.get(j, 0.0), gt_n=im["gts"][j]["n"])
            ref_rows.append(row)
    result = {
        "all": summarise(records),
        "not_crowded": summarise([r for r in records if not r["crowded"]]),
        "crowded_occluded": summarise([r for r in records if r["crowded"]]),
        "ochuman": summarise([r for r in records if r["subset"] == "ochuman"]),
        "images": len({r["image"] for r in records}),
        "people_found": found,
        "spurious": spurious,
        "ms_median": float(np.median(times)),
        "ms_mean": float(np.mean(times)),
        "ms_max": float(np.max(times)),
    }
    if reference is not None:
        same = [r for r in ref_rows if "ref_oks" in r and r["ref_oks"] > 0]
        result["reference"] = {
            "images": len(ref_rows),
            "ref_images_with_person": sum(r["ref_found"] for r in ref_rows),
            "ours_images_with_person": sum(r["ours_found"] > 0 for r in ref_rows),
            "ours_people_found": int(sum(r["ours_found"] for r in ref_rows)),
            "ref_people_matched": len(same),
            "ref_mean_oks": float(np.mean([r["ref_oks"] for r in same])) if same else None,
            "ours_mean_oks_same_people": (
                float(np.mean([r["ours_oks"] for r in same])) if same else None
            ),
            "ref_oks50": sum(r["ref_oks"] >= 0.5 for r in same),
            "ours_oks50_same_people": sum(r["ours_oks"] >= 0.5 for r in same),
        }
    return result


def read_video(path: Path) -> tuple[list[np.ndarray], list[int], Fraction]:
    """All frames (BGR), their pts and the stream time base."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, pts = [], []
        for fr in container.decode(stream):
            frames.append(fr.to_ndarray(format="bgr24"))
            pts.append(fr.pts)
        return frames, pts, stream.time_base


def _track(stage: KeypointStage, frames: list[np.ndarray], pts: list[int], tb: Fraction) -> list:
    out = []
    for i, (img, p) in enumerate(zip(frames, pts, strict=True)):
        people = stage.process(Frame(img, index=i, pts=p, time_base=tb, mode=Mode.VIDEO)).people
        out.append(people[0].landmarks[:, :2].copy() if people else None)
    return out


def _video_stats(tracks: list, expected: np.ndarray, side: int) -> dict:
    found = [t is not None for t in tracks]
    err = [np.linalg.norm(t - e, axis=1).mean() for t, e in zip(tracks, expected, strict=True)
           if t is not None]  # fmt: skip
    full = np.array([t for t in tracks if t is not None])
    acc = np.abs(np.diff(full, n=2, axis=0))  # px / frame^2, per landmark and axis
    return {
        "frames_found": int(sum(found)),
        "mean_err_px": float(np.mean(err)),
        "mean_err_frac": float(np.mean(err) / side),
        "jitter_feet_px": float(np.linalg.norm(acc[:, FEET], axis=2).mean()),
        "accel_all_px": float(np.linalg.norm(acc, axis=2).mean()),
    }


def eval_video(data: Path, reference: dict | None) -> dict:
    """Section (d)."""
    video = data / "video" / "pose_squats.mp4"
    expected = np.array(json.loads((data / "video" / "pose_squats.full.json").read_text()))[..., :2]
    frames, pts, tb = read_video(video)
    side = max(frames[0].shape[:2])
    result = {"frames": len(frames), "expected": _video_stats(list(expected), expected, side)}
    # The clip is 5 fps.  Our filter follows the stream's pts; mediapipe's legacy solution API
    # stamps frames on a simulated 30 fps clock, so we also run on that clock to compare.
    clock30 = (list(range(len(frames))), Fraction(1, 30))
    runs = [("raw", False, (pts, tb)), ("smoothed (pts, 5 fps)", True, (pts, tb)),
            ("smoothed (30 fps clock)", True, clock30)]  # fmt: skip
    for detector in ("movenet", "blazepose"):
        for name, smooth, (stamps, base) in runs:
            stage = make_stage("video", smoothing=smooth, detector=detector)
            tracks = _track(stage, frames, stamps, base)
            result[f"{detector}: {name}"] = _video_stats(tracks, expected, side)
            stage.close()
    if reference is not None and reference.get("video"):
        tracks = [None if r is None else np.array(r, float)[:, :2] for r in reference["video"]]
        result["reference"] = _video_stats(tracks[: len(expected)], expected, side)
    return result


#: Section (e)'s group photo: 4 COCO people, all with >= 10 labelled keypoints.
GROUP_PHOTO = "keypoints/coco/000000196141.jpg"


def _timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - w0) * 1000.0, (time.process_time() - c0) * 1000.0


def _medians(samples: list[tuple[float, float]]) -> str:
    """'wall median / min, cpu median / min' in ms (the minimum is what a loaded machine
    disturbs least; CPU time counts only this process)."""
    if not samples:
        return "-"
    wall, cpu = np.median(np.array(samples), axis=0)
    wall_min, cpu_min = np.min(np.array(samples), axis=0)
    return f"{wall:.1f}/{wall_min:.1f}, {cpu:.1f}/{cpu_min:.1f}"


def eval_speed(data: Path, repeats: int, detector: str) -> dict:
    """Section (e), one core, median wall / CPU ms: a 1280x720 clip with one person (Pixabay
    thumbs-up) tracked in VIDEO mode; IMAGE mode on its frames and on a 4-person COCO photo
    enlarged to 1920x1080, also with every person's mask decoded (what matting's person-ROI
    fusion adds); the detector alone, the landmark model alone and its split-off mask decoder
    (the two together are the yardstick: 16.4 ms on the reference machine, so a loaded machine
    shows in it)."""
    cv2.setNumThreads(1)
    frames, pts, tb = read_video(data / "video" / "pixabay_thumbs_up.mp4")
    frames = frames[:repeats]
    stage = make_stage("video", threads=1, detect_interval=0, detector=detector)
    calls: list[int] = []
    find = stage.finder.find
    stage.finder.find = (  # type: ignore[method-assign]
        lambda image, image_mode: calls.append(1) or find(image, image_mode)
    )
    tracked, detected = [], []
    for i, img in enumerate(frames):
        before = len(calls)
        frame = Frame(img, index=i, pts=pts[i], time_base=tb, mode=Mode.VIDEO)
        sample = _timed(lambda: stage.process(frame))  # noqa: B023
        (detected if len(calls) > before else tracked).append(sample)
    image_stage = make_stage("image", threads=1, detector=detector)
    one_shot = [
        _timed(lambda: image_stage.process(Frame(img)))  # noqa: B023
        for img in frames[:20]
    ]
    group = cv2.imread(str(data / GROUP_PHOTO))
    group = cv2.resize(group, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    group_people = len(image_stage.process(Frame(group)).people)
    x = np.random.default_rng(0).random((1, 256, 256, 3), dtype=np.float32)
    features = image_stage._landmarker.run({"image": x})
    decoder = image_stage._mask_decoder
    features = {name: features[name] for name in decoder.input_names}

    def group_with_masks() -> None:
        # What matting's person-ROI fusion pays on top: every person's mask decoded.
        for mask in image_stage.process(Frame(group)).person_masks:
            mask.logits  # noqa: B018
    return {
        "detector": detector,
        "video 720p tracked": _medians(tracked),
        "frames with detection": len(detected),
        "detection frame": _medians(detected),
        "image 720p 1 person": _medians(one_shot),
        "image 1080p group": _medians([_timed(lambda: image_stage.process(Frame(group)))
                                       for _ in range(10)]),
        "group people found": group_people,
        "finder 720p": _medians([_timed(lambda: image_stage.finder.find(frames[0], True))
                                 for _ in range(20)]),
        "image 1080p group, masks read": _medians([_timed(group_with_masks) for _ in range(10)]),
        "landmark model": _medians([_timed(lambda: image_stage._landmarker.run({"image": x}))
                                    for _ in range(30)]),
        "mask decoder": _medians([_timed(lambda: decoder.run(features)) for _ in range(30)]),
    }  # fmt: skip


def run_reference(python: str, images: list[str], video: Path | None) -> dict:
    """Run mediapipe's legacy Pose in its own interpreter; returns its JSON."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fp:
        fp.write(REFERENCE_SCRIPT)
    job = json.dumps({"images": images, "video": str(video) if video else None})
    done = subprocess.run(
        [python, fp.name], input=job, capture_output=True, text=True, check=False, timeout=1800
    )
    Path(fp.name).unlink(missing_ok=True)
    if done.returncode != 0:
        raise SystemExit(f"reference run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def print_table(title: str, rows: list[dict]) -> None:
    """Plain-text table of dict rows (union of keys as columns)."""
    print(f"\n## {title}")
    if not rows:
        print("(no data)")
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--json", type=Path, help="write all figures to this JSON file")
    parser.add_argument("--reference-python", help="python of a venv with mediapipe==0.10.21")
    parser.add_argument("--max-people", type=int, default=KeypointsConfig.max_people)
    parser.add_argument(
        "--pipelines", default=",".join(MAIN_PIPELINES),
        help="comma-separated pipelines for section b (first = the one sections a, c use)",
    )  # fmt: skip
    parser.add_argument("--variants", action="store_true", help="also the tuning variants")
    parser.add_argument("--speed-frames", type=int, default=120)
    parser.add_argument(
        "--sections", default="abcdem", help="which sections to run (letters a..e, m: mosaics)"
    )
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"shared data not found: {args.data}", file=sys.stderr)
        return 2
    report: dict = {}
    reference = None
    if args.reference_python and set(args.sections) & set("cd"):
        images = [str(im["path"]) for im in load_keypoint_sets(args.data)]
        video = args.data / "video" / "pose_squats.mp4" if "d" in args.sections else None
        t0 = time.perf_counter()
        reference = run_reference(args.reference_python, images, video)
        print(f"reference pipeline ran in {time.perf_counter() - t0:.0f} s")
    cv2.setNumThreads(1)
    names = [n.strip() for n in args.pipelines.split(",") if n.strip()]
    if args.variants:
        names += [n for n in VARIANT_PIPELINES if n not in names]
    runs = pipelines(names, args.max_people)
    if "a" in args.sections:
        report["goldens"] = [
            {"pipeline": name, **row}
            for name in names[:2] for row in eval_goldens(args.data, runs[name][1])
        ]  # fmt: skip
        print_table("a. MediaPipe goldens (error as a fraction of the longer side)",
                    report["goldens"])  # fmt: skip
    if set(args.sections) & set("bc"):
        report["keypoints"] = {}
        for i, name in enumerate(names):
            ref = reference if "c" in args.sections and i == 0 else None
            report["keypoints"][name] = eval_keypoints(args.data, runs[name][0], ref)
        kp = report["keypoints"][names[0]]
        print_table(
            f"b. COCO-17 OKS vs human GT ({kp['images']} images, GT people with >= 10 "
            f"keypoints; max_people {args.max_people}; one core)",
            [people_row(name, r) for name, r in report["keypoints"].items()],
        )
        print_table(
            f"b. {names[0]} in detail",
            [{"group": k, **kp[k]} for k in ("all", "not_crowded", "crowded_occluded", "ochuman")],
        )
        if "reference" in kp:
            print_table("c. reference mp.solutions.pose (single person) vs ours",
                        [kp["reference"]])  # fmt: skip
    if "m" in args.sections:
        big = mosaics(load_keypoint_sets(args.data))
        crowd = pipelines(names, MOSAIC_MAX_PEOPLE)
        report["mosaics"] = {
            name: eval_keypoints(args.data, crowd[name][0], None, big) for name in names
        }
        print_table(
            f"m. small people in big photos: {len(big)} mosaics of 3x3 of those photos "
            f"(1920x1440; max_people {MOSAIC_MAX_PEOPLE}), GT people with >= 10 keypoints",
            [people_row(name, r) for name, r in report["mosaics"].items()],
        )
    if "d" in args.sections:
        report["video"] = eval_video(args.data, reference)
        rows = [{"run": k, **v} for k, v in report["video"].items() if isinstance(v, dict)]
        print_table(f"d. pose_squats.mp4 ({report['video']['frames']} frames)", rows)
    if "e" in args.sections:
        report["speed"] = [
            eval_speed(args.data, args.speed_frames, d) for d in ("movenet", "blazepose")
        ]
        print_table("e. speed, one core (ms: wall median/min, CPU median/min)", report["speed"])
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
