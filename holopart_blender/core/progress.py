"""Progress reporting and cancellation, shared by every engine.

An engine receives a ``Progress`` and calls it with a fraction in [0, 1] of *its own* work; ``span`` maps
that onto a sub-range of the whole job so nested stages report one monotone figure. Every call also checks
for a cancel request and raises ``Cancelled`` if one arrived, so calling it often is how engines stay
cancellable.
"""

from __future__ import annotations

import threading
from typing import Callable

from .errors import Cancelled

ProgressCallback = Callable[[str, float, str], None]  # (stage, fraction, message)


class Progress:
    def __init__(self, callback: ProgressCallback | None = None, cancel: threading.Event | None = None,
                 start: float = 0.0, end: float = 1.0, stage: str = "work"):
        self._callback = callback
        self.cancel_event = cancel if cancel is not None else threading.Event()
        self._start, self._end, self.stage = start, end, stage

    def __call__(self, fraction: float, message: str = "", stage: str | None = None) -> None:
        self.check()
        if self._callback is not None:
            f = min(max(float(fraction), 0.0), 1.0)
            self._callback(stage or self.stage, self._start + (self._end - self._start) * f, message)

    def check(self) -> None:
        """Raise ``Cancelled`` if a cancel was requested."""
        if self.cancel_event.is_set():
            raise Cancelled()

    def span(self, start: float, end: float, stage: str | None = None) -> "Progress":
        """A child reporting onto [start, end] of this one's range."""
        a = self._start + (self._end - self._start) * start
        b = self._start + (self._end - self._start) * end
        return Progress(self._callback, self.cancel_event, a, b, stage or self.stage)
