"""What the extension registers when Blender's own Python has no numpy (some Linux distribution builds,
e.g. Debian's): the preferences with the engine environment's installer, a sidebar tab saying why the
rest is missing, and the way out.

The way out is ``numpy_fallback``: the managed engine environment is a venv of this very Python and has
numpy, so once it is installed the Blender side borrows its numpy and the whole extension registers in
place of this module, at once when the environment is already there, or with the sidebar's button right
after installing it. The extension does not bundle numpy itself: a second numpy inside Blender would clash
with the one official builds include.
"""

from __future__ import annotations

import bpy

from . import numpy_fallback, preferences, session, setup_operators
from .addon import preferences as addon_preferences
from .ui_text import draw_wrapped


def _environment_dirs() -> list:
    return [session.environment_manager(addon_preferences()).env_dir]


def _draw(layout) -> None:
    draw_wrapped(layout, numpy_fallback.MESSAGE, icon="ERROR", width=40)
    state = session.environment_manager(addon_preferences()).state()
    layout.label(text=f"Engine environment: {state.summary()}")
    if state.status == "ready":
        layout.operator(HOLOPART_OT_use_environment_numpy.bl_idname, icon="PLAY")
    else:
        layout.operator("preferences.addon_show", text="Install It in the Preferences",
                        icon="PREFERENCES").module = preferences.PACKAGE


class HOLOPART_OT_use_environment_numpy(bpy.types.Operator):
    """Use the engine environment's numpy and load the whole extension"""

    bl_idname = "holopart.use_environment_numpy"
    bl_label = "Start HoloPart"

    def execute(self, context):
        if numpy_fallback.borrow(_environment_dirs()) is None:
            self.report({"ERROR"}, "HoloPart: the engine environment has no numpy for this Blender's Python; "
                        "install (or repair) it in the extension's preferences")
            return {"CANCELLED"}
        # This operator's own class is unregistered by the switch: do it after the operator has returned.
        bpy.app.timers.register(_switch_to_full, first_interval=0.0)
        return {"FINISHED"}


class VIEW3D_PT_holopart(bpy.types.Panel):
    bl_label = "HoloPart"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HoloPart"

    def draw(self, context):
        _draw(self.layout)


CLASSES = (*preferences.CLASSES, *setup_operators.CLASSES, HOLOPART_OT_use_environment_numpy, VIEW3D_PT_holopart)


def _switch_to_full() -> None:
    """Replace this module's classes with the whole extension (numpy now imports)."""
    from . import registration

    unregister()
    registration.register()
    print(f"HoloPart: using the engine environment's numpy ({numpy_fallback.borrowed_from()})")


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    if numpy_fallback.borrow(_environment_dirs()) is not None:
        _switch_to_full()
        return
    print("HoloPart: " + numpy_fallback.MESSAGE)


def unregister():
    setup_operators.stop_tasks()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
