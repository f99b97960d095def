"""The engine request from plain values (no bpy, so it is tested without Blender).

The operators collect their values (engine, device, weights, the scene's steps/guidance/seed/resolution and
segmentation method) into a dict and hand it here with the worker's engine listing.
"""

from __future__ import annotations

from ..wire.request import JobRequest

ZERO_MEANS_DEFAULT = ("steps", "guidance", "resolution")


def build_request(operation: str, engine: str, values: dict, listing: dict, segmentation_engine: str = "auto",
                  parts=None) -> JobRequest:
    """The request for ``operation`` with ``engine``. ``values`` holds candidate settings (steps, guidance
    and resolution at 0 mean the engine's default and are left out); each engine gets only the settings its
    entry in ``listing`` (the worker's ``engines`` message) names; with 'auto' the engine itself drops those
    of the engine not chosen."""
    wanted = {k: v for k, v in values.items() if not (k in ZERO_MEANS_DEFAULT and not v)}
    available = listing["completion"]
    if engine == "auto":
        known = {s["name"] for info in available.values() for s in info.get("settings", [])}
    else:
        known = {s["name"] for s in available.get(engine, {}).get("settings", [])}
    return JobRequest(operation, engine, {k: v for k, v in wanted.items() if k in known},
                      segmentation_engine=segmentation_engine, parts=parts)
