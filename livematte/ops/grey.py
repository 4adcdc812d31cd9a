"""Grey photos: tell a black-and-white picture from a colour one.

Every photo reaches the pipeline as 8-bit BGR (``outputs.read_image``: a grey JPEG, a 16-bit
grey PNG and a colour photo alike), so a grey photo is one whose three channels are equal,
give or take the chroma noise of JPEG compression and a faint toning.  The matting networks
behave differently on such photos (issue 13, BENCHMARKS.md "Grey photos"): the embedded
segmenter loses people it sees in colour, which the stages that lean on its evidence (RVM's
working size) must allow for.

Pure function on a small copy of the image: well under a millisecond.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["is_grey"]

#: Largest difference between a pixel's channels (levels of 255) that still counts as grey.
#: A grey image saved as a colour JPEG decodes with equal channels; chroma noise of a few
#: levels (a camera's black-and-white mode) stays under it; the toned black-and-white p3m
#: portrait p_514ca06a differs by 3 everywhere; the least colourful colour portrait of p3m
#: has half of its pixels above 6 (p_bac3c1ff).
TOLERANCE = 6
#: Share of pixels allowed above ``TOLERANCE`` (a coloured logo or watermark, noise).
OUTLIERS = 0.01
#: Long side of the copy that is tested: shrinking averages chroma noise away.
TEST_SIDE = 128


def is_grey(image: np.ndarray, tolerance: int = TOLERANCE) -> bool:
    """True when an HxWx3 uint8 image is black and white (its channels equal nearly everywhere).

    Args:
        image: HxWx3 uint8 (any channel order).
        tolerance: largest channel difference (0..255) a grey pixel may have.
    """
    height, width = image.shape[:2]
    scale = TEST_SIDE / max(height, width, 1)
    small = image
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    spread = cv2.subtract(small.max(axis=2), small.min(axis=2))
    return float(np.count_nonzero(spread > tolerance)) <= OUTLIERS * spread.size
