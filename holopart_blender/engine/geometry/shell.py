"""Thin parts: how thick a part's walls are where both of their sides are seen (``wall_thickness``), and
the part completed as a shell of that thickness (``solidify``).

Sheet metal, a casing, a drawer's tray or an open cabinet is a thin wall bent around empty space; closing
its holes with least-area caps or its convex hull puts a lid on it. Where such a wall is seen from both
sides (a tray's floor from above and from below, a cover's rim), the distance between the two sides is its
thickness. ``solidify`` gives the whole visible surface that thickness, the way Blender's Solidify modifier
does: an inner copy of the surface, offset against its normals and wound the other way, joined to it along
every rim by a strip, so the result is closed and encloses the wall itself, never the space it bends around.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ...core.meshmath import face_areas, face_cross, face_normals, point_triangle_distance, unit
from .capping import boundary_edges
from .topology import index_ranges
from ...core.sampling import sample_surface

SAMPLES = 20_000  # about this many surface samples measure a part's walls
_DIRECTIONS = unit(np.array([(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)
                             if (x, y, z) != (0, 0, 0)], np.float64))  # 26 buckets of normal direction
OPPOSITE = -0.8  # two samples face opposite ways when their normals' dot product is below this


class Walls:
    """A surface's walls, measured at ``SAMPLES`` points spread evenly over it (a fixed seed: the same
    every run): ``depth`` is, per sample, the distance straight behind it (against its normal) to the
    nearest sample facing the other way, the back of the wall it lies on (inf where none lies within a
    quarter of the surface's size)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.points, owner = sample_surface(vertices, faces, SAMPLES, np.random.default_rng(0))
        self.normals = face_normals(vertices, faces)[owner]
        self._vertices, self._faces, self._owner = vertices, faces, owner
        self.spacing = np.sqrt(float(face_areas(vertices, faces).sum()) / SAMPLES)
        used = vertices[np.unique(faces)]
        self.size = float(np.linalg.norm(np.ptp(used, axis=0)))
        self._backs: dict[int, tuple[np.ndarray, cKDTree]] = {}  # per direction bucket, built on first use
        self._faces_of: tuple | None = None  # trees of the samples and vertices, the vertices' faces: ``away``
        self.depth = self.behind(self.points, self.normals)

    def behind(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Per point with its unit normal, the distance straight behind it to the nearest sample facing the
        other way (inf where none lies within a quarter of the surface's size)."""
        depth = np.full(len(points), np.inf)
        bucket = np.argmax(normals @ _DIRECTIONS.T, axis=1)
        for b in np.unique(bucket):
            mine = np.flatnonzero(bucket == b)
            backs, tree = self._facing_away(b)
            if len(backs) == 0:
                continue
            k = min(4, len(backs))
            _, j = tree.query(points[mine], k=k, distance_upper_bound=0.25 * self.size)
            j = j.reshape(len(mine), k)
            found = j < len(backs)
            other = backs[np.minimum(j, len(backs) - 1)]
            offset = self.points[other] - points[mine][:, None, :]
            n = normals[mine][:, None, :]
            distance = -np.einsum("ijk,ijk->ij", offset, n)
            lateral = np.linalg.norm(offset + distance[..., None] * n, axis=2)
            facing = np.einsum("ijk,ijk->ij", self.normals[other], n) < OPPOSITE
            ok = found & facing & (distance > 0) & (lateral <= np.maximum(distance, 2 * self.spacing))
            depth[mine] = np.where(ok, distance, np.inf).min(axis=1)
        return depth

    def _facing_away(self, bucket: int) -> tuple[np.ndarray, cKDTree]:
        """The samples facing away from direction ``bucket`` and a tree of them, kept for later calls."""
        if bucket not in self._backs:
            backs = np.flatnonzero(self.normals @ _DIRECTIONS[bucket] < -0.5)
            self._backs[bucket] = backs, cKDTree(self.points[backs])
        return self._backs[bucket]

    def thickness(self) -> float:
        """The walls' thickness: the lower quartile of the depths found (0 when none is), the thinnest
        walls' rather than the mean over walls and the far sides of solid pieces."""
        found = self.depth[np.isfinite(self.depth)]
        return float(np.percentile(found, 25)) if len(found) else 0.0

    def two_sided(self, thickness: float) -> float:
        """The share of the surface whose wall's back lies within four times ``thickness``."""
        return float(np.mean(self.depth <= 4 * thickness))

    def away(self, points: np.ndarray, distance: float) -> float:
        """The share of ``points`` farther than ``distance`` from the surface itself, not from its samples.

        A point within ``distance`` of a sample or a vertex is near, and one farther than that plus the
        longest edge from every vertex is far. Any other is measured against the faces that its 8 nearest
        samples lie on (large faces) and those around its 4 nearest vertices (small faces, which may hold
        no sample)."""
        if self._faces_of is None:
            used = np.unique(self._faces)
            corner = np.argsort(self._faces.ravel(), kind="stable")  # the faces' corners, vertex by vertex
            first = np.searchsorted(self._faces.ravel()[corner], used)
            corners = self._vertices[self._faces]
            reach = float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).max())
            self._faces_of = (cKDTree(self.points), cKDTree(self._vertices[used]), corner // 3, first,
                              np.r_[first[1:], len(corner)], reach)
        samples, vertices, face_of_corner, first, last, reach = self._faces_of
        near = samples.query(points, distance_upper_bound=distance)[0] <= distance
        near[~near] = vertices.query(points[~near], distance_upper_bound=distance)[0] <= distance
        todo = np.flatnonzero(~near)
        todo = todo[vertices.query(points[todo], distance_upper_bound=distance + reach)[0] <= distance + reach]
        if len(todo) == 0:
            return float(np.mean(~near))
        sample = samples.query(points[todo], k=min(8, len(self.points)))[1].reshape(len(todo), -1)
        k = min(4, len(first))
        vertex = vertices.query(points[todo], k=k)[1].reshape(-1)
        point = np.concatenate([np.repeat(todo, sample.shape[1]),
                                np.repeat(np.repeat(todo, k), last[vertex] - first[vertex])])
        face = np.concatenate([self._owner[sample.ravel()], face_of_corner[index_ranges(first[vertex], last[vertex])]])
        near[point[point_triangle_distance(points[point], self._vertices[self._faces[face]]) <= distance]] = True
        return float(np.mean(~near))


def solidify(vertices: np.ndarray, faces: np.ndarray, thickness: float,
             walls: Walls | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The patch as a closed shell ``thickness`` thick: ``(vertices, faces)``, the patch's own vertices and
    faces first and unchanged, then an inner copy of every vertex moved ``thickness`` against its normal
    (the area-weighted mean of its faces' normals; with ``walls``, no farther than the back of its wall
    where that is seen), the inner copy of every face wound the other way, and two triangles joining each
    rim edge to its inner copy.

    ``faces`` is a consistently oriented manifold patch (``patches.split_manifold``): the shell is then closed
    and consistently oriented, and encloses the slab behind the surface (positive volume) wherever the
    offset does not fold over itself.
    """
    n = len(vertices)
    normal = np.zeros((n, 3))
    cross = face_cross(vertices, faces)  # twice the area times the unit normal
    for k in range(3):
        np.add.at(normal, faces[:, k], cross)
    normal = unit(normal)
    offset = np.full(n, float(thickness))
    if walls is not None:
        offset = np.minimum(offset, walls.behind(vertices, normal))
    inner = vertices - offset[:, None] * normal
    rim = boundary_edges(faces)
    a, b = rim[:, 0], rim[:, 1]
    strips = np.concatenate([np.stack([b, a, a + n], 1), np.stack([b, a + n, b + n], 1)])
    return (np.concatenate([vertices, inner]),
            np.concatenate([faces, faces[:, ::-1] + n, strips]).astype(np.int64))
