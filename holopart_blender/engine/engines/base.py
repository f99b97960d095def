"""The interface every completion and segmentation engine implements.

An engine class declares its name, a one-line description, the settings it takes (``Setting``) and the
Python modules it needs. It is built once with validated settings and may then serve many jobs: the worker
keeps instances alive, keyed by ``cache_key``, so a model loads once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from ...core.errors import InputError
from ...core.partjob import CompletedPart, Mesh, PartJob
from ...core.progress import Progress


@dataclass(frozen=True)
class Setting:
    """One engine setting: its name, type, default and help (shown by ``--help`` and the Blender panel)."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None if self.default is None else self.coerce(self.default)
        try:
            if self.type is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                value = value.lower() in ("1", "true", "yes", "on")
            else:
                value = self.type(value)
        except (TypeError, ValueError):
            raise InputError(f"setting '{self.name}' must be of type {self.type.__name__}, got {value!r}",
                             self.help) from None
        if self.choices is not None and value not in self.choices:
            raise InputError(f"setting '{self.name}' must be one of {', '.join(map(str, self.choices))}, got {value!r}",
                             self.help)
        if self.minimum is not None and value < self.minimum:
            raise InputError(f"setting '{self.name}' must be at least {self.minimum}, got {value!r}", self.help)
        if self.maximum is not None and value > self.maximum:
            raise InputError(f"setting '{self.name}' must be at most {self.maximum}, got {value!r}", self.help)
        return value


class Engine:
    """Common part of completion and segmentation engines."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    settings_spec: ClassVar[Sequence[Setting]] = ()
    requires: ClassVar[Sequence[str]] = ()  # importable modules the engine needs

    def __init__(self, settings: dict | None = None):
        self.settings = self.validate_settings(settings or {})

    @classmethod
    def validate_settings(cls, settings: dict) -> dict:
        """Defaults filled in, values type-checked; unknown names are an error (a typo must not pass silently)."""
        spec = {s.name: s for s in cls.settings_spec}
        unknown = sorted(set(settings) - set(spec))
        if unknown:
            raise InputError(f"engine '{cls.name}' has no setting {', '.join(unknown)}",
                             f"its settings are: {', '.join(spec) or 'none'}")
        return {name: s.coerce(settings.get(name, s.default)) for name, s in spec.items()}

    @classmethod
    def availability(cls, settings: dict | None = None) -> tuple[bool, str]:
        """(usable here with these settings, reason if not). Engines with weights extend this."""
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        if missing:
            return False, f"needs the Python package(s) {', '.join(missing)} (install the engine environment)"
        return True, ""

    @classmethod
    def cache_key(cls, settings: dict) -> tuple:
        """Settings that make a loaded instance reusable; by default the instance serves any settings."""
        return ()

    def configure(self, settings: dict) -> None:
        """Apply per-job settings to a cached instance."""
        self.settings = self.validate_settings(settings)


class CompletionEngine(Engine):
    """Turns each labelled surface segment of a job into a complete part."""

    def complete(self, job: PartJob, labels: Sequence[int], progress: Progress) -> list[CompletedPart]:
        raise NotImplementedError


class SegmentationEngine(Engine):
    """Writes one part label per face of a mesh.

    An engine with ``uses_seeds = True`` grows labels the artist marked on a few faces: its method is
    ``segment(mesh, progress, seeds=None)`` with ``seeds`` (F,) int32, -1 on unmarked faces, and
    ``EngineSession.run`` passes the job's face labels as the seeds.
    """

    uses_seeds: ClassVar[bool] = False

    def segment(self, mesh: Mesh, progress: Progress) -> np.ndarray:
        raise NotImplementedError
