"""Writing a report to standard output, where a full disk or a closed output is said in
words (an :class:`OutputError`) rather than surfacing as a crash."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from checks.errors import Eks504Error

logger = logging.getLogger(__name__)


class OutputError(Eks504Error):
    """Standard output is closed or refuses the report; an empty message means there is
    nothing to say (the reader went away, as ``| head`` does)."""


_HINT = "Check where the output goes: a full disk, a closed descriptor, a device."


def closed_stdout() -> OutputError:
    return OutputError(
        "Standard output is closed, so the report has nowhere to go.",
        "Run eks504 with its output on a terminal, a file or a pipe.",
    )


def write_report(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` and flush it, so that a failure shows here and not at exit."""
    out = stream if stream is not None else sys.stdout
    if out is None:
        raise closed_stdout()
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        # The reader stopped reading (`| head`): nothing is lost that anyone wants.
        _discard_pending(out)
        raise OutputError("", "") from None
    except OSError as exc:
        _discard_pending(out)
        raise OutputError(
            f"Cannot write the report to standard output: {exc.strerror or exc}.", _HINT
        ) from exc


def _discard_pending(stream: TextIO) -> None:
    """Point the stream's descriptor at the null device, so that the text still buffered
    does not fail again, with a traceback, when the interpreter flushes it at exit."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (OSError, ValueError):
        return  # not a file descriptor (a StringIO): nothing is flushed at exit
    try:
        os.dup2(null, fd)
    except OSError:
        logger.debug("could not silence the failed output", exc_info=True)
    finally:
        os.close(null)
