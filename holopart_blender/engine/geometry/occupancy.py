"""Triangles on a grid of cells: the cells they cross and enclose (``CellGrid``), and a closed surface
around any set of them (``voxel_solid``).

The solid is for rebuilt parts (the geometric engine with ``keep_visible`` off): the triangles are sampled
densely, the voxels the samples fall in are filled where they enclose space, and marching cubes returns the
solid's boundary, closed whatever the input (a lone triangle or an open sheet becomes a thin slab). The grid
alone serves the engine's overlap check and ``inside.SurfaceGrid``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import measure

from ...core.meshmath import TOL


def face_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """``(points, face)``: points on the triangles no farther apart than about ``spacing``, each with the
    index of its triangle: every centre, and a regular barycentric lattice (corners included) on every face
    larger than the spacing (deterministic, no random sampling)."""
    tri = vertices[faces]
    points, owner = [tri.mean(1)], [np.arange(len(faces))]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    steps = np.ceil(longest / spacing).astype(np.int64)
    for n in np.unique(steps[steps > 1]):
        i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
        keep = i + j <= n
        bary = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], 1) / n  # (L, 3)
        chosen = np.flatnonzero(steps == n)
        points.append(np.einsum("lk,fkd->fld", bary, tri[chosen]).reshape(-1, 3))
        owner.append(np.repeat(chosen, len(bary)))
    return np.concatenate(points), np.concatenate(owner)


def surface_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float) -> np.ndarray:
    """Points on the triangles no farther apart than about ``spacing``: their corners and ``face_samples``."""
    return np.concatenate([vertices[np.unique(faces)], face_samples(vertices, faces, spacing)[0]])


class CellGrid:
    """A regular grid of cubic cells over a box, ``resolution`` along its longest side, with one empty cell of
    padding all round (so a fill from outside reaches every side)."""

    def __init__(self, low: np.ndarray, high: np.ndarray, resolution: int):
        self.low = np.asarray(low, np.float64)
        extent = np.asarray(high, np.float64) - self.low
        self.size = max(float(extent.max()), TOL.relative) / resolution
        self.shape = np.maximum(np.ceil(extent / self.size - 1e-9).astype(np.int64), 1) + 2

    def __eq__(self, other) -> bool:
        """The same cells (a grid copied, as one sent back from another process is)."""
        return (isinstance(other, CellGrid) and self.size == other.size and np.array_equal(self.low, other.low)
                and np.array_equal(self.shape, other.shape))

    __hash__ = None

    def index(self, points: np.ndarray, clip: bool = True) -> np.ndarray:
        """(N, 3) cell of each point: cell k covers [low + (k-1)·size, low + k·size); with ``clip``, points
        outside the box go to the nearest cell inside it."""
        index = np.floor((points - self.low) / self.size).astype(np.int64) + 1
        return np.clip(index, 1, self.shape - 2) if clip else index

    def _crossed(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The cell of every sample of the triangles, half a cell apart (so no cell they pass is missed)."""
        return self.index(surface_samples(vertices, faces, self.size / 2))

    def touched(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The cells the triangles pass through."""
        grid = np.zeros(self.shape, bool)
        grid[tuple(self._crossed(vertices, faces).T)] = True
        return grid

    def inside(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """The cells strictly inside a closed surface (enclosed by the cells it passes through), as sorted
        flat cell numbers (filled over the surface's own bounding box of cells only)."""
        index = self._crossed(vertices, faces)
        low = index.min(0) - 1
        local = index - low
        touched = np.zeros(local.max(0) + 2, bool)
        touched[tuple(local.T)] = True
        inside = np.argwhere(ndimage.binary_fill_holes(touched) & ~touched) + low
        return np.ravel_multi_index(inside.T, self.shape)


def voxel_solid(vertices: np.ndarray, faces: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The closed boundary of the voxels the triangles touch and the space they enclose.

    ``resolution`` is the number of voxels along the longest side of the triangles' bounding box.
    """
    used = vertices[np.unique(faces)]
    grid = CellGrid(used.min(0), used.max(0), resolution)
    solid = ndimage.binary_fill_holes(grid.touched(vertices, faces))
    verts, tris, _, _ = measure.marching_cubes(np.pad(solid, 1).astype(np.float32), 0.5, allow_degenerate=False)
    verts = (verts - 1.5) * grid.size + grid.low  # cell k covers [low + (k-1)·size, low + k·size): centre k - 0.5
    return verts, tris[:, ::-1].astype(np.int64)  # outward normals
