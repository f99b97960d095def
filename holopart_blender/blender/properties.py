"""Per-scene HoloPart settings (``scene.holopart``) and the engine choices, all read from the worker's engine
listing (``listing``): the segmentation method, the active part, and each engine's settings as ID
properties ``"<engine>.<setting>"`` with the engine's own default, limits and help."""

from __future__ import annotations

import bpy

from ..core.errors import EngineError
from . import listing, session
from .addon import preferences

PYTHON_TYPES = {"int": int, "float": float, "bool": bool}  # the listing's type names of the shown settings
_items: dict[str, list] = {}  # enum items by kind, kept alive while Blender holds their strings


def engine_listing() -> dict | None:
    """The worker's engine listing, or while a worker starts (the UI never waits for it) the last one a
    worker sent; None before any worker has answered."""
    try:
        found = session.engines_if_ready(preferences())
    except EngineError:
        found = None
    return found if found is not None else session.known_engines


def _enum_items(kind: str, first=()) -> list:
    found = engine_listing()
    if found is None:
        entries = [("auto", "Auto", "The engine list is not there yet: the engine worker is starting")]
    else:
        entries = listing.choices(found, "segmentation" if kind == "segmentation" else "completion")
    _items[kind] = [(name, text, help, listing.number(name)) for name, text, help in (*first, *entries)]
    return _items[kind]


def completion_items(self, context) -> list:
    """The completion engines, 'auto' first (the preferences' engine choice)."""
    return _enum_items("completion")


def operator_engine_items(self, context) -> list:
    """'PREFERENCES', then the completion engines (an operator's engine choice)."""
    return _enum_items("operator", ((listing.PREFERENCES, "Preferences", "The engine chosen in the add-on preferences"),))


def segmentation_items(self, context) -> list:
    """The segmentation engines that find parts on their own."""
    return _enum_items("segmentation")


class HoloPartSettings(bpy.types.PropertyGroup):
    segmentation_engine: bpy.props.EnumProperty(name="Segmentation", items=segmentation_items,
                                                default=listing.number("auto"),
                                                description="How Segment and Complete All find the parts")
    active_part: bpy.props.IntProperty(name="Active Part", default=0, min=-1,
                                       description="The part that Assign to Part puts the selected faces in")


def stored_settings(settings) -> dict:
    """The engine settings stored on ``scene.holopart`` (``"<engine>.<setting>"`` -> value)."""
    return {k: settings[k] for k in settings.keys() if "." in k}


def missing_settings(settings, found: dict) -> bool:
    """Whether a shown engine setting has no ID property on ``settings`` yet."""
    return any(listing.key(engine, s["name"]) not in settings
               for kind in ("completion", "segmentation") for engine in found[kind]
               for s in listing.shown_settings(found, kind, engine))


def ensure_settings(settings, found: dict) -> None:
    """Create the ID property of every shown engine setting that is missing, with the engine's default,
    limits and help (a value already set, e.g. by a script, is kept, in the setting's type)."""
    for kind in ("completion", "segmentation"):
        for engine in found[kind]:
            for s in listing.shown_settings(found, kind, engine):
                name, kind_of = listing.key(engine, s["name"]), PYTHON_TYPES[s["type"]]
                default = kind_of(s["default"])
                value = kind_of(settings.get(name, default))
                if name in settings and type(settings[name]) is not kind_of:
                    del settings[name]  # an ID property keeps its type: a script's 1 for a float becomes 1.0
                settings[name] = value
                limits = {} if s["type"] == "bool" else \
                    {k: s[v] for k, v in (("min", "minimum"), ("max", "maximum")) if s.get(v) is not None}
                settings.id_properties_ui(name).update(default=default, description=s["help"], **limits)


CLASSES = (HoloPartSettings,)


def register_properties():
    bpy.types.Scene.holopart = bpy.props.PointerProperty(type=HoloPartSettings)


def unregister_properties():
    del bpy.types.Scene.holopart
