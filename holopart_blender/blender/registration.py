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


def unregister():
    session.shutdown_worker()
    setup_operators.stop_tasks()
    for menu, draw in reversed(panels.MENU_ENTRIES):
        menu.remove(draw)
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
