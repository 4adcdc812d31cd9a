"""MattingStage on the embedded models: geometry, modes, sizes, and real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from media import SHARED_DATA, needs_shared

from livematte.config import MattingConfig, RuntimeConfig, TemporalConfig  # noqa: E402
from livematte.errors import ModelError  # noqa: E402
from livematte.frame import Frame, Mode  # noqa: E402
from livematte.stages.matting import (  # noqa: E402
    MattingStage,
)
from livematte.stages.matting_adapters import (  # noqa: E402
    SelfieSegmentationAdapter,
    resize_image,
)
from livematte.stages.model_choice import LANDSCAPE, SQUARE, choose_model  # noqa: E402

DATA = SHARED_DATA
needs_data = needs_shared()


def person_image(w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """A light person-like silhouette (head + shoulders) on a dark textured background."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.uniform(0, 80, (h, w)).astype(np.float32), (0, 0), 3)
    image = np.dstack([texture, texture * 0.9, texture * 0.8]).astype(np.uint8)
    cx = w // 2
    cv2.ellipse(image, (cx, h), (w // 3, h // 3), 0, 180, 360, (150, 170, 200), -1)
    cv2.circle(image, (cx, h // 2), min(w, h) // 6, (140, 170, 215), -1)
    return image


class EchoSession:
    """Fake NHWC model whose 'probability' is the input's mean colour: shows the geometry."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self.seen: list[np.ndarray] = []
        self.input_shapes = {"image": [1, size[1], size[0], 3]}
        self.output_names = ["segmentation"]
        self.provider = "fake"

    def run(self, inputs: dict) -> dict:
        x = inputs["image"]
        self.seen.append(x.copy())
        return {"segmentation": x.mean(axis=3, keepdims=True)}


@pytest.mark.parametrize(
    ("w", "h", "expected"),
    [
        (1280, 720, LANDSCAPE),
        (640, 480, SQUARE),
        (720, 1280, SQUARE),
        (1000, 740, LANDSCAPE),
        (100, 100, SQUARE),
        (16, 9, LANDSCAPE),
    ],
)
def test_choose_model_by_aspect(w, h, expected):
    assert choose_model("auto", w, h) == expected
    assert choose_model("my_model", w, h) == "my_model"


@pytest.mark.parametrize(
    ("fit", "w", "h"),
    [("letterbox", 300, 100), ("letterbox", 100, 300), ("stretch", 300, 100), ("letterbox", 7, 7)],
)
def test_selfie_adapter_crops_padding(fit, w, h):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = 255  # left half white
    session = EchoSession((256, 256))
    adapter = SelfieSegmentationAdapter(session, (256, 256), fit)
    coarse = adapter.predict(image)
    x0, y0, cw, ch = adapter.geometry(w, h)
    assert coarse.alpha.shape == (ch, cw) == coarse.guide.shape[:2]
    if fit == "letterbox":
        assert abs(cw / ch - w / h) < 0.1 * (w / h) + 2 / min(cw, ch)
        padded = session.seen[0][0]
        # Padding is black and none of it is left in the mask.
        if y0:
            assert padded[:y0].max() == 0
        if x0:
            assert padded[:, :x0].max() == 0
    else:
        assert (cw, ch) == (256, 256)
    assert coarse.alpha[:, 0].min() > 0.9 and coarse.alpha[:, -1].max() < 0.1


def test_resize_image_large_reduction_is_smooth():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (720, 1280, 3), np.uint8)
    small = resize_image(image, (256, 144))
    assert small.shape == (144, 256, 3)
    assert small.std() < 0.4 * image.std()  # averaged (anti-aliased), not point-sampled
    assert resize_image(image, (1280, 720)) is image


@pytest.fixture(scope="module")
def live_stage():
    stage = MattingStage(MattingConfig(refine="guided"), TemporalConfig(), RuntimeConfig())
    yield stage
    stage.close()


@pytest.mark.parametrize(
    ("w", "h"), [(16, 16), (7, 300), (300, 7), (640, 360), (360, 640), (1, 1), (1023, 767)]
)
def test_any_size_gives_full_resolution_alpha(live_stage, w, h):
    frame = live_stage.process(Frame(image=person_image(w, h)))
    assert frame.alpha.shape == (h, w) and frame.alpha.dtype == np.float32
    assert float(frame.alpha.min()) >= 0.0 and float(frame.alpha.max()) <= 1.0
    assert frame.foreground.shape == (h, w, 3) and frame.foreground.dtype == np.uint8
    assert set(frame.timings) == {"segment", "temporal", "refine", "foreground"}


def test_input_image_is_not_modified(live_stage):
    image = person_image()
    before = image.copy()
    live_stage.process(Frame(image=image))
    assert np.array_equal(image, before)


def test_image_mode_is_stateless(live_stage):
    a = person_image(seed=1)
    first = live_stage.process(Frame(image=a, mode=Mode.IMAGE)).alpha
    live_stage.process(Frame(image=person_image(seed=2), mode=Mode.IMAGE))
    again = live_stage.process(Frame(image=a, mode=Mode.IMAGE)).alpha
    assert np.array_equal(first, again)


def echo_factory(name, providers, threads):
    """Session factory for MattingStage: bright pixels are 'person' (deterministic)."""
    return EchoSession((256, 144) if "landscape" in str(name) else (256, 256))


def test_video_mode_smooths_noise_and_resets():
    stage = MattingStage(
        MattingConfig(refine="none", foreground=False),
        TemporalConfig(strength=0.9),
        RuntimeConfig(),
        session_factory=echo_factory,
    )
    base = person_image(1280, 720).astype(np.int16)
    rng = np.random.default_rng(3)
    noisy = [
        np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8) for _ in range(8)
    ]
    video = [
        stage.process(Frame(image=im, index=i, mode=Mode.VIDEO)).alpha for i, im in enumerate(noisy)
    ]
    single = [stage.process(Frame(image=im, mode=Mode.IMAGE)).alpha for im in noisy]
    flick_video = np.abs(np.diff(np.array(video), axis=0)).mean()
    flick_image = np.abs(np.diff(np.array(single), axis=0)).mean()
    assert flick_video < 0.5 * flick_image
    # A smoothed alpha is also the next frame's history: writing into it must fail loudly.
    assert not video[-1].flags.writeable
    with pytest.raises(ValueError):
        video[-1][0, 0] = 0.5
    # After reset() the next VIDEO frame equals the stateless result.
    stage.reset()
    first = stage.process(Frame(image=noisy[0], mode=Mode.VIDEO)).alpha
    assert np.array_equal(first, single[0])


@pytest.mark.parametrize("refine", ["none", "guided", "closed_form"])
@pytest.mark.parametrize("guide", ["gray", "color"])
def test_refine_modes(refine, guide):
    stage = MattingStage(
        MattingConfig(refine=refine, guide=guide, clip_low=0.3, clip_high=0.6),
        session_factory=echo_factory,
    )
    frame = stage.process(Frame(image=person_image(200, 160)))
    assert frame.alpha.shape == (160, 200)
    assert frame.alpha[-1, 100] > 0.5 > frame.alpha[5, 5]  # body in, corner out
    assert frame.foreground.shape == (160, 200, 3)


def test_unknown_model_name():
    stage = MattingStage(MattingConfig(model="no_such_model"))
    with pytest.raises(ModelError, match="known"):
        stage.process(Frame(image=person_image()))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


@needs_data
def test_portrait_matches_mediapipe_golden():
    gold = DATA / "mediapipe_golden"
    image = cv2.imread(str(gold / "portrait.jpg"))
    expected = cv2.imread(str(gold / "portrait_expected_selfie_segmentation.png"))
    truth = (expected[..., 0] > 127) & (expected[..., 2] < 128)  # person drawn blue
    for refine in ("none", "guided"):
        stage = MattingStage(MattingConfig(refine=refine, foreground=False))
        alpha = stage.process(Frame(image=image)).alpha
        assert _iou(alpha > 0.5, truth) > 0.95


@needs_data
def test_photo_refinement_beats_raw_on_reference_mattes():
    folder = DATA / "matting" / "p3m_pseudo_gt"
    raw = MattingStage(MattingConfig(refine="none", clip_low=0.0, clip_high=1.0, foreground=False))
    photo = MattingStage(MattingConfig(refine="closed_form", foreground=False))
    sad_raw = sad_photo = 0.0
    for name in ("p_0865636e", "p_a09f6d7a"):
        image = cv2.imread(str(folder / f"{name}.jpg"))
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2))
        gt = cv2.imread(str(folder / f"{name}_alpha.png"), 0).astype(np.float32) / 255
        gt = cv2.resize(gt, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
        sad_raw += np.abs(raw.process(Frame(image=image)).alpha - gt).sum()
        sad_photo += np.abs(photo.process(Frame(image=image)).alpha - gt).sum()
    assert sad_photo < 0.9 * sad_raw


class FlippingSession(EchoSession):
    """Fake model that thresholds the echo and drops random blocks of the person each call."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(size)
        self.rng = np.random.default_rng(5)

    def run(self, inputs: dict) -> dict:
        x = inputs["image"]
        mask = (x.mean(axis=3, keepdims=True) > 0.45).astype(np.float32)
        h, w = mask.shape[1:3]
        for _ in range(6):  # the model "changes its mind" about a few patches of the body
            y0, x0 = self.rng.integers(0, h - 8), self.rng.integers(0, w - 8)
            mask[0, y0 : y0 + 8, x0 : x0 + 8] *= 0.3
        return {"segmentation": mask}


def walking_person(dx: int, w: int = 1280, h: int = 720) -> np.ndarray:
    """person_image's silhouette moved ``dx`` pixels right over the same textured background."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 80, (h, w)).astype(np.float32), (0, 0), 3)
    image = np.dstack([texture, texture * 0.9, texture * 0.8]).astype(np.uint8)
    cx = w // 3 + dx
    shirt = cv2.GaussianBlur(rng.uniform(150, 230, (h, w)).astype(np.float32), (0, 0), 3)
    body = np.zeros((h, w), np.uint8)
    cv2.ellipse(body, (cx, h), (w // 6, h // 3), 0, 180, 360, 255, -1)
    cv2.circle(body, (cx, h // 2), h // 8, 255, -1)
    pattern = np.roll(shirt, dx, axis=1)  # the body's texture moves with it
    image[body > 0] = np.dstack([pattern * 0.8, pattern * 0.9, pattern])[body > 0]
    return image


def test_motion_compensation_steadies_a_moving_body():
    def run(compensate: bool) -> list[np.ndarray]:
        stage = MattingStage(
            MattingConfig(refine="none", foreground=False),
            TemporalConfig(strength=1.0, motion_compensation=compensate),
            RuntimeConfig(),
            session_factory=lambda name, providers, threads: FlippingSession(
                (256, 144) if "landscape" in str(name) else (256, 256)
            ),
        )
        frames = [walking_person(10 * t) for t in range(16)]
        return [
            stage.process(Frame(image=im, index=i, mode=Mode.VIDEO)).alpha
            for i, im in enumerate(frames)
        ]

    def body_flicker(alphas: list[np.ndarray]) -> float:
        inside = [
            cv2.erode((a > 0.5).astype(np.uint8), np.ones((41, 41), np.uint8)) > 0 for a in alphas
        ]
        return float(
            np.mean(
                [
                    np.abs(alphas[t] - alphas[t - 1])[inside[t] & inside[t - 1]].mean()
                    for t in range(6, 16)
                ]
            )
        )

    assert body_flicker(run(True)) < 0.5 * body_flicker(run(False))
