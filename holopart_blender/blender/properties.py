"""Per-scene HoloPart settings (``scene.holopart``): what the sidebar panel shows next to the engine choice."""

from __future__ import annotations

import bpy

SEGMENTATION_ITEMS = [
    ("auto", "Auto", "Loose parts when the mesh has two or more significant pieces, otherwise Shape"),
    ("loose_parts", "Loose Parts", "One part per connected piece; tiny pieces join their nearest neighbour"),
    ("materials", "Materials", "One part per material slot"),
    ("spectral", "Shape", "Spectral cuts along concave creases, for one-piece meshes (scans, generated models)"),
]


class HoloPartSettings(bpy.types.PropertyGroup):
    steps: bpy.props.IntProperty(name="Steps", default=0, min=0, max=500,
                                 description="Denoising steps (HoloPart); 0 uses the engine's default")
    guidance: bpy.props.FloatProperty(name="Guidance", default=0.0, min=0.0, max=30.0,
                                      description="Classifier-free guidance scale (HoloPart); 0 uses the default")
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0, description="Random seed (same seed, same result)")
    resolution: bpy.props.IntProperty(name="Resolution", default=0, min=0, max=1024,
                                      description="Output grid resolution; 0 uses the engine's default")
    segmentation_engine: bpy.props.EnumProperty(name="Segmentation", items=SEGMENTATION_ITEMS, default="auto",
                                                description="How Segment and Complete All find the parts")
    active_part: bpy.props.IntProperty(name="Active Part", default=0, min=-1,
                                       description="The part that Assign to Part puts the selected faces in")


CLASSES = (HoloPartSettings,)


def register_properties():
    bpy.types.Scene.holopart = bpy.props.PointerProperty(type=HoloPartSettings)


def unregister_properties():
    del bpy.types.Scene.holopart
