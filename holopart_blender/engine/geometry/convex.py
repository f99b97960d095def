"""Complete a patch that lies on its own convex hull (an axle, a wheel, a knob) to that hull.

A least-area cap spans each hole by itself: an axle seen at both ends of its wheel comes back as two stubs,
a wheel seen on both faces but not on its tread as two discs. When every visible vertex lies on (or within
``tolerance`` x the hull's width of) the convex hull of the visible surface, the part is convex as far as
anything can be seen, and that hull is the completion that adds the least beyond what is seen: the stubs
are joined into one rod, the discs by the tread.

The patch's own faces stay as they are. Every hull vertex is a patch vertex and none lie where the part is
hidden, so the hidden side of the hull is spanned by rim vertices alone: it is the part of the rims' own
hull that lies on the patch's hull (the rest of the rims' hull, a lid across each rim, lies inside it).
Those facets are added, unless they lie over the patch itself, and whatever is left open between them and
the rims gets least-area caps (``capping``), so the result is closed like any capped patch. When all the
rims lie in one plane (a ball half sunk in a socket), their hull is flat and the flat caps are the hull.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from .capping import Holes, close_holes, find_holes
from .patches import split_manifold

_WORK = 50_000_000  # point-plane tests allowed per check (a check that would need more is sampled or skipped)


class _Hull:
    """The convex hull of points, with the depth of any point below its surface (its distance to the
    nearest facet plane: exact, so a thin strip facet along a faceted cylinder counts like any other)."""

    def __init__(self, points: np.ndarray):
        self.hull = ConvexHull(points)
        self.normals, self.offsets = self.hull.equations[:, :3], self.hull.equations[:, 3]
        # The width over a sample of facet normals (at most a thousand) is a scale for the tolerance, not a
        # measurement: it can only come out a little wide.
        directions = self.normals[:: max(1, len(self.normals) // 1024)]
        self.width = float(np.min(np.ptp(points[self.hull.vertices] @ directions.T, axis=0)))

    def _chunks(self, rows: np.ndarray, per_row: int):
        step = max(1, _WORK // 20 // max(per_row, 1))
        return (rows[i:i + step] for i in range(0, len(rows), step))

    def depth(self, points: np.ndarray) -> np.ndarray:
        return np.concatenate([np.maximum(-np.max(chunk @ self.normals.T + self.offsets, axis=1), 0.0)
                               for chunk in self._chunks(points, len(self.normals))] or [np.zeros(0)])

    def affordable(self, points: int) -> bool:
        return points * len(self.normals) <= _WORK


def convex_hull_of(vertices: np.ndarray, faces: np.ndarray, tolerance: float) -> tuple[_Hull, np.ndarray] | None:
    """``(hull, used)``: the convex hull of the patch's vertices (``used``; the hull's indices point into it)
    when the patch dips nowhere below the hull's surface by more than ``tolerance`` x the hull's width (its
    smallest extent across a facet's normal); None when it does, or when the hull is flat or undefined
    (under four points, or all in a plane)."""
    used = np.unique(faces)
    points = vertices[used]
    if len(points) < 4:
        return None
    try:
        hull = _Hull(points)
    except (QhullError, ValueError):
        return None
    if not hull.width > 0:
        return None
    # Hull vertices lie on it; the other vertices and the face centres are checked (a sample of them when
    # there are more than the work allows), a spread-out batch at a time so that a dent is found early.
    inside = np.ones(len(points), bool)
    inside[hull.hull.vertices] = False
    probe = np.concatenate([points[inside], vertices[faces].mean(axis=1)])
    probe = probe[:: max(1, -(-len(probe) * len(hull.normals) // _WORK))]
    batches = max(1, len(probe) // 1000)
    for batch in range(batches):
        if np.max(hull.depth(probe[batch::batches]), initial=0.0) > tolerance * hull.width:
            return None
    return hull, used


def convex_completion(vertices: np.ndarray, faces: np.ndarray, holes: Holes,
                      tolerance: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The patch closed along its convex hull, or None when it is not convex within ``tolerance`` (or has
    no hole, or its hull adds nothing).

    ``faces`` is a consistently oriented manifold patch (``patches.split_manifold``) and ``holes`` its holes
    (``capping.find_holes``). Returns ``(vertices,
    faces)``: the patch's faces first, unchanged and in order, on copies of its vertices (corner positions
    are kept exactly); the hull facets and the caps come after them.
    """
    if len(holes) == 0 or tolerance <= 0:
        return None
    found = convex_hull_of(vertices, faces, tolerance)
    if found is None:
        return None
    hull, used = found
    # The hidden side of the hull: the facets of the rims' own hull that lie on the patch's hull.
    ring = np.unique(holes.rim)
    try:
        inner = ConvexHull(vertices[ring])
    except (QhullError, ValueError):
        return None  # every rim in one plane: the flat caps already are the hull there
    facets = ring[inner.simplices]
    if not hull.affordable(len(facets)):
        return None
    centres = vertices[facets].mean(axis=1)
    keep = hull.depth(centres) <= tolerance * hull.width
    # Facets lying on the patch itself (a lid over a seen face, rims facing each other across one) are left out.
    corners = vertices[faces]
    keep &= ~_on_patch(centres, corners, tolerance * hull.width)
    added = facets[keep]
    if len(added) == 0:
        return None
    # Wind the facets like the patch: outwards when the patch faces out of its hull, else inwards.
    a, b, c = (vertices[added[:, k]] for k in range(3))
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), inner.equations[keep, :3]) < 0
    centre = vertices[used].mean(axis=0)
    area = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    if np.einsum("ij,ij->", area, corners.mean(axis=1) - centre) < 0:
        flip = ~flip
    added[flip] = added[flip][:, [0, 2, 1]]
    combined, vertex_of = split_manifold(np.concatenate([faces, added]))
    merged = vertices[vertex_of]
    closed_vertices, closed_faces = close_holes(merged, combined, find_holes(merged, combined))
    return closed_vertices, closed_faces


def _on_patch(points: np.ndarray, corners: np.ndarray, distance: float) -> np.ndarray:
    """Whether each point lies on the patch: within ``distance`` of a triangle's plane, over the triangle.

    ``corners`` (F, 3, 3) are the patch's triangles; only those near a point (their centre closer than the
    patch's longest edge) are tried. Where that is more than the work allows, every point counts as on the
    patch (so nothing is added to it).
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    reach = float(np.max(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)))
    tree = cKDTree(corners.mean(axis=1))
    if tree.query_ball_point(points, reach, return_length=True).sum() > _WORK // 20:
        return np.ones(len(points), bool)
    near = tree.query_ball_point(points, reach)
    point = np.repeat(np.arange(len(points)), [len(n) for n in near])
    face = np.fromiter((f for n in near for f in n), np.int64, len(point))
    on = np.zeros(len(points), bool)
    if len(face) == 0:
        return on
    normal = np.cross(b[face] - a[face], c[face] - a[face])
    norm = np.linalg.norm(normal, axis=1)
    p = points[point]
    height = np.abs(np.einsum("ij,ij->i", normal, p - a[face])) / np.maximum(norm, 1e-300)
    # Barycentric signs: p projects into the triangle when it lies on the inner side of all three edges.
    inside = np.ones(len(face), bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross(v[face] - u[face], p - u[face]), normal) >= -1e-12 * norm ** 2
    hit = (height <= distance) & inside & (norm > 0)
    on[point[hit]] = True
    return on
