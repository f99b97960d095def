"""The request: what to do with a job (the operation, the engines and their settings).

It travels in ``job.json`` (``jobfolder``) and is built by the Blender side, the command line and the Python
API alike. Settings are plain values; the engines validate them against their own ``Setting`` lists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..core.errors import InputError

OPERATIONS = ("complete", "segment", "amodal")


@dataclass
class JobRequest:
    """What to do with a job: the operation, the engines and their settings."""

    operation: str = "complete"
    engine: str = "auto"
    settings: dict = field(default_factory=dict)
    segmentation_engine: str = "auto"
    segmentation_settings: dict = field(default_factory=dict)
    parts: list[int] | None = None  # labels to complete; None = every label present

    def __post_init__(self):
        if self.operation not in OPERATIONS:
            raise InputError(f"unknown operation '{self.operation}'", f"use one of: {', '.join(OPERATIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "JobRequest":
        known = cls.__dataclass_fields__
        unknown = set(data) - set(known)
        if unknown:
            raise InputError(f"unknown request field(s): {', '.join(sorted(unknown))}", "see docs/protocol.md")
        return cls(**data)
