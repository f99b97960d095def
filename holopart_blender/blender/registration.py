"""Registers the Blender side: classes, the scene settings, and the menu entries (which also make the
operators findable with F3 search). ``holopart_blender.register``/``unregister`` call these."""

from __future__ import annotations

import bpy

from . import operators, panels, preferences, properties, session, setup_operators

CLASSES = (*properties.CLASSES, *preferences.CLASSES, *setup_operators.CLASSES, *operators.CLASSES, *panels.CLASSES)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    for menu, draw in panels.MENU_ENTRIES:
        menu.append(draw)
    if not bpy.app.background:  # start the worker now, so the first job does not wait for it
        bpy.app.timers.register(_warm_up, first_interval=0.5)


def _warm_up() -> None:
    from .addon import preferences

    try:
        session.engines_if_ready(preferences())
    except Exception as exc:  # noqa: BLE001 - a warm-up must never break registration; the panel says why
        print(f"HoloPart: the engine worker could not be started: {exc}")


def unregister():
    session.shutdown_worker()
    setup_operators.stop_tasks()
    for menu, draw in reversed(panels.MENU_ENTRIES):
        menu.remove(draw)
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
