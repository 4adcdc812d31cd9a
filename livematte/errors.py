"""Errors raised by livematte.

Every error subclasses ``LivematteError`` (so callers can catch all of ours at once) and the
builtin it corresponds to (so callers that only know Python's own hierarchy still catch it).
The CLI prints ``str(error)`` as one line and exits non-zero; the HTTP API maps ``code``.
"""

from __future__ import annotations

import sys


class LivematteError(Exception):
    """Base of every error livematte raises on purpose."""

    #: Exit status the CLI uses for this error.
    exit_code: int = 1


class ConfigError(LivematteError, ValueError):
    """A preset, TOML file or override is invalid; the message names the key path."""

    exit_code = 2


class SourceError(LivematteError, OSError):
    """An input (file, camera, stream) is missing, unreadable or not media."""

    exit_code = 3


class SinkError(LivematteError, OSError):
    """An output cannot be written (bad path, unsupported format, no backend)."""

    exit_code = 4


class ModelError(LivematteError, LookupError):
    """A model is unknown, missing, corrupt (checksum) or cannot run on the asked provider."""

    exit_code = 5


class ProviderError(ModelError):
    """An execution provider that was asked for is not available (never a silent CPU fallback)."""


class DownloadError(ModelError, ConnectionError):
    """A model download failed (offline, HTTP error, checksum mismatch)."""


class TooManyPixelsError(SourceError):
    """An image has more pixels than the limit (decompression-bomb guard), found from its
    header before any pixel is decoded."""


def stderr_notice(message: str) -> None:
    """The default notice (a warning that is not an error): ``livematte: MESSAGE`` on stderr."""
    print(f"livematte: {message}", file=sys.stderr)
