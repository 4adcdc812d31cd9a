"""Person masks: logits given or computed on first use, once, and pickled as values."""

from __future__ import annotations

import pickle
import threading

import numpy as np

from livematte.ops.pose_detection import Roi
from livematte.ops.pose_landmarks import LANDMARK_SIZE, PersonMask


def _matrix() -> np.ndarray:
    return Roi(50.0, 40.0, 64.0, 0.0).crop_to_image(LANDMARK_SIZE)


def test_given_logits_are_used_as_they_are() -> None:
    logits = np.zeros((256, 256), np.float32)
    mask = PersonMask(3, logits, _matrix())
    assert mask.computed and mask.logits is logits
    assert np.allclose(mask.probability, 0.5)


def test_deferred_logits_are_computed_once_on_first_use() -> None:
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.full((256, 256), 20.0, np.float32)

    mask = PersonMask(1, compute, _matrix())
    assert not mask.computed and calls == []
    image = mask.to_image(100, 80)
    assert calls == [1] and mask.computed
    assert image[40, 50] > 0.99 and image[0, 0] == 0.0  # the 64 px square around (50, 40)
    assert mask.probability.shape == (256, 256)
    assert calls == [1]


def test_deferred_logits_under_threads_are_computed_once() -> None:
    calls = []
    start = threading.Barrier(4)

    def compute() -> np.ndarray:
        calls.append(1)
        return np.ones((256, 256), np.float32)

    mask = PersonMask(0, compute, _matrix())
    seen = []

    def read() -> None:
        start.wait()
        seen.append(mask.logits)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and all(s is seen[0] for s in seen)


def test_pickling_computes_and_keeps_the_values() -> None:
    mask = PersonMask(2, lambda: np.full((256, 256), -3.0, np.float32), _matrix())
    back = pickle.loads(pickle.dumps(mask))
    assert back.computed and back.track_id == 2
    assert np.array_equal(back.logits, mask.logits)
    assert np.array_equal(back.crop_to_image, mask.crop_to_image)
    assert back.refills == ()


def test_refills_are_deferred_too_and_pickled() -> None:
    calls = []

    def refills() -> np.ndarray:
        calls.append(1)
        return np.stack([np.full((256, 256), 20.0, np.float32), np.zeros((256, 256), np.float32)])

    mask = PersonMask(1, np.zeros((256, 256), np.float32), _matrix(), refills)
    assert calls == []
    black, mirror = mask.refills
    assert black.min() > 0.99 and np.allclose(mirror, 0.5) and calls == [1]
    back = pickle.loads(pickle.dumps(mask))
    assert len(back.refills) == 2 and np.array_equal(back.refills[0], black)
    assert calls == [1]
