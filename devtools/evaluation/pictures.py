"""Side-by-side pictures of parts (ground truth beside a result), drawn without a GPU or Blender.

Each mesh is sampled densely and the samples are splatted into a z-buffer from a fixed three-quarter view
(+y up), coloured per part and shaded by their face normals, in an exploded view (each part pushed away from
the object's centre) so that the surfaces hidden in the assembly show. Good enough to see at a glance what an
engine added; the Blender renders of the user guide come from ``blender/render.py``.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from holopart_blender.core.meshmath import TOL, face_areas, triangle_cross, unit

from .sampling import seeded_samples

PALETTE = np.array([
    (230, 97, 74), (74, 144, 226), (126, 200, 80), (240, 190, 60), (160, 110, 220), (60, 200, 190),
    (235, 120, 180), (150, 150, 150), (200, 140, 80), (90, 110, 200), (180, 220, 90), (220, 80, 120),
], np.float64) / 255.0
VIEW = np.array([1.0, 0.7, 1.3]) / np.linalg.norm([1.0, 0.7, 1.3])  # from the object towards the camera
LIGHT = np.array([0.3, 1.0, 0.6]) / np.linalg.norm([0.3, 1.0, 0.6])


def _camera() -> np.ndarray:
    """Rows: screen right, screen up, towards the camera."""
    right = np.cross([0.0, 1.0, 0.0], VIEW)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(VIEW, right), VIEW])


def exploded_offsets(parts: list[tuple[np.ndarray, np.ndarray]], explode: float = 0.4) -> np.ndarray:
    """Per part, ``explode`` times its box centre's offset from the origin (zero for an empty part)."""
    out = np.zeros((len(parts), 3))
    for i, (vertices, faces) in enumerate(parts):
        if len(faces):
            used = np.asarray(vertices)[np.unique(faces)]
            out[i] = explode * 0.5 * (used.min(axis=0) + used.max(axis=0))
    return out


def render_parts(parts: list[tuple[np.ndarray, np.ndarray]], offsets: np.ndarray, bounds: float,
                 size: int = 400, points: int = 300_000) -> Image.Image:
    """One picture of meshes (vertices, faces), part i moved by ``offsets[i]``, the view spanning
    [-bounds, bounds] on the screen."""
    image = np.ones((size, size, 3))
    depth = np.full((size, size), -np.inf)
    camera = _camera()
    total_area = [max(float(face_areas(np.asarray(v, np.float64), np.asarray(f)).sum()), TOL.relative)
                  for v, f in parts]
    for index, (vertices, faces) in enumerate(parts):
        if len(faces) == 0:
            continue
        count = max(2000, int(points * total_area[index] / sum(total_area)))
        samples, face = seeded_samples(vertices, faces, count, seed=index)
        tri = np.asarray(vertices, np.float64)[np.asarray(faces)[face]]
        normal = unit(triangle_cross(tri))
        shade = 0.35 + 0.65 * np.abs(normal @ LIGHT)
        colour = PALETTE[index % len(PALETTE)] * shade[:, None]
        screen = (samples + offsets[index]) @ camera.T
        px = np.floor((screen[:, 0] / bounds + 1.0) * 0.5 * (size - 1)).astype(np.int64)
        py = np.floor((1.0 - (screen[:, 1] / bounds + 1.0) * 0.5) * (size - 1)).astype(np.int64)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):  # 2x2 splats close the gaps between samples
            x, y = px + dx, py + dy
            keep = (x >= 0) & (x < size) & (y >= 0) & (y < size)
            x, y, z, c = x[keep], y[keep], screen[keep, 2], colour[keep]
            order = np.argsort(z, kind="stable")  # farthest first: nearer samples overwrite them
            x, y, z, c = x[order], y[order], z[order], c[order]
            nearer = z > depth[y, x]
            depth[y[nearer], x[nearer]] = z[nearer]
            image[y[nearer], x[nearer]] = c[nearer]
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))



def side_by_side(panels: list[tuple[str, list[tuple[np.ndarray, np.ndarray]]]], path: str | os.PathLike,
                 size: int = 400) -> None:
    """Write a PNG with one titled panel per (title, parts). Part i of every panel is the same part: it gets
    the same colour and the same exploded offset, both taken from the first panel (the ground truth), which
    also sets the framing."""
    reference = panels[0][1]
    offsets = exploded_offsets(reference)
    corners = [np.asarray(v)[np.unique(f)] + o for (v, f), o in zip(reference, offsets) if len(f)]
    screen = np.concatenate(corners) @ _camera()[:2].T
    bounds = 1.05 * float(np.abs(screen).max())
    images = [render_parts(parts, offsets, bounds, size) for _, parts in panels]
    out = Image.new("RGB", (size * len(images), size + 24), "white")
    draw = ImageDraw.Draw(out)
    for i, ((title, _), image) in enumerate(zip(panels, images)):
        out.paste(image, (i * size, 24))
        draw.text((i * size + 8, 6), title, fill=(0, 0, 0))
    out.save(path)
