"""The "HoloPart" tab in the 3D View sidebar, and menu entries (Edit Mode face menus, Object menu)."""

from __future__ import annotations

import bpy

from . import job as job_state, listing, properties, session
from .addon import preferences
from .ui_text import draw_wrapped


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
            layout.operator("holopart.grow_parts", icon="BRUSHES_ALL")
        else:
            col = layout.column()
            col.scale_y = 1.5
            col.operator("holopart.complete_all", icon="MOD_EXPLODE")
            layout.operator("holopart.segment", icon="GROUP_VCOL")
            layout.operator("holopart.grow_parts", icon="BRUSHES_ALL")
        if session.last_summary:
            draw_wrapped(layout, session.last_summary, icon="INFO", width=36)


class VIEW3D_PT_holopart_settings(bpy.types.Panel):
    bl_label = "Settings"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HoloPart"
    bl_parent_id = "VIEW3D_PT_holopart"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        settings, prefs = context.scene.holopart, preferences()
        found = properties.engine_listing()
        if found is None:
            if session.listing_error:
                draw_wrapped(layout, f"The server did not answer: {session.listing_error}", icon="ERROR", width=36)
            elif session.listing_failed:
                layout.label(text="The engine worker did not start (see the engine log)", icon="ERROR")
            else:
                layout.label(text="Starting the engine worker...", icon="TIME")
            return
        if properties.missing_settings(settings, found) and not bpy.app.timers.is_registered(_create_settings):
            bpy.app.timers.register(_create_settings)  # ID properties cannot be written while drawing
        layout.prop(prefs, "engine")
        for engine in listing.candidates(found, "completion", prefs.engine):
            _draw_engine_settings(layout, settings, found, "completion", engine,
                                  heading=prefs.engine == "auto")
        layout.prop(settings, "segmentation_engine")
        _draw_engine_settings(layout, settings, found, "segmentation", settings.segmentation_engine)


def _draw_engine_settings(layout, settings, found, kind, engine, heading=False) -> None:
    """The chosen engine's settings, with its own limits and help (the ID properties carry them)."""
    shown = [s for s in listing.shown_settings(found, kind, engine) if listing.key(engine, s["name"]) in settings]
    if heading and shown:
        layout.label(text=f"{listing.label(engine)}:")
    for s in shown:
        layout.prop(settings, f'["{listing.key(engine, s["name"])}"]', text=listing.label(s["name"]))


def _create_settings() -> None:
    """Timer: create the engine settings' ID properties of every scene (see ``properties.ensure_settings``)."""
    found = properties.engine_listing()
    if found is not None:
        for scene in bpy.data.scenes:
            properties.ensure_settings(scene.holopart, found)
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _edit_mesh_entries(menu, context):
    layout = menu.layout
    layout.separator()
    layout.operator("holopart.complete_part", icon="MOD_SOLIDIFY")
    layout.operator("holopart.new_part")
    layout.operator("holopart.assign_part")
    layout.operator("holopart.grow_parts")


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
