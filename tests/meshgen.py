"""Small real meshes generated for tests (no files needed)."""

from __future__ import annotations

import numpy as np
import trimesh


def grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n×n vertex height-field sheet with 2·(n-1)² triangles (n=1001 gives 2M faces)."""
    u = np.linspace(-1.0, 1.0, n)
    x, y = np.meshgrid(u, u, indexing="ij")
    z = 0.1 * np.sin(3 * x) * np.cos(3 * y)
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    i = np.arange(n - 1)
    a = (i[:, None] * n + i[None, :]).reshape(-1)
    faces = np.concatenate([np.stack([a, a + n, a + 1], 1), np.stack([a + 1, a + n, a + n + 1], 1)])
    return vertices, faces


def two_boxes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two touching boxes as one mesh, with one label per box."""
    a = trimesh.creation.box((1, 1, 1))
    b = trimesh.creation.box((0.5, 0.5, 2.0))
    b.apply_translation((0.0, 0.0, 1.2))
    vertices = np.concatenate([a.vertices, b.vertices])
    faces = np.concatenate([a.faces, b.faces + len(a.vertices)])
    labels = np.concatenate([np.zeros(len(a.faces), np.int32), np.ones(len(b.faces), np.int32)])
    return vertices, faces, labels


def rod(length: float = 2.0, radius: float = 0.1, rings: int = 21, sections: int = 24) -> trimesh.Trimesh:
    """A closed cylinder along x, its side cut into ``rings - 1`` bands (so it can be split along its length)."""
    x = np.linspace(-length / 2, length / 2, rings)
    angle = np.linspace(0.0, 2 * np.pi, sections, endpoint=False)
    ring = np.stack([np.zeros(sections), radius * np.cos(angle), radius * np.sin(angle)], 1)
    vertices = np.concatenate([ring + (xi, 0.0, 0.0) for xi in x] + [[[x[0], 0, 0], [x[-1], 0, 0]]])
    j = np.arange(sections)
    k = (j + 1) % sections
    side = [np.concatenate([np.stack([i * sections + j, (i + 1) * sections + k, (i + 1) * sections + j], 1),
                            np.stack([i * sections + j, i * sections + k, (i + 1) * sections + k], 1)])
            for i in range(rings - 1)]
    first, last = len(vertices) - 2, len(vertices) - 1
    ends = [np.stack([np.full(sections, first), k, j], 1),
            np.stack([np.full(sections, last), (rings - 1) * sections + j, (rings - 1) * sections + k], 1)]
    return trimesh.Trimesh(vertices, np.concatenate(side + ends), process=False)


def prism(outline: list[tuple[float, float]], triangles: list[tuple[int, int, int]], depth: float = 1.0,
          edge: float = 0.1) -> trimesh.Trimesh:
    """A closed prism of the polygon ``outline`` (counter-clockwise; ``triangles`` are its triangulation)
    from z = 0 to ``depth``, its faces cut into triangles no longer than ``edge`` (so a part of it can be
    hidden with a ragged rim, as a real one is)."""
    solid = trimesh.creation.extrude_triangulation(np.asarray(outline, float), np.asarray(triangles), depth)
    vertices, faces = trimesh.remesh.subdivide_to_size(solid.vertices, solid.faces, edge)
    return trimesh.Trimesh(vertices, faces, process=False)


L_OUTLINE = [(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)]  # an arm along x and a post up y
L_TRIANGLES = [(0, 1, 2), (0, 2, 3), (0, 3, 5), (3, 4, 5)]
U_OUTLINE = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]  # two prongs up y, a gap between
U_TRIANGLES = [(0, 1, 4), (1, 2, 4), (4, 2, 3), (0, 4, 5), (0, 5, 7), (5, 6, 7)]


def in_polygon(points: np.ndarray, outline: list[tuple[float, float]], depth: float = 1.0) -> np.ndarray:
    """Whether each point lies inside the prism of ``outline`` (even-odd rule across its edges)."""
    x, y, z = points.T
    inside = np.zeros(len(points), bool)
    for (x0, y0), (x1, y1) in zip(outline, outline[1:] + outline[:1]):
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            inside ^= crosses & (x < x0 + (y - y0) * (x1 - x0) / (y1 - y0))
    return inside & (z > 0) & (z < depth)
