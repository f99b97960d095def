"""Engines chosen by name.

The registry maps a name to ``module:Class`` inside this package and imports the module only when the
engine is asked for, so listing engines never imports torch.
"""

from __future__ import annotations

import importlib

from ...core.errors import InputError
from .base import CompletionEngine, Engine, SegmentationEngine, Setting

COMPLETION_ENGINES = {
    "holopart": "holopart:HoloPartCompletion",
    "geometric": "geometric:GeometricCompletion",
    "visible": "baselines:VisibleSegment",
    "hull": "baselines:ConvexHull",
}
SEGMENTATION_ENGINES = {
    "auto": "segmentation:AutoSegmentation",
    "loose_parts": "segmentation:LooseParts",
    "materials": "segmentation:MaterialSlots",
    "spectral": "segmentation:SpectralSegmentation",
    "seeded": "segmentation:SeededSegmentation",
}
# What "auto" completion tries, in order: the first engine that is available here.
AUTO_COMPLETION_ORDER = ("holopart", "geometric")

__all__ = [
    "CompletionEngine", "SegmentationEngine", "Engine", "Setting",
    "completion_engine", "segmentation_engine", "resolve_completion_engine",
    "COMPLETION_ENGINES", "SEGMENTATION_ENGINES",
]


def _load(table: dict, kind: str, name: str) -> type[Engine]:
    if name not in table:
        raise InputError(f"unknown {kind} engine '{name}'", f"choose one of: {', '.join(sorted(table))}")
    module_name, class_name = table[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


def completion_engine(name: str) -> type[CompletionEngine]:
    return _load(COMPLETION_ENGINES, "completion", name)


def segmentation_engine(name: str) -> type[SegmentationEngine]:
    return _load(SEGMENTATION_ENGINES, "segmentation", name)


def resolve_completion_engine(name: str, settings: dict | None = None) -> str:
    """Turn 'auto' into a concrete engine name (HoloPart when it can run here, else geometric)."""
    if name != "auto":
        return name
    for candidate in AUTO_COMPLETION_ORDER:
        cls = completion_engine(candidate)
        ok, _ = cls.availability(settings)
        if ok:
            return candidate
    return AUTO_COMPLETION_ORDER[-1]
