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
        """A request from its JSON form; wrong fields or types raise InputError."""
        if not isinstance(data, dict):
            raise InputError(f"the request is a {type(data).__name__}, not an object", "see docs/protocol.md")
        known = cls.__dataclass_fields__
        unknown = set(data) - set(known)
        if unknown:
            raise InputError(f"unknown request field(s): {', '.join(sorted(unknown))}", "see docs/protocol.md")
        for name, kind in (("operation", str), ("engine", str), ("settings", dict), ("segmentation_engine", str),
                           ("segmentation_settings", dict)):
            if name in data and not isinstance(data[name], kind):
                raise InputError(f"request field '{name}' must be a {'string' if kind is str else 'object'}",
                                 "see docs/protocol.md")
        parts = data.get("parts")
        if parts is not None and not (isinstance(parts, list)
                                      and all(isinstance(x, int) and not isinstance(x, bool) for x in parts)):
            raise InputError("request field 'parts' must be a list of integer labels or null", "see docs/protocol.md")
        return cls(**data)
