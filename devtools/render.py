"""Pictures of runs: an exploded view of parts (each part moved away from the centre so the surfaces that
touch other parts show), rendered with Workbench from above or below, and renders joined into a captioned grid."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector
from PIL import Image, ImageDraw, ImageFont

ABOVE = (1.0, -1.4, 0.45)  # view directions, from the objects towards the camera
BELOW = (1.0, -1.4, -0.6)


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


def render_view(scene, objects, path: Path, size=(480, 360), color: str = "RANDOM", direction=ABOVE) -> Path:
    """Render only ``objects`` from a three-quarter view framing them (``ABOVE`` or ``BELOW``); ``color`` is
    Workbench's colour type ('RANDOM': one colour per object, 'OBJECT': each object's colour, 'MATERIAL': the
    materials' viewport colours, 'VERTEX': the active colour attribute)."""
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
    direction = Vector(direction).normalized()
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


def grid(rows: list[list[tuple[Path, str]]], out: Path, caption: str) -> Path:
    """Join renders of one size into a grid, each with its title, and a caption below (pixels as they are)."""
    images = [[(Image.open(path).convert("RGB"), title) for path, title in row] for row in rows]
    width, height = images[0][0][0].size
    font, small = ImageFont.load_default(size=17), ImageFont.load_default(size=15)
    lines = _wrap(caption, small, width * len(images[0]) - 20)
    sheet = Image.new("RGB", (width * len(images[0]), height * len(images) + 10 + 20 * len(lines)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(images):
        for c, (image, title) in enumerate(row):
            sheet.paste(image, (c * width, r * height))
            draw.text((c * width + 10, r * height + 8), title, fill=(20, 20, 20), font=font)
    for i, line in enumerate(lines):
        draw.text((10, height * len(images) + 6 + 20 * i), line, fill=(20, 20, 20), font=small)
    sheet.save(out)
    return out


def _wrap(text: str, font, width: int) -> list[str]:
    lines = [""]
    for word in text.split():
        candidate = f"{lines[-1]} {word}".strip()
        if lines[-1] and font.getlength(candidate) > width:
            lines.append(word)
        else:
            lines[-1] = candidate
    return lines


def _camera(scene):
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera
