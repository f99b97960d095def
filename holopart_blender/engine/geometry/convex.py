"""Close a patch along its convex hull where the part is hidden: a whole convex part (an axle, a wheel, a
knob) to that hull, any other part where the object is solid behind the hull (a plank's underside where a
wheel runs into it).

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

A part that is not convex gets the same facets piece by piece (each connected piece of its patch against
its own hull), but only where the hull closes over hidden space rather than empty space: rays into the
hull from the facet must meet the object's visible surface from behind (``inside``), so the open gap
between a fork's prongs, which rays cross to the other side, is never closed over.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ...core.meshmath import TOL, edge_key, triangle_areas, triangle_cross
from .capping import Holes, close_holes, find_holes
from .inside import SurfaceGrid
from .occupancy import face_samples
from .topology import edges, face_components, position_index

_WORK = 50_000_000  # point-plane tests allowed per check (a check that would need more is sampled or skipped)
_FACET_RAYS = 20_000  # about this many rays test the facets of one part, at most one every two voxels
SOLID_SHARE = 0.9  # the share of a facet's rays that must find the object solid behind it (the grid is coarse)


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


def patch_hull(vertices: np.ndarray, faces: np.ndarray) -> _Hull | None:
    """The convex hull of the patch's vertices, or None when it is flat or undefined (under four points, or
    all in a plane)."""
    points = vertices[np.unique(faces)]
    if len(points) < 4:
        return None
    try:
        hull = _Hull(points)
    except (QhullError, ValueError):
        return None
    return hull if hull.width > 0 else None


def lies_on(hull: _Hull, vertices: np.ndarray, faces: np.ndarray, tolerance: float) -> bool:
    """Whether the patch (whose ``patch_hull`` this is) dips nowhere below the hull's surface by more than
    ``tolerance`` x the hull's width (its smallest extent across a facet's normal)."""
    points = vertices[np.unique(faces)]
    # Hull vertices lie on it; the other vertices and the face centres are checked (a sample of them when
    # there are more than the work allows), a spread-out batch at a time so that a dent is found early.
    inside = np.ones(len(points), bool)
    inside[hull.hull.vertices] = False
    probe = np.concatenate([points[inside], vertices[faces].mean(axis=1)])
    probe = probe[:: max(1, -(-len(probe) * len(hull.normals) // _WORK))]
    batches = max(1, len(probe) // 1000)
    return all(np.max(hull.depth(probe[batch::batches]), initial=0.0) <= tolerance * hull.width
               for batch in range(batches))


def convex_completion(vertices: np.ndarray, faces: np.ndarray, holes: Holes, tolerance: float,
                      solid: SurfaceGrid | None = None) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """The patch closed along its convex hull: ``(vertices, faces, whole)``, or None when the hull adds
    nothing (no hole, ``tolerance`` 0, rims that lie on no hull, or no ``solid`` for a part that is not
    convex).

    ``whole`` is True when the patch is convex within ``tolerance`` and completed to its hull (module
    docstring). Otherwise, given the object's surface (``solid``), each piece of the patch (a connected
    part of it) gets the facets of its rims' hull that lie on its own hull and where the object is solid
    behind them (``hidden_facets``): the flat underside and sides of a plank hidden where a wheel runs
    into it, rather than a cap that follows the wheel's curve. The rest is capped as usual.

    ``faces`` is a consistently oriented manifold patch (``patches.split_manifold``) and ``holes`` its holes
    (``capping.find_holes``). The patch's faces come first, unchanged and in order, on copies of its
    vertices (corner positions are kept exactly); the hull facets and the caps come after them.
    """
    if len(holes) == 0 or tolerance <= 0:
        return None
    ring = np.unique(holes.rim)
    hull = patch_hull(vertices, faces)
    if hull is None:
        return None  # flat or under four points: the flat caps are its hull
    whole = lies_on(hull, vertices, faces, tolerance)
    if whole:
        # Every hull vertex is seen: the hidden side is spanned by all the rims together.
        added = [hidden_facets(vertices, faces, ring, hull, tolerance)]
    elif solid is not None:
        added = []
        for mine in _pieces(vertices, faces):
            own = hull if len(mine) == len(faces) else patch_hull(vertices, mine)
            if own is not None:  # a flat piece's caps are its hull
                added.append(hidden_facets(vertices, mine, np.intersect1d(ring, mine), own, tolerance, solid))
    else:
        return None
    added = _fitting(faces, np.concatenate(added)) if any(len(a) for a in added) else []
    if len(added) == 0:
        return None
    # The facets meet the rims at vertices, not always along edges (rim vertices that lie inside a hull
    # facet are no hull vertices): the gaps between them become holes of their own and get flat caps.
    combined = np.concatenate([faces, added])
    closed_vertices, closed_faces = close_holes(vertices, combined, find_holes(vertices, combined,
                                                                                added_from=len(faces), reuse=holes))
    return closed_vertices.copy(), closed_faces, whole


def _pieces(vertices: np.ndarray, faces: np.ndarray) -> list[np.ndarray]:
    """The faces of each connected piece of the patch, vertices at one position counting as one (the copies
    ``split_manifold`` made)."""
    piece = face_components(faces, len(vertices))
    if piece.max() > 0:
        piece = face_components(position_index(vertices)[faces], len(vertices))
    return [faces[piece == k] for k in range(int(piece.max()) + 1)]


def _fitting(faces: np.ndarray, added: np.ndarray) -> np.ndarray:
    """The facets of ``added`` that keep the patch an oriented manifold: none runs along an edge of the
    patch in the direction one of its faces already does. (In an oriented manifold patch an edge between two
    faces runs both ways, so that also keeps facets off every inner edge; a rim edge runs one way only, and
    a facet may close it from the other side.)"""
    n = int(max(faces.max(), added.max())) + 1
    half = edges(faces)
    mine = edges(added)
    taken = np.isin(edge_key(mine[:, 0], mine[:, 1], n), edge_key(half[:, 0], half[:, 1], n))
    return added[~taken.reshape(len(added), 3).any(axis=1)]


def hidden_facets(vertices: np.ndarray, faces: np.ndarray, ring: np.ndarray, hull: _Hull, tolerance: float,
                  solid: SurfaceGrid | None = None) -> np.ndarray:
    """Facets (wound like the patch) of the hull of the rim vertices ``ring`` that lie on ``hull``, the
    hull of the patch ``faces``, and not over the patch itself; with ``solid``, only those behind which the
    object is solid: of the rays into the hull from a lattice on the facet (two voxels apart, or wider
    when the facets would need more than ``_FACET_RAYS``), at least ``SOLID_SHARE`` meet the object's surface
    from behind (``inside.SurfaceGrid``).

    Rim vertices deeper than ``tolerance`` x the hull's width below it do not count (a piece's hull need
    not pass through its rims).
    """
    none = np.zeros((0, 3), np.int64)
    limit = tolerance * hull.width
    if not hull.affordable(len(ring)):
        return none
    ring = ring[hull.depth(vertices[ring]) <= limit]
    try:
        inner = ConvexHull(vertices[ring])
    except (QhullError, ValueError):
        return none  # under four rim vertices, or all in one plane: the flat caps already are the hull there
    facets = ring[inner.simplices]
    if not hull.affordable(len(facets)):
        return none
    centres = vertices[facets].mean(axis=1)
    keep = hull.depth(centres) <= limit
    # Facets lying on the patch itself (a lid over a seen face, rims facing each other across one) are left out.
    corners = vertices[faces]
    keep[keep] = ~_on_patch(centres[keep], corners, limit)
    if solid is not None and keep.any():
        chosen = np.flatnonzero(keep)
        triangles = vertices[facets[chosen]]
        area = triangle_areas(triangles).sum()
        points, facet = _lattice(triangles, max(2.0 * solid.size, np.sqrt(area / _FACET_RAYS)))
        inward = -inner.equations[chosen[facet], :3]
        backed = solid.inside(points, inward)
        share = np.bincount(facet, backed, len(chosen)) / np.bincount(facet, minlength=len(chosen))
        keep[chosen] = share >= SOLID_SHARE
    added = facets[keep]
    # Wind the facets like the patch: outwards when the patch faces out of its hull, else inwards.
    a, b, c = (vertices[added[:, k]] for k in range(3))
    flip = np.einsum("ij,ij->i", np.cross(b - a, c - a), inner.equations[keep, :3]) < 0
    centre = vertices[np.unique(faces)].mean(axis=0)
    area = triangle_cross(corners)
    if np.einsum("ij,ij->", area, corners.mean(axis=1) - centre) < 0:
        flip = ~flip
    added[flip] = added[flip][:, [0, 2, 1]]
    return added


def _lattice(triangles: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """``(points, triangle)``: a barycentric lattice about ``spacing`` apart on each triangle, pulled a
    tenth of the way to its centre (off the edges, which other facets and the rims share)."""
    points, owner = face_samples(triangles.reshape(-1, 3), np.arange(3 * len(triangles)).reshape(-1, 3), spacing)
    centres = triangles.mean(axis=1)
    return 0.9 * points + 0.1 * centres[owner], owner


def _on_patch(points: np.ndarray, corners: np.ndarray, distance: float) -> np.ndarray:
    """Whether each point lies on the patch: within ``distance`` of a triangle's plane, over the triangle.

    ``corners`` (F, 3, 3) are the patch's triangles; only those near a point (their centre closer than the
    patch's longest edge) are tried, and a triangle's edges only for points within ``distance`` of its
    plane. Where that is more than the work allows, every point counts as on the patch (so nothing is added
    to it).
    """
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    reach = float(np.max(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2)))
    tree = cKDTree(corners.mean(axis=1))
    count = tree.query_ball_point(points, reach, return_length=True)
    if count.sum() > _WORK // 20:
        return np.ones(len(points), bool)
    on = np.zeros(len(points), bool)
    if count.sum() == 0:
        return on
    point = np.repeat(np.arange(len(points)), count)
    face = np.fromiter(chain.from_iterable(tree.query_ball_point(points, reach)), np.int64, len(point))
    normal = np.cross(b - a, c - a)
    norm = np.linalg.norm(normal, axis=1)
    height = np.abs(np.einsum("ij,ij->i", normal[face], points[point] - a[face])) / np.maximum(norm, TOL.tiny)[face]
    close = np.flatnonzero((height <= distance) & (norm[face] > 0))
    point, face = point[close], face[close]
    p, n = points[point], normal[face]
    # Barycentric signs: p projects into the triangle when it lies on the inner side of all three edges.
    inside = np.ones(len(face), bool)
    for u, v in ((a, b), (b, c), (c, a)):
        inside &= np.einsum("ij,ij->i", np.cross((v - u)[face], p - u[face]), n) >= (-TOL.relative * norm ** 2)[face]
    on[point[inside]] = True
    return on
