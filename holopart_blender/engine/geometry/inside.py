"""Whether a point lies inside the whole object, looking along a ray: the first visible surface the ray
meets is met from behind.

The input of a completion is what can be seen of the object: its outer surface, each face wound to face
out. From a point inside the object, every ray leaves through that surface, so the first face it meets
faces away from the ray; from a point outside, the first face met faces the ray (or none is met at all).
That is what tells a hidden region (inside the object, behind what is seen) from empty space that merely
lies in a concavity of one part.

``SurfaceGrid`` keeps the surface as a sparse voxel grid of summed face normals and marches rays through it
half a voxel at a time. A voxel whose normals say nothing about the side (they cancel out, as in a sheet
thinner than a voxel, or lie across the ray, as where it grazes a wall) is passed through: the next one
decides.
"""

from __future__ import annotations

import threading

import numpy as np

from ...core.meshmath import triangle_cross

from .occupancy import CellGrid, face_samples

RESOLUTION = 128  # voxels along the object's longest side
_RAYS = 400_000  # rays marched together at most (more are done in batches)


class SurfaceGrid:
    """The object's visible surface (``faces``, every labelled group of them turned to face away from its
    own centre, so an inside-out part counts like any other) on a sparse voxel grid, made when it is first
    asked (a job whose parts never need it does not pay for it)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, groups: np.ndarray, resolution: int = RESOLUTION):
        vertices = np.asarray(vertices, np.float64)
        used = vertices[np.unique(faces)]
        self.grid = CellGrid(used.min(0), used.max(0), resolution)
        self.size, self.cells = self.grid.size, self.grid.shape
        self._surface = (vertices, faces, groups)
        self.keys = None
        self._building = threading.Lock()  # parts are checked on several threads

    def build(self) -> None:
        """Make the grid now, if not made yet: before the parts go to forked processes, each of which
        would otherwise make its own."""
        with self._building:
            if self.keys is None:
                self._build()

    def _build(self) -> None:
        vertices, faces, groups = self._surface
        tri = vertices[faces]
        normal = triangle_cross(tri)
        length = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
        for group in np.unique(groups):
            mine = groups == group
            centre = vertices[np.unique(faces[mine])].mean(0)
            if np.einsum("ij,ij->", normal[mine] * length[mine], tri[mine].mean(1) - centre) < 0:
                normal[mine] *= -1
        points, face = face_samples(vertices, faces, self.size)
        keys, inverse = np.unique(np.ravel_multi_index(self.grid.index(points).T, self.cells), return_inverse=True)
        self.keys = keys
        self.normals = np.stack([np.bincount(inverse, normal[face, k], len(keys)) for k in range(3)], 1)
        self.counts = np.bincount(inverse, minlength=len(keys))
        self._surface = None

    def inside(self, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Per ray (``points`` + t x unit ``directions``, from 1.5 voxels out): whether the first surface
        it meets faces away from it. A ray that meets nothing before it leaves the grid is outside."""
        self.build()
        points, directions = np.asarray(points, np.float64), np.asarray(directions, np.float64)
        return np.concatenate([self._march(points[i:i + _RAYS], directions[i:i + _RAYS])
                               for i in range(0, len(points), _RAYS)] or [np.zeros(0, bool)])

    def _march(self, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
        answer = np.zeros(len(points), bool)
        live = np.arange(len(points))
        t, reach = 1.5 * self.size, self.size * float(np.linalg.norm(self.cells))
        while len(live) and t < reach:
            cells = self.grid.index(points[live] + t * directions[live], clip=False)
            within = np.all((cells >= 0) & (cells < self.cells), axis=1)
            live, cells = live[within], cells[within]
            key = np.ravel_multi_index(cells.T, self.cells)
            at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
            met = np.flatnonzero(self.keys[at] == key)
            # The voxel's normals, summed, point clearly along the ray (met from behind) or against it.
            along = np.einsum("ij,ij->i", self.normals[at[met]], directions[live[met]])
            clear = np.abs(along) > 0.3 * self.counts[at[met]]
            answer[live[met[clear]]] = along[clear] > 0
            live = np.delete(live, met[clear])
            t += 0.5 * self.size
        return answer
