#!/usr/bin/env python
"""Evaluate livematte's matting against the raw baseline, in one run.

Baseline "raw" = the same embedded model and fit, coarse mask bilinearly upsampled (no
refinement, no clipping, no temporal filter).  Modes come from the shipped presets so the
numbers describe exactly what users run: live, guided (photo preset with the fast colour
guided filter), photo (closed-form band solve) and, for sequences, video.

Sections (all read ../shared/data relative to the repository root unless --data is given):

* p3m: 15 portraits with reference mattes (P3M-Net predictions, pseudo ground truth) -
  SAD, MSE, gradient and connectivity errors (definitions as in the DIM evaluation code,
  computed over the whole image since no trimap exists), ms per photo.
* iou: person IoU (alpha > 0.5) against MediaPipe/TF.js model goldens and against the union
  of the human-annotated COCO / OCHuman person instance masks.
* synthetic: a reference matte moved over a background plate (static, moving, static), with
  fresh sensor noise every frame, so the true alpha of each frame is known: flicker (mean
  |alpha_t - alpha_t-1| where the truth did not change), MAE against the truth (all frames and
  moving frames only, where lag would show), and colour fringe after compositing on a new
  background (per foreground estimator).
* video: flicker on real clips where the image did not change (|grey diff| < 2 levels).
* lag: how far the stabilised matte strays from the per-frame matte on real clips (ghosts
  left behind fast limbs, holes where the model changed its mind), with and without the
  optical-flow step.
* speed: live pipeline on 1280x720 frames, one core (cv2 and ONNX Runtime 1 thread).

* gray: a grey copy of every p3m portrait, alpha IoU (> 0.5) against the colour input's result.
* frame_ms: matting per 1280x720 frame in VIDEO mode, one thread: median / min wall, CPU ms.

``--models embedded,rvm_mobilenetv3`` puts other matting models side by side in the same run:
"<mode>@NAME" rows (photo and guided on p3m, photo on iou and gray, video and perframe -
RVM's own recurrence, unstabilised - on real clips, video on frame_ms), with ratios against
the same mode on the embedded model.  Rows without "@" always use the embedded model, whatever
is installed, and "@NAME" rows use the preset's own person-ROI setting (RVM's gating uses it).

"photo-nogate" is the photo preset without person gating (``matting.person_gate``), its
baseline in the same run.

``--person-roi`` adds a "<mode>+roi" row after each mode (but raw) in the p3m, iou, synthetic
and video sections: the same settings with ``matting.person_roi`` on, fed the person masks of
a keypoint stage (the base rows force it off, so both come from the same run); its ratios are
against the mode without fusion, and its ms include the keypoint stage.

Usage::

    python scripts/eval_matting.py --json eval.json
    python scripts/eval_matting.py --sections p3m,speed --limit 5
    python scripts/eval_matting.py --sections p3m,iou --person-roi
    python scripts/eval_matting.py --sections p3m,gray,video,frame_ms \
        --models embedded,rvm_mobilenetv3
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livematte.config import load_config  # noqa: E402
from livematte.frame import Frame, Mode  # noqa: E402
from livematte.ops.refine import estimate_foreground  # noqa: E402
from livematte.stages.keypoints import KeypointStage  # noqa: E402
from livematte.stages.matting import MattingStage  # noqa: E402

RAW = {
    "matting.refine": "none",
    "matting.clip_low": 0.0,
    "matting.clip_high": 1.0,
    "temporal.enabled": False,
}
MODES = {
    "raw": ("live", RAW),
    "live": ("live", {}),
    "guided": ("photo", {"matting.refine": "guided", "matting.guide": "color"}),
    "photo": ("photo", {}),
    # The photo preset without person gating (matting.person_gate): its baseline.
    "photo-nogate": ("photo", {"matting.person_gate": False}),
    "video": ("video", {}),
    # The same without step 1 of temporal.py (optical-flow smoothing of the coarse mask).
    "video-noflow": ("video", {"temporal.motion_compensation": False}),
    # Every frame on its own: the reference the lag section compares with.
    "perframe": ("video", {"temporal.enabled": False}),
}


#: Overrides applied to every mode (``--set key=value``) or one (``--set mode:key=value``),
#: e.g. to try preset changes before editing the TOML files.
EXTRA: dict[str, str] = {}
EXTRA_BY_MODE: dict[str, dict[str, str]] = {}
ROI = "+roi"
#: "<mode>@<model>": the same mode with another matting model (``--models``).
AT = "@"


def split_model(mode: str) -> tuple[str, str]:
    """``"photo@rvm_mobilenetv3"`` -> ("photo", "rvm_mobilenetv3"); no "@": the embedded model."""
    base, _, model = mode.partition(AT)
    return base, model or "embedded"


def make_stage(mode: str, threads: int = 0, foreground: bool = False) -> MattingStage:
    """Build the matting stage of a named evaluation mode ("<mode>+roi": person ROI on;
    "<mode>@NAME": matting model NAME, else the embedded one whatever is installed)."""
    mode, model = split_model(mode)
    base = mode.removesuffix(ROI)
    preset, overrides = MODES[base]
    extra = {**EXTRA, **EXTRA_BY_MODE.get(base, {})}
    roi = mode.endswith(ROI)
    if model != "embedded":
        # The model's own preset setting decides (photo: person masks feed RVM's gating).
        roi = load_config(preset).matting.person_roi or roi
    cfg = load_config(
        preset,
        {
            "matting.model": model,
            **extra,
            **overrides,
            "runtime.threads": threads,
            "matting.foreground": foreground,
            "matting.person_roi": roi,
        },
    )
    return MattingStage(cfg.matting, cfg.temporal, cfg.runtime)


def with_models(modes: list[str], models: list[str], only: tuple[str, ...]) -> list[str]:
    """``modes`` plus "<mode>@NAME" for each non-embedded model and each mode in ``only``."""
    extra = [f"{m}{AT}{name}" for name in models if name != "embedded" for m in only]
    return modes + extra


def with_roi(modes: list[str], on: bool) -> list[str]:
    """``modes`` with a "+roi" twin after each (but raw) when ``on``."""
    return [x for m in modes for x in ([m, m + ROI] if on and m != "raw" else [m])]


def make_keypoints(mode: str, preset_mode: str = "image") -> KeypointStage | None:
    """The keypoint stage feeding a "+roi" mode its person masks (None for other modes)."""
    base, model = split_model(mode)
    preset = MODES[base.removesuffix(ROI)][0]
    uses = model != "embedded" and load_config(preset).matting.person_roi
    if not (base.endswith(ROI) or uses):
        return None
    cfg = load_config("default", {"keypoints.enabled": True, "runtime.mode": preset_mode})
    # The preset's own people finding (the photo preset's looks further), with --set overrides.
    extra = {**EXTRA, **EXTRA_BY_MODE.get(base.removesuffix(ROI), {})}
    keypoints = load_config(preset, {**extra, "keypoints.enabled": True}).keypoints
    return KeypointStage(keypoints, cfg.runtime)


def process(stage: MattingStage, frame: Frame, keypoints: KeypointStage | None) -> Frame:
    """Keypoints (when given, for their person masks) then matting on one frame."""
    if keypoints is not None:
        keypoints.process(frame)
    return stage.process(frame)


# --- metrics ---------------------------------------------------------------------------------


def sad(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sum of absolute differences, alpha in 0..1, divided by 1000 (matting convention)."""
    return float(np.abs(pred - gt).sum() / 1000.0)


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared error (alpha in 0..1)."""
    return float(np.mean((pred - gt) ** 2))


def _gauss_deriv_kernels(sigma: float = 1.4, epsilon: float = 1e-2) -> tuple[np.ndarray, ...]:
    half = math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2 * math.pi) * sigma * epsilon)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -x / sigma**2 * g
    hx = np.outer(g, dg)  # derivative along x, Gaussian along y
    hx /= math.sqrt((hx**2).sum())
    return hx, hx.T.copy()


_KX, _KY = _gauss_deriv_kernels()


def gradient_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sum of squared differences of Gaussian-derivative (sigma 1.4) gradient magnitudes /1000."""

    def mag(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        gx = cv2.filter2D(a, -1, _KX, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.filter2D(a, -1, _KY, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2)

    return float(((mag(pred) - mag(gt)) ** 2).sum() / 1000.0)


def _largest_cc(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def connectivity_error(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> float:
    """Connectivity error (Rhemann et al.), DIM's formulation with step 0.1, theta 0.15, /1000."""
    thresholds = np.arange(0.0, 1.0 + step, step)
    level = np.full(pred.shape, -1.0)
    for i in range(1, len(thresholds)):
        omega = _largest_cc((pred >= thresholds[i]) & (gt >= thresholds[i]))
        fresh = (level == -1) & ~omega
        level[fresh] = thresholds[i - 1]
    level[level == -1] = 1.0
    d_pred, d_gt = pred - level, gt - level
    phi_pred = 1 - d_pred * (d_pred >= 0.15)
    phi_gt = 1 - d_gt * (d_gt >= 0.15)
    return float(np.abs(phi_pred - phi_gt).sum() / 1000.0)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


# --- sections --------------------------------------------------------------------------------


def run_image(
    stage: MattingStage, image: np.ndarray, keypoints: KeypointStage | None = None
) -> tuple[np.ndarray, float]:
    """Alpha of one photo (IMAGE mode) and its wall time in ms (keypoints included)."""
    t = time.perf_counter()
    alpha = process(stage, Frame(image=image, mode=Mode.IMAGE), keypoints).alpha
    return alpha, (time.perf_counter() - t) * 1e3


def section_p3m(data: Path, modes: list[str], limit: int) -> dict:
    folder = data / "matting" / "p3m_pseudo_gt"
    pairs = sorted(p for p in folder.glob("*.jpg"))[:limit]
    stages = {m: make_stage(m) for m in modes}
    kps = {m: make_keypoints(m) for m in modes}
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    for path in pairs:
        image = cv2.imread(str(path))
        gt = cv2.imread(str(path.with_name(path.stem + "_alpha.png")), 0).astype(np.float32) / 255
        for m, stage in stages.items():
            alpha, ms = run_image(stage, image, kps[m])
            rows[m].append(
                {
                    "image": path.name,
                    "sad": sad(alpha, gt),
                    "mse": mse(alpha, gt),
                    "grad": gradient_error(alpha, gt),
                    "conn": connectivity_error(alpha, gt),
                    "ms": ms,
                }
            )
    return {m: _mean(r) | _worst(r) | {"per_image": r} for m, r in rows.items()}


def _worst(rows: list[dict]) -> dict:
    worst = max(rows, key=lambda r: r["sad"])
    return {"worst_sad": worst["sad"], "worst_image": worst["image"]}


def section_gray(data: Path, modes: list[str], limit: int) -> dict:
    """A grey copy of every p3m portrait: alpha IoU (> 0.5) against the colour input's result."""
    folder = data / "matting" / "p3m_pseudo_gt"
    paths = sorted(folder.glob("*.jpg"))[:limit]
    out: dict[str, dict] = {}
    for m in modes:
        stage, keypoints = make_stage(m), make_keypoints(m)
        per = {}
        for path in paths:
            image = cv2.imread(str(path))
            grey = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            colour, _ = run_image(stage, image, keypoints)
            mono, _ = run_image(stage, grey, keypoints)
            per[path.name] = iou(mono > 0.5, colour > 0.5)
        out[m] = {
            "gray_iou": float(np.mean(list(per.values()))),
            "min_gray_iou": float(min(per.values())),
            "min_gray_image": min(per, key=per.get),
            "per_image": per,
        }
    return out


def _coco_masks(json_path: Path) -> dict[str, np.ndarray]:
    info = json.loads(json_path.read_text())
    images = {str(im["id"]): im for im in info["images"]}
    masks: dict[str, np.ndarray] = {}
    for ann in info["annotations"]:
        if int(ann.get("category_id", 1)) != 1:
            continue
        im = images[str(ann["image_id"])]
        h, w = int(im["height"]), int(im["width"])
        m = masks.setdefault(im["file_name"], np.zeros((h, w), bool))
        seg = ann["segmentation"]
        if isinstance(seg, list):
            canvas = np.zeros((h, w), np.uint8)
            for poly in seg:
                pts = np.round(np.asarray(poly, np.float64).reshape(-1, 2)).astype(np.int32)
                cv2.fillPoly(canvas, [pts], 1)
            m |= canvas.astype(bool)
        else:
            m |= _rle_decode(seg, h, w)
    return masks


def _rle_decode(seg: dict, h: int, w: int) -> np.ndarray:
    counts = seg["counts"]
    if isinstance(counts, str):  # COCO compressed RLE (pycocotools' LEB128-like string)
        values, p = [], 0
        while p < len(counts):
            x, k, more = 0, 0, True
            while more:
                c = ord(counts[p]) - 48
                x |= (c & 0x1F) << (5 * k)
                more = bool(c & 0x20)
                p, k = p + 1, k + 1
                if not more and (c & 0x10):
                    x |= -1 << (5 * k)
            if len(values) > 2:
                x += values[-2]
            values.append(x)
        counts = values
    flat = np.zeros(h * w, bool)
    pos, val = 0, False
    for n in counts:
        flat[pos : pos + n] = val
        pos, val = pos + n, not val
    return flat.reshape((w, h)).T  # column-major


def section_iou(data: Path, modes: list[str]) -> dict:
    gold = data / "mediapipe_golden"
    cases: list[tuple[str, Path, np.ndarray]] = []

    def blue(name: str) -> np.ndarray:
        m = cv2.imread(str(gold / name))
        return (m[..., 0] > 127) & (m[..., 2] < 128)

    if gold.is_dir():
        cases.append(
            (
                "mp:portrait",
                gold / "portrait.jpg",
                blue("portrait_expected_selfie_segmentation.png"),
            )
        )
        cases.append(("mp:pose", gold / "pose.jpg", blue("pose_expected_segmentation.png")))
        seg = cv2.imread(str(gold / "three_people_binary_segmentation.png"), cv2.IMREAD_UNCHANGED)
        cases.append(("tfjs:three_people", gold / "three_people.jpg", seg[..., 3] > 127))
    coco: list[tuple[str, Path, np.ndarray]] = []
    kp = data / "keypoints"
    for json_path in sorted(kp.glob("*/*.json")):
        if "wholebody" in json_path.name:
            continue
        for name, mask in _coco_masks(json_path).items():
            path = json_path.parent / name
            if path.is_file() and mask.any():
                coco.append((f"{json_path.parent.name}:{name}", path, mask))
    stages = {m: make_stage(m) for m in modes}
    out: dict[str, dict] = {}
    for m, stage in stages.items():
        per = {}
        keypoints = make_keypoints(m)
        for label, path, truth in cases + coco:
            image = cv2.imread(str(path))
            if image.shape[:2] != truth.shape:
                truth = cv2.resize(
                    truth.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_NEAREST
                ).astype(bool)
            alpha, _ = run_image(stage, image, keypoints)
            per[label] = iou(alpha > 0.5, truth)
        golden = [v for k, v in per.items() if k.startswith(("mp:", "tfjs:"))]
        human = [v for k, v in per.items() if not k.startswith(("mp:", "tfjs:"))]
        out[m] = {
            "golden_iou": float(np.mean(golden)) if golden else None,
            "coco_iou": float(np.mean(human)) if human else None,
            "n_coco": len(human),
            "per_image": per,
        }
    return out


def synthetic_clip(data: Path, name: str, size=(1280, 720), seed=0, noise=3.0):
    """Frames, true alphas and true foreground of a matte moved over a background plate."""
    folder = data / "matting" / "p3m_pseudo_gt"
    fg = cv2.imread(str(folder / f"{name}.jpg"))
    gt = cv2.imread(str(folder / f"{name}_alpha.png"), 0).astype(np.float32) / 255
    w, h = size
    s = h / fg.shape[0]
    pw = round(fg.shape[1] * s)
    fg = cv2.resize(fg, (pw, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    gt = cv2.resize(gt, (pw, h), interpolation=cv2.INTER_AREA)
    # The photo's own edge pixels mix in its old background; a true foreground must not, so
    # colours of semi-transparent pixels are extended inward from the opaque ones.
    opaque = (gt >= 0.98).astype(np.float32)
    clean = fg.copy()
    todo = opaque == 0
    for k in (15, 51, 151, 451):  # widen until every pixel has opaque neighbours
        weight = cv2.blur(opaque, (k, k))
        spread = cv2.blur(fg * opaque[..., None], (k, k)) / (weight + 1e-12)[..., None]
        ok = todo & (weight > 1e-3)
        clean[ok] = spread[ok]
        todo &= ~ok
    fg = clean
    plate = data / "matting" / "bg_plates" / "bgmatting_back.png"
    bg = cv2.resize(cv2.imread(str(plate)), (w, h), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    offsets = [0] * 12 + [6 * i for i in range(1, 13)] + [72] * 12
    start = max(0, (w - pw) // 2 - 36)
    frames, truths, moving = [], [], []
    for t, dx in enumerate(offsets):
        alpha = np.zeros((h, w), np.float32)
        fore = np.zeros((h, w, 3), np.float32)
        x0 = start + dx
        x1 = min(w, x0 + pw)
        alpha[:, x0:x1] = gt[:, : x1 - x0]
        fore[:, x0:x1] = fg[:, : x1 - x0]
        comp = alpha[..., None] * fore + (1 - alpha[..., None]) * bg
        comp += rng.normal(0.0, noise, comp.shape)
        frames.append(np.clip(comp + 0.5, 0, 255).astype(np.uint8))
        truths.append(alpha)
        moving.append(t > 0 and dx != offsets[t - 1])
    return frames, truths, moving, fore


def section_synthetic(data: Path, modes: list[str], names: list[str]) -> dict:
    out: dict[str, dict] = {}
    for m in modes:
        flick, flick_still, flick_move, err, err_move, ms = [], [], [], [], [], []
        for k, name in enumerate(names):
            frames, truths, moving, _ = synthetic_clip(data, name, seed=k)
            stage, keypoints = make_stage(m), make_keypoints(m, "video")
            prev = None
            for t, image in enumerate(frames):
                tic = time.perf_counter()
                frame = Frame(image=image, index=t, mode=Mode.VIDEO)
                alpha = process(stage, frame, keypoints).alpha
                ms.append((time.perf_counter() - tic) * 1e3)
                e = float(np.abs(alpha - truths[t]).mean())
                err.append(e)
                if moving[t]:
                    err_move.append(e)
                if prev is not None:
                    same = truths[t] == truths[t - 1]
                    flick.append(float(np.abs(alpha - prev)[same].mean()))
                    if same.all():  # the whole frame is still: pure flicker, no motion
                        flick_still.append(flick[-1])
                    if moving[t]:
                        flick_move.append(flick[-1])
                prev = alpha
        out[m] = {
            "flicker_x1e3": 1e3 * np.mean(flick),
            "still_flicker_x1e3": 1e3 * np.mean(flick_still),
            "moving_flicker_x1e3": 1e3 * np.mean(flick_move),
            "mae_x1e3": 1e3 * np.mean(err),
            "mae_moving_x1e3": 1e3 * np.mean(err_move),
            "ms": float(np.median(ms)),
        }
    return out


def section_fringe(data: Path, names: list[str]) -> dict:
    """Colour error after re-compositing on a new background, inside the true edge band."""
    out: dict[str, list[float]] = {"naive": [], "fast": [], "blur_fusion": [], "ml": []}
    for k, name in enumerate(names):
        frames, truths, _, fore = synthetic_clip(data, name, seed=k, noise=0.0)
        image, alpha = frames[0], truths[0]
        new_bg = np.zeros_like(fore)
        new_bg[:] = (40, 200, 60)
        a3 = alpha[..., None]
        target = a3 * fore + (1 - a3) * new_bg
        band = (alpha > 0.02) & (alpha < 0.98)
        for method in out:
            f = image if method == "naive" else estimate_foreground(image, alpha, method)
            comp = a3 * f.astype(np.float32) + (1 - a3) * new_bg
            out[method].append(float(np.abs(comp - target)[band].mean()))
    return {m: float(np.mean(v)) for m, v in out.items()}


def _video_frames(path: Path, n: int) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [
            f.to_ndarray(format="bgr24")
            for _, f in zip(range(n), container.decode(video=0), strict=False)
        ]


def section_video(data: Path, modes: list[str], n: int = 60) -> dict:
    clips = sorted((data / "video").glob("asl_*.mkv")) + [data / "video" / "pixabay_thumbs_up.mp4"]
    clips = [c for c in clips if c.is_file()]
    out: dict[str, dict] = {m: {} for m in modes}
    for clip in clips:
        frames = _video_frames(clip, n)
        grays = [
            cv2.blur(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.float32), (5, 5)) for f in frames
        ]
        for m in modes:
            stage, keypoints = make_stage(m), make_keypoints(m, "video")
            prev, vals = None, []
            for t, image in enumerate(frames):
                frame = Frame(image=image, index=t, mode=Mode.VIDEO)
                alpha = process(stage, frame, keypoints).alpha
                if prev is not None:
                    still = np.abs(grays[t] - grays[t - 1]) < 2.0
                    if still.any():
                        vals.append(float(np.abs(alpha - prev)[still].mean()))
                prev = alpha
            out[m][clip.name] = 1e3 * float(np.mean(vals))
    return {
        m: {"flicker_x1e3": float(np.mean(list(v.values()))), "per_clip": v} for m, v in out.items()
    }


def section_lag(data: Path, modes: list[str]) -> dict:
    """How far the stabilised matte strays from the per-frame matte of the same frame.

    Per frame, as % of the per-frame person area: "left" where the stabilised alpha is > 0.5
    but the per-frame one < 0.2 (a ghost left behind), "missing" the reverse (< 0.5 vs > 0.8,
    a hole).  The per-frame matte flickers itself, so this is an upper bound of lag: a flip
    the stabiliser rightly ignored counts too.  Fast motion: pose_squats.mp4 is 5 fps.
    """
    clips = {
        "pose_squats.mp4": 65,
        "one-by-one-person-detection.mp4": 150,
        "pixabay_thumbs_up.mp4": 100,
    }
    out: dict[str, dict] = {m: {} for m in modes}
    for clip, n in clips.items():
        path = data / "video" / clip
        if not path.is_file():
            continue
        frames = _video_frames(path, n)
        reference = make_stage("perframe")
        per_frame = [
            reference.process(Frame(image=im, index=t, mode=Mode.VIDEO)).alpha
            for t, im in enumerate(frames)
        ]
        for m in modes:
            stage = make_stage(m)
            left, missing = [], []
            for t, image in enumerate(frames):
                alpha = stage.process(Frame(image=image, index=t, mode=Mode.VIDEO)).alpha
                ref = per_frame[t]
                area = max(int((ref > 0.5).sum()), 1)
                left.append(100.0 * float(((alpha > 0.5) & (ref < 0.2)).sum()) / area)
                missing.append(100.0 * float(((alpha < 0.5) & (ref > 0.8)).sum()) / area)
            out[m][clip] = {
                "left_pct": float(np.mean(left)),
                "missing_pct": float(np.mean(missing)),
                "worst_pct": float(max(a + b for a, b in zip(left, missing, strict=True))),
            }
    return {
        m: {k: float(np.mean([c[k] for c in v.values()])) for k in ("left_pct", "missing_pct")}
        | {"worst_pct": max(c["worst_pct"] for c in v.values()), "per_clip": v}
        for m, v in out.items()
        if v
    }


def section_speed(data: Path, n: int = 100) -> dict:
    cv2.setNumThreads(1)
    clip = data / "video" / "pixabay_thumbs_up.mp4"
    frames = _video_frames(clip, 40) if clip.is_file() else []
    if not frames:
        rng = np.random.default_rng(0)
        frames = [cv2.GaussianBlur(rng.integers(0, 255, (720, 1280, 3), np.uint8), (0, 0), 3)]
    frames = [cv2.resize(f, (1280, 720)) for f in frames]
    out = {}
    for m in ("raw", "live"):
        stage = make_stage(m, threads=1, foreground=True)
        keys = ("segment", "temporal", "refine", "foreground")
        times: dict[str, list[float]] = {k: [] for k in keys + ("matting",)}
        for i in range(n + 10):
            f = stage.process(Frame(image=frames[i % len(frames)], index=i, mode=Mode.LIVE))
            if i < 10:
                continue  # warm-up
            for k in keys:
                times[k].append(f.timings.get(k, 0.0))
            times["matting"].append(sum(f.timings[k] for k in keys[:3]))
        out[m] = {k: float(np.median(v)) for k, v in times.items()}
    return out


def section_frame_ms(data: Path, modes: list[str], n: int = 20) -> dict:
    """Matting ms per 1280x720 frame in VIDEO mode, one thread (median, min, CPU ms)."""
    cv2.setNumThreads(1)
    clip = data / "video" / "pixabay_thumbs_up.mp4"
    frames = [cv2.resize(f, (1280, 720)) for f in _video_frames(clip, n + 3)]
    out = {}
    for m in modes:
        stage, keypoints = make_stage(m, threads=1), make_keypoints(m, "video")
        wall, cpu = [], []
        for i, image in enumerate(frames):
            t, c = time.perf_counter(), time.process_time()
            process(stage, Frame(image=image, index=i, mode=Mode.VIDEO), keypoints)
            if i >= 3:  # warm-up
                wall.append((time.perf_counter() - t) * 1e3)
                cpu.append((time.process_time() - c) * 1e3)
        out[m] = {
            "median_ms": float(np.median(wall)),
            "min_ms": float(np.min(wall)),
            "cpu_ms": float(np.median(cpu)),
            "fps": 1e3 / float(np.median(wall)),
        }
    return out


def _mean(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if k != "image"]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def _table(title: str, rows: dict[str, dict], cols: list[str], base: str | None = "raw") -> str:
    lines = [f"\n## {title}", "| mode | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for mode, vals in rows.items():
        cells = []
        for c in cols:
            v = vals.get(c)
            if v is None:
                cells.append("-")
                continue
            cell = f"{v:.4g}" if isinstance(v, float) else str(v)
            ref = mode.removesuffix(ROI) if mode.endswith(ROI) else base
            if AT in mode:
                ref = mode.split(AT)[0]  # another model: against the same mode, embedded
            b = rows.get(ref, {}).get(c) if ref else None
            if b and mode != ref and isinstance(v, float) and c != "ms":
                cell += f" ({v / b:.2f}x)"
            cells.append(cell)
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument(
        "--sections", default="p3m,gray,iou,synthetic,fringe,video,lag,frame_ms,speed"
    )
    parser.add_argument("--limit", type=int, default=100, help="max p3m photos")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every mode (repeatable)",
    )
    parser.add_argument(
        "--models",
        default="embedded",
        help="matting models side by side, e.g. embedded,rvm_mobilenetv3 (pulled); adds "
        "'<mode>@NAME' rows for photo (p3m, iou, gray) and video (video, frame_ms)",
    )
    parser.add_argument(
        "--person-roi",
        action="store_true",
        help="add each mode with matting.person_roi on (keypoints run first)",
    )
    args = parser.parse_args(argv)
    roi = args.person_roi
    for item in args.set:
        key, _, value = item.partition("=")
        mode, _, key = key.strip().rpartition(":")
        (EXTRA_BY_MODE.setdefault(mode, {}) if mode else EXTRA)[key] = value.strip()
    if not args.data.is_dir():
        parser.error(f"data folder not found: {args.data}")
    sections = set(args.sections.split(","))
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results: dict[str, dict] = {}
    names = ["p_015cd10e", "p_0865636e", "p_819ea202"]
    if "p3m" in sections:
        results["p3m"] = section_p3m(
            args.data,
            with_models(
                with_roi(["raw", "live", "guided", "photo-nogate", "photo"], roi),
                models,
                ("guided", "photo"),
            ),
            args.limit,
        )
        print(
            _table(
                "p3m_pseudo_gt (means; lower is better)",
                results["p3m"],
                ["sad", "mse", "grad", "conn", "worst_sad", "worst_image", "ms"],
            )
        )
    if "gray" in sections:
        results["gray"] = section_gray(
            args.data,
            with_models(with_roi(["photo-nogate", "photo"], roi), models, ("photo",)),
            args.limit,
        )
        print(
            _table(
                "grey copy of each p3m portrait: IoU (alpha > 0.5) vs the colour result",
                results["gray"],
                ["gray_iou", "min_gray_iou", "min_gray_image"],
                base=None,
            )
        )
    if "iou" in sections:
        results["iou"] = section_iou(
            args.data,
            with_models(
                with_roi(["raw", "live", "photo-nogate", "photo"], roi), models, ("photo",)
            ),
        )
        print(
            _table(
                "person IoU (alpha > 0.5; higher is better)",
                results["iou"],
                ["golden_iou", "coco_iou", "n_coco"],
            )
        )
    if "synthetic" in sections:
        results["synthetic"] = section_synthetic(
            args.data, with_roi(["raw", "live", "video"], roi) + ["video-noflow"], names
        )
        print(
            _table(
                "synthetic moving composites, VIDEO mode (x1e-3; lower is better)",
                results["synthetic"],
                [
                    "flicker_x1e3",
                    "still_flicker_x1e3",
                    "moving_flicker_x1e3",
                    "mae_x1e3",
                    "mae_moving_x1e3",
                    "ms",
                ],
            )
        )
    if "fringe" in sections:
        results["fringe"] = section_fringe(args.data, names)
        print("\n## colour fringe on a new background (mean |error| in the edge band, 0..255)")
        for k, v in results["fringe"].items():
            print(f"| {k} | {v:.3f} |")
    if "video" in sections:
        results["video"] = section_video(
            args.data,
            with_models(
                with_roi(["raw", "live", "video"], roi) + ["video-noflow"],
                models,
                ("perframe", "video"),
            ),
        )
        print(
            _table(
                "real video flicker where the image is still (x1e-3)",
                results["video"],
                ["flicker_x1e3"],
            )
        )
    if "lag" in sections:
        results["lag"] = section_lag(args.data, ["video", "video-noflow"])
        print(
            _table(
                "stabilised vs per-frame matte on real clips (% of person area; lower is better)",
                results["lag"],
                ["left_pct", "missing_pct", "worst_pct"],
                base=None,
            )
        )
    if "frame_ms" in sections:
        results["frame_ms"] = section_frame_ms(
            args.data, with_models(["video"], models, ("video",))
        )
        print(
            _table(
                "matting per 1280x720 frame, VIDEO mode, one thread (ms)",
                results["frame_ms"],
                ["median_ms", "min_ms", "cpu_ms", "fps"],
                base=None,
            )
        )
    if "speed" in sections:
        results["speed"] = section_speed(args.data)
        print(
            _table(
                "1280x720 LIVE, one core, median ms",
                results["speed"],
                ["segment", "temporal", "refine", "matting", "foreground"],
                base=None,
            )
        )
    results["overrides"] = {"all": dict(EXTRA), **EXTRA_BY_MODE}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
