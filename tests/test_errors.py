"""Every livematte error is also the builtin a caller would expect, with its own exit code."""

from __future__ import annotations

import pytest

from livematte.errors import (
    ConfigError,
    DownloadError,
    LivematteError,
    ModelError,
    ProviderError,
    SinkError,
    SourceError,
)


@pytest.mark.parametrize(
    ("error", "builtins"),
    [
        (ConfigError, (ValueError,)),
        (SourceError, (OSError,)),
        (SinkError, (OSError,)),
        (ModelError, (LookupError,)),
        (ProviderError, (ModelError, LookupError)),
        (DownloadError, (ModelError, LookupError, ConnectionError, OSError)),
    ],
)
def test_errors_subclass_builtins(error, builtins):
    assert issubclass(error, LivematteError)
    for base in builtins:
        assert issubclass(error, base)
    with pytest.raises(builtins[0]):
        raise error("boom")


def test_exit_codes_are_nonzero_and_distinct_per_family():
    codes = {e: e.exit_code for e in (ConfigError, SourceError, SinkError, ModelError)}
    assert all(code > 0 for code in codes.values())
    assert len(set(codes.values())) == len(codes)
    assert ProviderError.exit_code == DownloadError.exit_code == ModelError.exit_code


def test_message_is_kept():
    assert str(ModelError("unknown model 'x'")) == "unknown model 'x'"
