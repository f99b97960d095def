"""Close the holes of a surface patch without touching its faces.

A visible segment is its part's surface with holes where the part is hidden (a leg's end inside the table
top, the patch of the top under each leg). ``cap_holes`` adds, for every closed chain of boundary edges, a
fan of triangles from one new apex vertex: each boundary edge gets exactly one new face on its open side, so
a consistently oriented manifold patch becomes a closed surface, and its own faces, vertices and order are
kept as they are. The apex sits where the hole's rim is, lifted along the rim's mean normal to follow
the part's curvature (``bulge``), so a planar contact stays a flat cut and a round rim gets a dome.
"""

from __future__ import annotations

import numpy as np

from .topology import components, edges


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (a, b) that no face matches with (b, a), counted with multiplicity."""
    half = edges(faces)
    if len(half) == 0:
        return half
    n = int(faces.max()) + 1
    key = half[:, 0] * n + half[:, 1]
    reverse = half[:, 1] * n + half[:, 0]
    keys, inverse, counts = np.unique(np.concatenate([key, reverse]), return_inverse=True, return_counts=True)
    forward_count = np.bincount(inverse[: len(key)], minlength=len(keys))
    backward_count = counts - forward_count
    excess = forward_count - backward_count  # > 0: this many (a, b) edges have no partner
    rows = np.flatnonzero(excess > 0)
    a, b = keys[rows] // n, keys[rows] % n
    return np.repeat(np.stack([a, b], 1), excess[rows], axis=0)


def _loops(rim: np.ndarray) -> np.ndarray:
    """Loop index of each boundary edge: edges chained head to tail into closed loops.

    Where a vertex starts several rim edges (two holes touching at a corner), the edges arriving there are
    paired with those leaving it so that no loop passes the vertex twice: each loop gets its own cap, and
    no cap edge is used twice.
    """
    arriving = np.argsort(rim[:, 1], kind="stable")
    leaving = np.argsort(rim[:, 0], kind="stable")
    successor = np.empty(len(rim), np.int64)
    successor[arriving] = leaving  # balanced rims: the k-th arrival at v pairs with the k-th departure from v
    index = np.arange(len(rim))
    while True:
        loop = components(len(rim), np.stack([index, successor], 1))
        # Edges arriving at the same vertex in the same loop: swapping their successors splits the loop in two.
        order = np.lexsort((index, rim[:, 1], loop))
        repeat = (loop[order][1:] == loop[order][:-1]) & (rim[order, 1][1:] == rim[order, 1][:-1])
        if not repeat.any():
            return loop
        first, second = order[:-1][repeat], order[1:][repeat]
        _, one_per_loop = np.unique(loop[first], return_index=True)  # one split per loop per round
        first, second = first[one_per_loop], second[one_per_loop]
        successor[first], successor[second] = successor[second], successor[first].copy()


def cap_holes(vertices: np.ndarray, faces: np.ndarray, bulge: float = 0.0) -> tuple[np.ndarray, np.ndarray, int]:
    """Vertices and faces with every hole fanned shut; the input faces come first, unchanged.

    Returns ``(vertices, faces, holes)``: the new apex vertices are appended after ``vertices`` and the cap
    faces after ``faces``. ``bulge`` lifts each apex off the rim's plane by that fraction of the rim radius,
    outwards (along the patch's orientation). ``faces`` must index welded vertices.
    """
    rim = boundary_edges(faces)
    if len(rim) == 0:
        return vertices, faces, 0
    hole = _loops(rim)
    holes = int(hole.max()) + 1
    a, b = vertices[rim[:, 0]], vertices[rim[:, 1]]
    length = np.linalg.norm(b - a, axis=1) + 1e-300
    weight = np.bincount(hole, length, holes)
    centre = np.stack([np.bincount(hole, length * (a + b)[:, k] / 2, holes) for k in range(3)], 1) / weight[:, None]
    if bulge:
        # The rim's oriented area vector points along the cap's outward normal (cap faces are (b, a, apex)).
        area = np.cross(b - centre[hole], a - centre[hole])
        normal = np.stack([np.bincount(hole, area[:, k], holes) for k in range(3)], 1)
        norm = np.linalg.norm(normal, axis=1, keepdims=True)
        normal = np.divide(normal, norm, out=np.zeros_like(normal), where=norm > 0)
        radius = np.bincount(hole, length * np.linalg.norm((a + b) / 2 - centre[hole], axis=1), holes) / weight
        centre = centre + bulge * radius[:, None] * normal
    apex = len(vertices) + hole
    cap = np.stack([rim[:, 1], rim[:, 0], apex], 1)
    return np.concatenate([vertices, centre]), np.concatenate([faces, cap]), holes
