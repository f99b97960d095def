"""What the extension registers when Blender's own Python has no numpy (some Linux distribution builds,
e.g. Debian's): a sidebar tab and the preferences saying why nothing else is there and what to do.

Blender's official builds bundle numpy, which the Blender side needs to read meshes into arrays; the
extension does not ship it, since a second numpy inside Blender would clash with one that is there.
"""

from __future__ import annotations

import bpy

from .addon import PACKAGE

MESSAGE = (
    "HoloPart needs numpy in Blender's own Python, and this Blender build has none.",
    "Official builds from blender.org include it. On a Linux distribution's build, install",
    "the distribution's numpy for Blender's Python (Debian/Ubuntu: sudo apt install python3-numpy),",
    "or use Blender from blender.org. Then restart Blender. See docs/troubleshooting.md.",
)


def _draw_message(layout) -> None:
    column = layout.column(align=True)
    column.label(text=MESSAGE[0], icon="ERROR")
    for line in MESSAGE[1:]:
        column.label(text=line)


class HoloPartPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    def draw(self, context):
        _draw_message(self.layout)


class VIEW3D_PT_holopart(bpy.types.Panel):
    bl_label = "HoloPart"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HoloPart"

    def draw(self, context):
        _draw_message(self.layout)


CLASSES = (HoloPartPreferences, VIEW3D_PT_holopart)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    print("HoloPart: " + " ".join(MESSAGE))


def unregister():
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
