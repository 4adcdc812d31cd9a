"""The server's ``Engine`` used directly, as a Ray Serve matting replica uses it."""

from __future__ import annotations

import numpy as np
import pytest
from server_helpers import NO_LIMIT, fake_alpha, fake_process

from livematte.server.engine import Engine, MattingResult, ServerSettings

SETTINGS = ServerSettings(keyless="on", warmup=False, rate=NO_LIMIT, workers=1)


def _picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_matte_is_the_pipelines_matte_foreground_and_analysis():
    engine = Engine("default", SETTINGS, process=fake_process)
    try:
        bgr = _picture()
        plain = engine.matte(bgr)
        assert plain.analysis is None
        np.testing.assert_array_equal(plain.alpha, fake_alpha(48, 64))
        assert plain.foreground is not None and plain.foreground.shape == bgr.shape
        analysed = engine.matte(bgr, analysis=True)
        assert analysed.analysis is not None and analysed.analysis["person_num"] == 1
    finally:
        engine.close()


def test_matte_without_a_matte_is_an_error():
    def no_person(bgr: np.ndarray, analysis: bool) -> MattingResult:
        return MattingResult(None, None)  # type: ignore[arg-type]

    engine = Engine("default", SETTINGS, process=no_person)
    try:
        with pytest.raises(RuntimeError, match="made no matte"):
            engine.matte(_picture())
    finally:
        engine.close()
