"""Structured errors shared by the engines, the worker and the command line.

Every failure that reaches a user carries a machine-readable ``kind``, a one-line ``message`` and a
``hint`` saying what to do about it. The worker sends these three fields as its ``error`` message.
"""

from __future__ import annotations


class EngineError(Exception):
    """A failure with a kind, a message and a hint for the user."""

    kind = "engine_error"

    def __init__(self, message: str, hint: str = "", kind: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if kind is not None:
            self.kind = kind

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "hint": self.hint}


class InputError(EngineError):
    """The job's input is unusable (empty mesh, wrong label count, unreadable file, ...)."""

    kind = "bad_input"


class WeightsError(EngineError):
    """Model weights are missing, incomplete, of the wrong shape or of an unsafe format."""

    kind = "weights"


class Cancelled(EngineError):
    """The running job was cancelled on request."""

    kind = "cancelled"

    def __init__(self, message: str = "cancelled by request", hint: str = ""):
        super().__init__(message, hint)


class OutOfMemory(EngineError):
    """Out of memory even at the smallest batch."""

    kind = "out_of_memory"


def is_out_of_memory(exc: BaseException) -> bool:
    """True for host or accelerator out-of-memory errors, without importing torch."""
    if isinstance(exc, (MemoryError, OutOfMemory)):
        return True
    name = type(exc).__name__
    if name == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError / torch.OutOfMemoryError
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "MPS backend out of memory" in text)
