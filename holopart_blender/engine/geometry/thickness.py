"""Local thickness of a closed surface at each face: a cheap shape diameter function on a voxel grid.

The surface is voxelised (``resolution`` cells along its longest side) and filled; the Euclidean distance
transform then gives, at every solid cell, the radius of the largest ball about it that stays inside. A
face's thickness is twice the largest such radius met along its inward normal, sampled at ``samples``
depths up to ``reach`` of the object's size and stopping where the ray leaves the solid. Parts that meet
without a concave crease (a thin leg on a thick body, a rod in a sleeve) still differ in thickness. Open
surfaces or faces on sheets thinner than a cell get one or two cells.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .occupancy import CellGrid


def face_thickness(vertices: np.ndarray, faces: np.ndarray, normal: np.ndarray, resolution: int = 96,
                   samples: int = 16, reach: float = 0.5) -> np.ndarray:
    """(F,) thickness per face; ``normal`` holds outward unit face normals."""
    used = vertices[np.unique(faces)]
    grid = CellGrid(used.min(0), used.max(0), resolution)
    solid = ndimage.binary_fill_holes(grid.touched(vertices, faces))
    radius = ndimage.distance_transform_edt(solid).astype(np.float32).reshape(-1)
    # Cell coordinates (cell k covers [k, k + 1)); the grid's padding cells are empty, so rays stop there.
    start = ((vertices[faces].mean(1) - grid.low) / grid.size + 1.0).astype(np.float32)
    step = normal.astype(np.float32)  # depths are in cells too
    upper = np.asarray(grid.shape, np.float32) - 1.0
    stride = np.array([grid.shape[1] * grid.shape[2], grid.shape[2], 1], np.int64)
    best = np.zeros(len(faces), np.float32)
    going = np.arange(len(faces))  # faces whose ray is still inside the solid
    for depth in reach * resolution * (np.arange(1, samples + 1) / samples) ** 2:
        cell = np.clip(start[going] - depth * step[going], 0.0, upper).astype(np.int64)
        value = radius[cell @ stride]
        inside = value > 0
        going = going[inside]
        best[going] = np.maximum(best[going], value[inside])
    return 2.0 * np.maximum(best, 1.0) * grid.size
