"""Pictures of runs: an exploded view of parts (each part moved away from the centre so the surfaces that
touch other parts show), rendered with Workbench, and two renders side by side."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector


def world_bounds(objects) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([tuple(o.matrix_world @ Vector(c)) for o in objects for c in o.bound_box])
    return corners.min(axis=0), corners.max(axis=0)


def explode(objects, factor: float) -> dict:
    """Move each object away from the group's centre by ``factor`` times its own offset; returns the undo map."""
    low, high = world_bounds(objects)
    center = (low + high) / 2
    moved = {}
    for obj in objects:
        a, b = world_bounds([obj])
        offset = ((a + b) / 2 - center) * factor
        moved[obj.name] = obj.location.copy()
        obj.location = obj.location + Vector(offset)
    bpy.context.view_layer.update()
    return moved


def restore(moved: dict) -> None:
    for name, location in moved.items():
        bpy.data.objects[name].location = location
    bpy.context.view_layer.update()


def render_view(scene, objects, path: Path, size=(480, 360), color: str = "RANDOM") -> Path:
    """Render only ``objects`` from a fixed three-quarter view framing them; ``color`` is Workbench's
    colour type ('RANDOM': one colour per object, 'OBJECT': each object's colour, 'VERTEX': the active colour
    attribute)."""
    shown = {o.name for o in objects}
    hidden = [o for o in scene.objects if o.type in ("MESH", "CURVE") and o.name not in shown]
    states = {o.name: o.hide_render for o in scene.objects}
    for obj in hidden:
        obj.hide_render = True
    for obj in objects:
        obj.hide_render = False
    low, high = world_bounds(objects)
    center, radius = (low + high) / 2, float(np.linalg.norm(high - low)) / 2
    camera = scene.camera or _camera(scene)
    camera.data.lens, camera.data.sensor_fit = 50, "HORIZONTAL"
    # Far enough for the bounding sphere to fit the narrower (vertical) field of view.
    half_angle = math.atan(math.tan(camera.data.angle_x / 2) * size[1] / size[0])
    direction = Vector((1.0, -1.4, 0.45)).normalized()
    camera.location = Vector(center) + direction * radius * 1.05 / math.sin(half_angle)
    camera.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.9, 0.9, 0.9)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = color
    scene.display.shading.show_cavity = True
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    settings = scene.render.image_settings
    settings.file_format, settings.color_mode, settings.color_depth, settings.compression = "PNG", "RGB", "8", 100
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    for name, state in states.items():
        bpy.data.objects[name].hide_render = state
    return path


def side_by_side(left: Path, right: Path, out: Path) -> Path:
    """Join two renders of the same size into one PNG (pixels as they are: no second colour transform)."""
    images = [bpy.data.images.load(str(p)) for p in (left, right)]
    width, height = images[0].size
    pixels = [np.array(img.pixels[:], np.float32).reshape(height, width, 4) for img in images]
    joined = bpy.data.images.new("holopart_before_after", width * 2, height)
    joined.pixels.foreach_set(np.concatenate(pixels, axis=1).ravel())
    joined.filepath_raw = str(out)
    joined.file_format = "PNG"
    joined.save()
    for img in (*images, joined):
        bpy.data.images.remove(img)
    return out


def _camera(scene):
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera
