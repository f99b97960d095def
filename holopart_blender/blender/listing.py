"""The worker's engine listing (its ``engines`` message) as the Blender side reads it, without bpy.

The listing is the one owner of what the extension knows about engines: their names, descriptions and
availability, and each setting's default, limits and help. From it come the engine choices of the
operators, the preferences and the scene, and the settings the panel shows for the chosen engine (stored
on ``scene.holopart`` as ID properties named ``"<engine>.<setting>"``).
"""

from __future__ import annotations

import zlib

PREFERENCES = "PREFERENCES"  # the operators' choice: the engine chosen in the preferences
# Settings the add-on preferences own (device, weights) rather than the panel.
PREFERENCE_SETTINGS = ("weights", "revision", "allow_network", "device")
SHOWN_TYPES = ("int", "float", "bool")


def label(name: str) -> str:
    return name.replace("_", " ").title()


def number(name: str) -> int:
    """A stable enum number per engine name (a dynamic enum stores the number, not the name)."""
    return {PREFERENCES: 0, "auto": 1}.get(name, zlib.crc32(name.encode()) & 0x3FFFFFFF | 2)


def choices(listing: dict, kind: str) -> list[tuple[str, str, str]]:
    """(name, label, description) of the engines to choose from: for completion 'auto' first, for
    segmentation the engines that find parts on their own (not those that grow the job's labels)."""
    out = []
    if kind == "completion":
        tried = ", ".join(label(n) for n in listing.get("auto_completion", ()))
        out.append(("auto", "Auto", f"The first engine that can run here of: {tried}"))
    for name, info in listing[kind].items():
        if info.get("uses_seeds"):
            continue
        text = info.get("description", "")
        text = text[:1].upper() + text[1:]
        if not info.get("available", False):
            text += f" (not available here: {info.get('reason', '')})"
        out.append((name, label(name), text))
    return out


def candidates(listing: dict, kind: str, engine: str) -> list[str]:
    """The engines a choice can run: 'auto' completion tries the listing's ``auto_completion`` in order."""
    if kind == "completion" and engine == "auto":
        return list(listing.get("auto_completion", ()))
    return [engine]


def shown_settings(listing: dict, kind: str, engine: str) -> list[dict]:
    """The engine's settings the panel shows: numbers and switches the preferences do not own."""
    info = listing[kind].get(engine, {})
    return [s for s in info.get("settings", []) if s["type"] in SHOWN_TYPES and s["name"] not in PREFERENCE_SETTINGS]


def key(engine: str, setting: str) -> str:
    """The ID property on ``scene.holopart`` that holds ``setting`` of ``engine``."""
    return f"{engine}.{setting}"


def engine_settings(listing: dict, kind: str, engine: str, stored: dict) -> dict:
    """The settings to send for ``engine``: the stored values that differ from the engine's default (the
    engine fills in the rest). For 'auto' the first engine tried wins a name two engines share."""
    out = {}
    for name in candidates(listing, kind, engine):
        for setting in shown_settings(listing, kind, name):
            value = stored.get(key(name, setting["name"]), setting["default"])
            if value != setting["default"]:
                out.setdefault(setting["name"], value)
    return out
