"""The engine request from plain values and the worker's engine listing (no bpy, so it is tested without
Blender). The operators collect the values: the engines chosen, the scene's stored engine settings and the
preferences' device and weights."""

from __future__ import annotations

from ..wire.request import JobRequest
from .listing import candidates, engine_settings


def build_request(operation: str, engine: str, segmentation_engine: str, stored: dict, preference_values: dict,
                  listing: dict, parts=None) -> JobRequest:
    """The request for ``operation``. ``stored`` maps ``"<engine>.<setting>"`` to the scene's values (see
    ``listing.engine_settings``); ``preference_values`` (device, weights) go to the engines that take them."""
    settings = engine_settings(listing, "completion", engine, stored)
    known = {s["name"] for name in candidates(listing, "completion", engine)
             for s in listing["completion"].get(name, {}).get("settings", [])}
    settings.update({k: v for k, v in preference_values.items() if k in known})
    return JobRequest(operation, engine, settings, segmentation_engine=segmentation_engine,
                      segmentation_settings=engine_settings(listing, "segmentation", segmentation_engine, stored),
                      parts=parts)
