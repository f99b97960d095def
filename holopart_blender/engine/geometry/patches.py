"""Turn any set of triangles into an oriented 2-manifold patch without moving or changing a face.

A visible segment is often not a clean patch: exporters and generators leave edges used by three or more
faces, neighbours wound in opposite directions, duplicated faces and "bow-tie" vertices where two pieces of
surface touch at a point. ``split_manifold`` keeps every face and its corner positions exactly and only
gives corners their own copies of a vertex where the surface is not manifold: faces stay joined across
every edge that exactly two faces share with opposite windings, and are cut apart everywhere else. The
result is a consistently oriented manifold with boundary, which ``capping`` can always close.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ...core.meshmath import edge_key


def _good_pairs(faces: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """Pairs of half-edges (h1, h2), h = 3·face + corner, that form a manifold, consistently wound edge:
    exactly two half-edges of faces in ``alive`` on the undirected edge, running in opposite directions."""
    start = faces.reshape(-1)
    end = faces[:, [1, 2, 0]].reshape(-1)
    half = np.flatnonzero(np.repeat(alive, 3))
    if len(half) == 0:
        return np.zeros((0, 2), np.int64)
    a, b = start[half], end[half]
    n = int(faces.max()) + 1
    key = edge_key(a, b, n, directed=False)
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    boundary = np.r_[True, key_sorted[1:] != key_sorted[:-1], True]
    first = np.flatnonzero(boundary[:-1])
    count = np.diff(np.flatnonzero(boundary))
    pair = first[count == 2]
    h1, h2 = half[order[pair]], half[order[pair + 1]]
    opposite = (start[h1] == end[h2]) & (end[h1] == start[h2])
    return np.stack([h1[opposite], h2[opposite]], 1)


def split_manifold(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(new_faces, vertex_of)``: the same faces, in the same order and winding, on vertices that make
    them a consistently oriented 2-manifold with boundary; new vertex ``k`` is a copy of ``vertex_of[k]``.

    ``faces`` should index welded vertices (coincident corners share one index) so that faces meeting at a
    seam are joined.
    Faces with a repeated corner get corners of their own. Where cutting at the bad edges still leaves an
    edge shared by more than two faces (a fan closing on itself around a cut), the faces on that edge are
    detached entirely and the cut is made again; detaching only removes joins, so one more round is clean.
    """
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    f = len(faces)
    if f == 0:
        return faces.copy(), np.zeros(0, np.int64)
    alive = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    while True:
        pairs = _good_pairs(faces, alive)
        h1, h2 = pairs[:, 0], pairs[:, 1]
        # h1 = (a, b) at corner c1 of face f1; h2 = (b, a) at corner c2 of face f2.
        # Corner a of f1 (h1) joins corner a of f2 (the corner after c2); corner b of f1 joins corner c2 of f2.
        next1 = (h1 // 3) * 3 + (h1 % 3 + 1) % 3
        next2 = (h2 // 3) * 3 + (h2 % 3 + 1) % 3
        rows = np.concatenate([h1, next1])
        cols = np.concatenate([next2, h2])
        graph = sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(3 * f, 3 * f))
        _, corner_vertex = csgraph.connected_components(graph, directed=False)
        # Number the new vertices by first corner so the result does not depend on the graph library's order.
        _, first_corner, inverse = np.unique(corner_vertex, return_index=True, return_inverse=True)
        rank = np.empty(len(first_corner), np.int64)
        rank[np.argsort(first_corner, kind="stable")] = np.arange(len(first_corner))
        new_faces = rank[inverse].reshape(f, 3)
        vertex_of = np.empty(len(first_corner), np.int64)
        vertex_of[rank] = faces.reshape(-1)[first_corner]
        bad = _bad_faces(new_faces) & alive
        if not bad.any():
            return new_faces, vertex_of
        alive &= ~bad


def _bad_faces(faces: np.ndarray) -> np.ndarray:
    """Faces on an edge used more than twice, or twice in the same direction."""
    f = len(faces)
    start = faces.reshape(-1)
    end = faces[:, [1, 2, 0]].reshape(-1)
    n = int(faces.max()) + 1
    directed = edge_key(start, end, n)
    undirected = edge_key(start, end, n, directed=False)
    _, inv_d, cnt_d = np.unique(directed, return_inverse=True, return_counts=True)
    _, inv_u, cnt_u = np.unique(undirected, return_inverse=True, return_counts=True)
    bad_half = (cnt_d[inv_d] > 1) | (cnt_u[inv_u] > 2)
    return bad_half.reshape(f, 3).any(axis=1)
