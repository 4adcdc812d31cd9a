#!/usr/bin/env python
"""Teach the embedded segmenter to see grey photos as it sees colour ones (dev-only: JAX).

Issue 13's grey floor: the matte of a grey copy of a photo must match the colour photo's.
The MediaPipe segmenter (Apache-2.0) leans on colour: in grey it loses a privacy-blurred face
or a hand on a wall of the same grey (BENCHMARKS.md "Grey photos").  This script distils the
colour model into a grey one: the student starts as the shipped model and learns, on grey
copies of colour photos, to give what the original model gives on the colour photo itself
(soft binary cross-entropy).  No labels are used: the teacher's colour output is the target.

Training photos: only ones whose licence allows it (CC-BY 2.0 COCO images, the CC-BY-4.0 /
Apache-2.0 / Pexels / Pixabay clips of ../shared/data/video, the Apache-2.0 MediaPipe test
images); never the p3m portraits (the grey evaluation) nor the COCO/OCHuman images of
``keypoints/coco`` and ``keypoints/ochuman``.  Each sample is a random crop (area 12-100%,
aspect 0.5-2), mirrored half the time, brightness/contrast jittered, then fitted to the
model's input as the pipeline does (stretched, or letterboxed on black for the square model).

Half the samples come from the stills, half from the clips' frames (the clips are 280 of the
294 training sources); the held-out sources (15%, by name) give the IoU printed while training.

Measured (BENCHMARKS.md "Grey photos, fifth session"): the grey twins it makes move the
privacy-blurred p_015cd10e (0.540 -> 0.74) but bleed into poster text and keep the statue
photo's statue, so none ships; this script is the record of that measurement.

Usage, in a dev venv (JAX is never a livematte dependency)::

    python3 -m venv /tmp/jaxvenv && /tmp/jaxvenv/bin/pip install "jax[cpu]==0.10.2" \
        onnx==1.23.2 onnxruntime==1.32.0 opencv-python-headless==5.1.0.95 numpy==2.4.6
    /tmp/jaxvenv/bin/python scripts/train_grey_segmenter.py --model square \
        --out /tmp/grey_square.onnx --samples 1500 --steps 400 --lr 5e-5 --train-first 12
    LIVEMATTE_CACHE=... python scripts/eval_grey_tta.py --models embedded \
        --variants grey,twin:/tmp/grey_square.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import onnx_jax  # noqa: E402

MODELS = {
    "square": ("selfie_segmentation.onnx", (256, 256)),
    "landscape": ("selfie_segmentation_landscape.onnx", (256, 144)),
}
#: COCO licence ids that allow use with attribution only (CC BY 2.0).
COCO_OPEN = {4}
VIDEO_FRAMES = 40


def sources(data: Path) -> list[tuple[str, np.ndarray]]:
    """(name, BGR image) of every training photo and sampled video frame."""
    out = []
    for sub in ("coco_train2017_mini", "coco_val2017_mini"):
        folder = data / "keypoints" / sub
        for meta in folder.glob("*.json"):
            for im in json.loads(meta.read_text())["images"]:
                if im.get("license") in COCO_OPEN and (folder / im["file_name"]).exists():
                    out.append((im["file_name"], cv2.imread(str(folder / im["file_name"]))))
    for path in sorted((data / "mediapipe_golden").glob("*.jp*g")):
        out.append((path.name, cv2.imread(str(path))))
    for path in sorted((data / "video").glob("*.m[pk][4v]")):
        cap = cv2.VideoCapture(str(path))
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        step = max(1, len(frames) // VIDEO_FRAMES)
        out += [(f"{path.stem}#{i}", f) for i, f in enumerate(frames[::step][:VIDEO_FRAMES])]
    return out


def held_out(name: str, share: float = 0.15) -> bool:
    """A stable split by source (a clip's frames go together)."""
    stem = name.split("#")[0]
    return int(hashlib.sha256(stem.encode()).hexdigest()[:8], 16) / 2**32 < share


def sample(rng: np.random.Generator, image: np.ndarray, size: tuple[int, int], square: bool):
    """(colour input, grey input) of one random view: NHWC-less HxWx3 float32 RGB 0..1."""
    h, w = image.shape[:2]
    area = rng.uniform(0.12, 1.0) * h * w
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    cw = int(min(w, max(16, round(np.sqrt(area * aspect)))))
    ch = int(min(h, max(16, round(np.sqrt(area / aspect)))))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-25, 25)
    crop = np.clip(crop.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    mw, mh = size
    canvas = np.zeros((mh, mw, 3), np.uint8)
    if square and rng.random() < 0.5:  # letterboxed, as the pipeline's second square view
        s = min(mw / cw, mh / ch)
        rw, rh = max(1, round(cw * s)), max(1, round(ch * s))
        ox, oy = (mw - rw) // 2, (mh - rh) // 2
        fitted = cv2.resize(crop, (rw, rh), interpolation=cv2.INTER_AREA)
        canvas[oy : oy + rh, ox : ox + rw] = fitted
    else:
        canvas = cv2.resize(crop, (mw, mh), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    colour = canvas[..., ::-1].astype(np.float32) / 255
    return colour, grey[..., ::-1].astype(np.float32) / 255


def dataset(pool, n, size, square, teacher, seed, baseline=False):
    """(grey inputs, teacher's colour targets, and with ``baseline`` the teacher's own answers
    on the grey inputs, else None) of ``n`` random samples."""
    rng = np.random.default_rng(seed)
    stills = [p for p in pool if "#" not in p[0]]
    clips = [p for p in pool if "#" in p[0]]
    greys, targets, base = [], [], []
    for _ in range(n):
        group = stills if (rng.random() < 0.5 and stills) or not clips else clips
        _, image = group[int(rng.integers(len(group)))]
        colour, grey = sample(rng, image, size, square)
        t = teacher.run(None, {"image": colour[None]})[0][0, ..., 0]
        greys.append((grey[..., 0] * 255).astype(np.uint8))
        targets.append(np.round(t * 255).astype(np.uint8))
        if baseline:
            base.append(teacher.run(None, {"image": grey[None]})[0][0, ..., 0])
    return np.stack(greys), np.stack(targets), np.stack(base) if baseline else None


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="square")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument(
        "--train-first", type=int, default=0, help="train only the first N weight tensors (0: all)"
    )
    args = ap.parse_args(argv)

    file, size = MODELS[args.model]
    model = onnx.load(str(ROOT / "livematte" / "models" / "data" / file))
    teacher = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pool = sources(args.data)
    train = [p for p in pool if not held_out(p[0])]
    val = [p for p in pool if held_out(p[0])]
    print(f"sources: {len(train)} train, {len(val)} held out", flush=True)
    t0 = time.time()
    square = args.model == "square"
    xg, yt, _ = dataset(train, args.samples, size, square, teacher, args.seed)
    vg, vt, vbase = dataset(
        val, max(200, args.samples // 10), size, square, teacher, args.seed + 1, baseline=True
    )
    print(f"data: {len(xg)} + {len(vg)} samples in {time.time() - t0:.0f} s", flush=True)

    params, forward = onnx_jax.load(model)
    params = {k: jnp.asarray(v) for k, v in params.items()}
    order = list(params)
    trainable = set(order[: args.train_first] if args.train_first else order)
    print(f"training {len(trainable)} of {len(order)} weight tensors", flush=True)

    def predict(p, grey_u8):
        x = jnp.repeat(grey_u8[..., None].astype(jnp.float32) / 255.0, 3, axis=-1)
        return forward(p, x)[..., 0]

    def loss_fn(train_p, frozen_p, grey_u8, target_u8):
        prob = jnp.clip(predict({**frozen_p, **train_p}, grey_u8), 1e-6, 1 - 1e-6)
        t = target_u8.astype(jnp.float32) / 255.0
        return -jnp.mean(t * jnp.log(prob) + (1 - t) * jnp.log(1 - prob))

    b1, b2, eps = 0.9, 0.999, 1e-8

    @jax.jit
    def step(p, frozen_p, m, v, i, grey_u8, target_u8):
        loss, g = jax.value_and_grad(loss_fn)(p, frozen_p, grey_u8, target_u8)
        m = jax.tree_util.tree_map(lambda a, b: b1 * a + (1 - b1) * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: b2 * a + (1 - b2) * b * b, v, g)
        lr = args.lr * jnp.sqrt(1 - b2**i) / (1 - b1**i)
        p = jax.tree_util.tree_map(lambda a, mm, vv: a - lr * mm / (jnp.sqrt(vv) + eps), p, m, v)
        return p, m, v, loss

    pred = jax.jit(predict)

    def evaluate(p) -> tuple[float, float]:
        probs = np.concatenate([np.asarray(pred(p, vg[i : i + 16])) for i in range(0, len(vg), 16)])
        t = vt > 127
        return float(np.mean([iou(a > 0.5, b) for a, b in zip(probs, t, strict=True)])), float(
            np.mean(np.abs(probs - vt / 255.0))
        )

    base_iou = float(np.mean([iou(a > 0.5, b) for a, b in zip(vbase, vt > 127, strict=True)]))
    student = evaluate(params)[0]
    print(
        f"held out, grey vs colour teacher: IoU {base_iou:.4f} (student {student:.4f})", flush=True
    )
    train_p = {k: params[k] for k in order if k in trainable}
    frozen_p = {k: params[k] for k in order if k not in trainable}
    zeros = jax.tree_util.tree_map(jnp.zeros_like, train_p)
    m, v = zeros, zeros
    rng = np.random.default_rng(args.seed + 2)
    t0 = time.time()
    for i in range(1, args.steps + 1):
        idx = rng.integers(0, len(xg), args.batch)
        train_p, m, v, loss = step(train_p, frozen_p, m, v, i, xg[idx], yt[idx])
        if i % args.every == 0 or i == args.steps:
            vi, vl = evaluate({**frozen_p, **train_p})
            took = time.time() - t0
            line = f"step {i}: loss {float(loss):.4f}, held-out IoU {vi:.4f}, L1 {vl:.4f}"
            print(f"{line}, {took:.0f} s", flush=True)
    params = {**frozen_p, **train_p}
    out = onnx_jax.write_params(model, {k: np.asarray(v) for k, v in params.items()})
    args.out.write_bytes(out.SerializeToString())
    print(f"wrote {args.out} sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
