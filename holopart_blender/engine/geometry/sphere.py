"""Complete a patch that is part of a sphere, seen past its widest circle, to the whole sphere.

A ball or dome half sunk in its neighbour (a robot's head on its body, a foot in its leg) is seen down to
just beyond its equator. Its convex hull closes it with a flat disc across the rim, and so does a cap; but
a surface seen to curve back in under its widest circle does not end there: what is hidden is the rest of
the sphere, inside the neighbour. When the visible surface lies on one sphere (within ``FIT`` of its
radius), each region of the sphere farther from the visible surface than two of its edge lengths is
hidden. Where the rim around every such region reaches past the sphere's centre (by ``PAST`` of the
radius: the surface is seen to curve back in) and the region lies inside the object (rays out of it meet
the visible surface from behind, ``inside``), it is added as a piece of a geodesic sphere, joined to its
rim by a band (``capping``); any other hole is capped as usual. A dome seen only down to its widest
circle or less keeps its hull or caps, and so does a ball in the open: nothing seen says it goes on.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ...core.meshmath import edge_key, face_areas, triangle_cross
from ...core.sampling import sample_surface
from .capping import Holes, boundary_edges, close_holes, find_holes
from .convex import SOLID_SHARE
from .inside import SurfaceGrid
from .topology import face_adjacency, components

FIT = 0.005  # the visible surface lies on the sphere: 90% of it within this share of the radius
PAST = 0.05  # the rim around each hidden region reaches this share of the radius past the centre
_SAMPLES = 20_000  # area-weighted points that fit the sphere and find what it hides
_MAX_LEVEL = 6  # geodesic subdivisions at most (81,920 faces on the whole sphere)
_UNPINCH = 4  # rounds of dropping faces where hidden regions touch at a corner


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(centre, radius, residual)``: the algebraic least-squares sphere through ``points`` and the 90th
    percentile of their distances from it over its radius (``inf`` when no sphere fits)."""
    design = np.c_[2.0 * points, np.ones(len(points))]
    solution, *_ = np.linalg.lstsq(design, np.einsum("ij,ij->i", points, points), rcond=None)
    centre = solution[:3]
    squared = solution[3] + centre @ centre
    if not squared > 0:
        return centre, 0.0, np.inf
    radius = float(np.sqrt(squared))
    residual = np.abs(np.linalg.norm(points - centre, axis=1) - radius)
    return centre, radius, float(np.percentile(residual, 90) / radius)


def geodesic_sphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit icosahedron subdivided ``level`` times (each triangle into four), wound outwards."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    vertices = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                         [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                      [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                      [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    for _ in range(level):
        n = len(vertices)
        a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
        keys = np.stack([edge_key(a, b, n, directed=False), edge_key(b, c, n, directed=False),
                         edge_key(c, a, n, directed=False)], 1)
        unique, middle = np.unique(keys, return_inverse=True)
        middle = middle.reshape(-1, 3) + n
        points = vertices[unique // n] + vertices[unique % n]
        vertices = np.concatenate([vertices, points / np.linalg.norm(points, axis=1, keepdims=True)])
        ab, bc, ca = middle[:, 0], middle[:, 1], middle[:, 2]
        faces = np.concatenate([np.stack(f, 1) for f in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return vertices, faces


def sphere_completion(vertices: np.ndarray, faces: np.ndarray, holes: Holes,
                      solid: SurfaceGrid | None) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The patch completed to its sphere: ``(vertices, faces, radius)``, or None where the module's
    conditions do not hold. The patch's faces come first, unchanged and in order; the sphere's pieces,
    the bands joining them to their rims and the caps of any other hole come after them."""
    if len(holes) == 0 or solid is None:
        return None
    points, _ = sample_surface(vertices, faces, _SAMPLES, np.random.default_rng(0))
    centre, radius, residual = fit_sphere(points)
    if residual > FIT or float(np.ptp(points, axis=0).max()) < 1.6 * radius:
        return None  # not on a sphere, or not across its width (a widest circle spans 1.63 r on some axis)
    rim = vertices[holes.rim]
    edge = float(np.median(np.linalg.norm(rim - vertices[np.r_[holes.rim[1:], holes.rim[:1]]], axis=1)))
    level = int(np.clip(np.ceil(np.log2(1.05 * radius / max(edge, 1e-12))), 1, _MAX_LEVEL))
    unit, sphere = geodesic_sphere(level)
    ball = centre + radius * unit
    step = 1.05 * radius / 2 ** level  # the sphere's edge length
    gap = max(2.0 * step, 2.0 * edge)
    face_centre = ball[sphere].mean(1)
    distance, _ = cKDTree(points).query(face_centre, distance_upper_bound=gap)
    hidden = np.flatnonzero(~np.isfinite(distance))
    # Faces at a corner where two hidden regions touch are dropped, so each region's rim is one loop.
    for _ in range(_UNPINCH):
        pinched = np.bincount(boundary_edges(sphere[hidden]).ravel(), minlength=len(unit)) > 2
        if not pinched.any():
            break
        hidden = hidden[~pinched[sphere[hidden]].any(1)]
    else:
        return None
    if len(hidden) == 0:
        return None
    pairs, _ = face_adjacency(sphere[hidden])
    region = components(len(hidden), pairs)
    for r in range(region.max() + 1):
        direction = unit[np.unique(sphere[hidden[region == r]])]
        axis = direction.mean(0)
        axis /= np.linalg.norm(axis)
        # The rim around the region (the patch's rim vertices next to it) must reach past the centre.
        near = cKDTree(centre + radius * direction).query(rim, distance_upper_bound=gap + 2.0 * step)[0]
        if not np.isfinite(near).any() or float(np.max((rim[np.isfinite(near)] - centre) @ axis)) < PAST * radius:
            return None  # a hemisphere or more hidden: nothing seen says the sphere goes on
    outward = face_centre[hidden] - centre
    if solid.inside(face_centre[hidden], outward / np.linalg.norm(outward, axis=1, keepdims=True)).mean() < SOLID_SHARE:
        return None
    # Wind the sphere like the patch: outwards when the patch faces away from the centre.
    added = sphere[hidden]
    if np.einsum("ij,ij->", triangle_cross(vertices[faces]), vertices[faces].mean(1) - centre) < 0:
        added = added[:, [0, 2, 1]]
    used, added = np.unique(added, return_inverse=True)
    combined_vertices = np.concatenate([vertices, ball[used]])
    combined = np.concatenate([faces, added.reshape(-1, 3) + len(vertices)])
    joined = find_holes(combined_vertices, combined)
    # Every sphere piece's rim must be joined to a rim of the patch by a band (``capping._bands``: the
    # first rim's cap holds both), never capped over on its own.
    n = len(vertices)
    for k in range(len(joined)):
        loop = joined.loop(k)
        if loop.min() < n:
            continue
        holding = np.unique(joined.cap_hole[np.isin(joined.cap, loop).any(1)])
        if not any(((joined.cap_of(h) >= 0) & (joined.cap_of(h) < n)).any() for h in holding):
            return None
    closed_vertices, closed_faces = close_holes(combined_vertices, combined, joined)
    if face_areas(closed_vertices, closed_faces[len(faces):]).sum() <= 0:
        return None
    return closed_vertices.copy(), closed_faces, radius
