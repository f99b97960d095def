"""Seeded surface sampling for the metrics and the pictures (the engine's sampler, safe on empty meshes)."""

from __future__ import annotations

import numpy as np

from holopart_blender.core import sampling
from holopart_blender.core.meshmath import face_areas


def seeded_samples(vertices: np.ndarray, faces: np.ndarray, count: int, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points uniform over the surface area, and the face each came from: the engine's
    ``sample_surface`` with a generator made from ``seed``.

    Deterministic for a given mesh, count and seed. A mesh with no area gives its vertices' mean ``count``
    times (a point, not nothing, so distances stay defined).
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    total = float(face_areas(vertices, faces).sum()) if len(faces) else 0.0
    if count <= 0 or not total > 0 or not np.isfinite(total):
        centre = vertices.mean(axis=0) if len(vertices) else np.zeros(3)
        return np.tile(centre, (max(count, 0), 1)), np.zeros(max(count, 0), np.int64)
    return sampling.sample_surface(vertices, faces, count, np.random.default_rng(seed))
