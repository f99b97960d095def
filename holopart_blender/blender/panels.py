"""The "HoloPart" tab in the 3D View sidebar, and menu entries (Edit Mode face menus, Object menu)."""

from __future__ import annotations

import bpy

from . import job as job_state
from .addon import preferences


class VIEW3D_PT_holopart(bpy.types.Panel):
    bl_label = "HoloPart"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HoloPart"

    def draw(self, context):
        layout = self.layout
        job = job_state.current
        if job is not None:
            layout.progress(factor=job.fraction, text=f"{job.message or job.stage or 'starting'}")
            layout.operator("holopart.cancel", icon="CANCEL")
            return
        if context.mode == "EDIT_MESH":
            layout.operator("holopart.complete_part", icon="MOD_SOLIDIFY")
            row = layout.row(align=True)
            row.operator("holopart.assign_part")
            row.prop(context.scene.holopart, "active_part", text="")
            layout.operator("holopart.new_part", icon="ADD")
        else:
            col = layout.column()
            col.scale_y = 1.5
            col.operator("holopart.complete_all", icon="MOD_EXPLODE")
            layout.operator("holopart.segment", icon="GROUP_VCOL")
        if job_state.last_summary:
            layout.label(text=job_state.last_summary, icon="INFO")


class VIEW3D_PT_holopart_settings(bpy.types.Panel):
    bl_label = "Settings"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HoloPart"
    bl_parent_id = "VIEW3D_PT_holopart"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        settings = context.scene.holopart
        layout.prop(preferences(), "engine")
        for name in ("steps", "guidance", "seed", "resolution", "segmentation_engine"):
            layout.prop(settings, name)


def _edit_mesh_entries(menu, context):
    layout = menu.layout
    layout.separator()
    layout.operator("holopart.complete_part", icon="MOD_SOLIDIFY")
    layout.operator("holopart.new_part")
    layout.operator("holopart.assign_part")


def _face_context_entries(menu, context):
    if context.tool_settings.mesh_select_mode[2]:  # the face section of the context menu
        _edit_mesh_entries(menu, context)


def _object_entries(menu, context):
    layout = menu.layout
    layout.separator()
    layout.operator("holopart.complete_all", icon="MOD_EXPLODE")
    layout.operator("holopart.segment")


CLASSES = (VIEW3D_PT_holopart, VIEW3D_PT_holopart_settings)
MENU_ENTRIES = (
    (bpy.types.VIEW3D_MT_edit_mesh_faces, _edit_mesh_entries),
    (bpy.types.VIEW3D_MT_edit_mesh_context_menu, _face_context_entries),
    (bpy.types.VIEW3D_MT_object, _object_entries),
)
