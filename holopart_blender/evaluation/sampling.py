"""Seeded, area-weighted surface sampling shared by the task builder and the metrics."""

from __future__ import annotations

import numpy as np


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area of every triangle."""
    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points uniform over the surface area, and the face each came from.

    Deterministic for a given mesh, count and seed. A mesh with no area gives its vertices' mean ``count``
    times (a point, not nothing, so distances stay defined).
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    area = face_areas(vertices, faces) if len(faces) else np.zeros(0)
    total = float(area.sum())
    if count <= 0 or total <= 0 or not np.isfinite(total):
        centre = vertices.mean(axis=0) if len(vertices) else np.zeros(3)
        return np.tile(centre, (max(count, 0), 1)), np.zeros(max(count, 0), np.int64)
    cdf = np.cumsum(area)
    face = np.minimum(np.searchsorted(cdf, rng.random(count) * cdf[-1], side="right"), len(faces) - 1)
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    tri = vertices[faces[face]]
    points = tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0])
    return points, face
