"""Area-weighted random points on a triangle mesh (the one sampler of the engine and the benchmark)."""

from __future__ import annotations

import numpy as np

from .meshmath import face_areas


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points uniform over the surface area (float64 (count, 3)) and the face each lies on.

    The faces must have a positive total area. Deterministic for a given generator state: one draw of
    ``count`` values picks the faces, then two more give the barycentric coordinates.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    cumulative = np.cumsum(face_areas(vertices, faces))
    if not len(cumulative) or not cumulative[-1] > 0:
        raise ValueError("the faces have no surface area")
    face = np.minimum(np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right"), len(faces) - 1)
    u, v = rng.random((2, count))
    flip = u + v > 1.0
    u, v = np.where(flip, 1.0 - u, u), np.where(flip, 1.0 - v, v)
    tri = vertices[faces[face]]
    return tri[:, 0] + u[:, None] * (tri[:, 1] - tri[:, 0]) + v[:, None] * (tri[:, 2] - tri[:, 0]), face
