"""PersonFinder: MoveNet passes over the whole image and tiles, with the model's output given."""

from __future__ import annotations

import numpy as np
import pytest

from livematte.config import KeypointsConfig, RuntimeConfig
from livematte.ops.pose_detection import Roi
from livematte.stages.person_finder import PersonFinder


class FakeMovenet:
    """Answers like MoveNet: one small person, but only where it sees the bright square whole.

    The person stands on a bright 60x160 block drawn into the test image; the fake reports it
    (in input-normalised coordinates) when the block is in its input and big enough to see.
    """

    input_names = ["input"]
    output_names = ["output_0"]

    def __init__(self, min_block_px: int) -> None:
        self.min_block_px = min_block_px
        self.inputs: list[tuple[int, ...]] = []

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        (tensor,) = feeds.values()
        assert tensor.dtype == np.int32 and tensor.shape[1] % 32 == 0 and tensor.shape[2] % 32 == 0
        self.inputs.append(tensor.shape)
        out = np.zeros((1, 6, 56), np.float32)
        ys, xs = np.nonzero(tensor[0, ..., 0] > 200)
        if len(ys) and np.ptp(ys) + 1 >= self.min_block_px:
            h, w = tensor.shape[1:3]
            top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            cx = (left + right) / 2 / w
            rows = np.linspace(top, bottom, 17) / h  # keypoints down the block's middle
            cols = cx + np.tile([-0.01, 0.01], 9)[:17] * (right - left) / w * 20
            out[0, 0, :51] = np.stack([rows, cols, np.full(17, 0.8)], 1).reshape(-1)
            out[0, 0, 51:55] = [top / h, left / w, bottom / h, right / w]
            out[0, 0, 55] = 0.6
        return {"output_0": out}

    def close(self) -> None:
        pass


def _finder(fake: FakeMovenet, **overrides) -> PersonFinder:
    config = KeypointsConfig(enabled=True, face_detector=False, **overrides)
    finder = PersonFinder(config, RuntimeConfig(threads=1))
    finder._movenet.close()
    finder._movenet = fake
    return finder


@pytest.fixture
def photo() -> np.ndarray:
    """A 2000x1200 photo with one small person-sized bright block at (1500..1560, 800..960)."""
    img = np.zeros((1200, 2000, 3), np.uint8)
    img[800:960, 1500:1560] = 255
    return img


def test_tiles_find_a_small_person_the_whole_image_pass_misses(photo) -> None:
    # At 384 px the 160 px block is 31 px tall: too small; in a 2x2 tile at 384 it is ~49 px.
    fake = FakeMovenet(min_block_px=40)
    people = _finder(fake, image_detect_size=384, image_tiles=2).find_movenet(photo, 384, 2)
    assert len(fake.inputs) == 5  # the whole image, then 4 tiles
    assert len(people) == 1  # in the bottom-right tile only
    left, top, right, bottom = people.boxes[0]
    assert (left, top, right, bottom) == pytest.approx((1500, 800, 1560, 960), abs=8)
    candidates = _finder(FakeMovenet(40), image_tiles=2).find(photo, image_mode=True)
    assert len(candidates) == 1 and isinstance(candidates[0].roi, Roi)
    assert candidates[0].keypoints.shape == (17, 3)


def test_no_tiles_when_off_small_enough_found_or_only_big_people(photo) -> None:
    fake = FakeMovenet(min_block_px=40)
    assert len(_finder(fake).find_movenet(photo, 384, 0)) == 0 and len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=10)
    small = photo[::6, ::6]  # 334 px: no bigger than the whole-image pass's input
    _finder(fake).find_movenet(small, 384, 2)
    assert len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=10)  # the whole-image pass sees it; max_people 1 reached
    assert len(_finder(fake, max_people=1).find_movenet(photo, 384, 2)) == 1
    assert len(fake.inputs) == 1
    portrait = np.zeros((1200, 2000, 3), np.uint8)
    portrait[100:1100, 800:1200] = 255  # one person taller than half the picture
    fake = FakeMovenet(min_block_px=10)
    assert len(_finder(fake).find_movenet(portrait, 384, 2)) == 1
    assert len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=10)  # a small person found: there may be more
    assert len(_finder(fake).find_movenet(photo, 384, 2)) == 1
    assert len(fake.inputs) == 5


def test_video_mode_uses_detect_size_without_tiles(photo) -> None:
    fake = FakeMovenet(min_block_px=10)
    found = _finder(fake, detect_size=256, image_tiles=2).find(photo, image_mode=False)
    assert fake.inputs == [(1, 160, 256, 3)] and len(found) == 1


def test_asking_for_more_people_than_one_pass_gives_tiles_on_smaller_photos(photo) -> None:
    medium = photo[::3, ::3]  # 667 px: under twice 384
    fake = FakeMovenet(min_block_px=10)
    _finder(fake, max_people=4).find_movenet(medium, 384, 2)
    assert len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=10)
    _finder(fake, max_people=8).find_movenet(medium, 384, 2)  # more than MoveNet's 6
    assert len(fake.inputs) == 5


def test_a_finer_whole_photo_pass_when_the_photo_is_too_small_for_tiles(photo) -> None:
    medium = photo[::3, ::3]  # 667 px: under twice 384, so no tiles; the block is 53 px tall
    fake = FakeMovenet(min_block_px=40)  # 30 px at 384: missed; 61 px at 768: seen
    assert len(_finder(fake).find_movenet(medium, 384, 2)) == 0 and len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=40)
    people = _finder(fake, image_fine_size=768).find_movenet(medium, 384, 2)
    assert [shape[2] for shape in fake.inputs] == [384, 768] and len(people) == 1
    left, top, right, bottom = people.boxes[0]
    assert (left, top, right, bottom) == pytest.approx((500, 267, 520, 320), abs=4)
    fake = FakeMovenet(min_block_px=10)  # seen twice: one person
    assert len(_finder(fake, image_fine_size=768).find_movenet(medium, 384, 2)) == 1
    assert len(fake.inputs) == 2
    portrait = np.zeros((400, 667, 3), np.uint8)
    portrait[30:370, 250:400] = 255  # one person taller than half the picture: no second look
    fake = FakeMovenet(min_block_px=10)
    assert len(_finder(fake, image_fine_size=768).find_movenet(portrait, 384, 2)) == 1
    assert len(fake.inputs) == 1
    fake = FakeMovenet(min_block_px=40)  # big enough for tiles: tiles, not the finer pass
    _finder(fake, image_fine_size=768).find_movenet(photo, 384, 2)
    assert len(fake.inputs) == 5 and all(shape[2] <= 384 for shape in fake.inputs)
