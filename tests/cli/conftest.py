"""Fixtures shared by the command tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a pipeline (and so a model) is built: checks must come first."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("livematte.api.build_pipeline", refuse)
