"""Connectivity of triangle meshes: welding, edges, the face graph and connected components.

GLB and OBJ meshes split vertices along UV and normal seams, so a mesh that is one piece of surface is
several pieces of index connectivity. Everything here first welds coincident vertices (``weld``) and works
on the welded indices; the caller's vertex positions and face order are never changed.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from ...core.meshmath import compact_labels, edge_key, face_areas


def weld(vertices: np.ndarray, faces: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """Faces re-indexed so that vertices closer than ``tolerance`` x the bounding-box diagonal share an index.

    Positions are snapped to a grid of that spacing, so two vertices on either side of a grid line stay
    apart; seams written by exporters repeat positions exactly, which this always merges. ``tolerance`` 0
    joins only bit-identical positions (what an engine that must keep every corner where it is needs).
    """
    if len(vertices) == 0:
        return faces.copy()
    if tolerance == 0:
        keys = np.ascontiguousarray(vertices, np.float64).view(np.dtype((np.void, 24))).reshape(-1)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return first[inverse.reshape(-1)][faces]
    extent = float(np.linalg.norm(vertices.max(0) - vertices.min(0))) or 1.0
    keys = np.round((vertices - vertices.min(0)) / (extent * tolerance)).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    # Each welded vertex takes the index of its first copy, so indices stay valid for ``vertices``.
    return first[inverse.reshape(-1)][faces]


def position_index(vertices: np.ndarray) -> np.ndarray:
    """Per vertex, the rank of its position among the distinct positions in lexicographic order: the
    inverse of ``np.unique(vertices, axis=0)``, without its slow sort of rows."""
    order = np.lexsort(vertices.T[::-1])
    ranked = vertices[order]
    new = np.r_[True, np.any(ranked[1:] != ranked[:-1], axis=1)]
    index = np.empty(len(vertices), np.int64)
    index[order] = np.cumsum(new) - 1
    return index


def index_ranges(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """The indices ``start[k]:stop[k]`` for every k, one after the other."""
    sizes = stop - start
    return np.repeat(start - np.r_[0, np.cumsum(sizes)[:-1]], sizes) + np.arange(int(sizes.sum()))


def edges(faces: np.ndarray) -> np.ndarray:
    """Directed half-edges (3F, 2): face f contributes rows 3f, 3f+1, 3f+2 = (a,b), (b,c), (c,a)."""
    return faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)


def face_adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of faces sharing an edge (E, 2) and that edge's two vertices (E, 2).

    A non-manifold edge (used by three or more faces) links its faces in a chain, so every face on it is
    reachable; duplicate faces are linked like any other.
    """
    half = np.sort(edges(faces), axis=1)
    order = np.lexsort((half[:, 1], half[:, 0]))
    sorted_half = half[order]
    same = np.all(sorted_half[1:] == sorted_half[:-1], axis=1)
    first, second = order[:-1][same], order[1:][same]
    return np.stack([first // 3, second // 3], 1), sorted_half[1:][same]


def components(num_nodes: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component index of each node of the graph with edges ``pairs`` (E, 2)."""
    graph = sparse.coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])),
                              shape=(num_nodes, num_nodes))
    return csgraph.connected_components(graph, directed=False)[1]


def face_components(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Component of each face, faces being connected when they share a (welded) vertex."""
    ids = np.arange(len(faces))
    pairs = np.stack([np.repeat(ids, 3), faces.reshape(-1) + len(faces)], 1)
    return components(len(faces) + num_vertices, pairs)[: len(faces)]


def is_closed(faces: np.ndarray) -> bool:
    """Every directed edge is matched by exactly one opposite edge: closed, manifold and consistently oriented."""
    half = edges(faces)
    if len(half) == 0:
        return False
    n = int(half.max()) + 1
    forward = edge_key(half[:, 0], half[:, 1], n)
    backward = edge_key(half[:, 1], half[:, 0], n)
    unique, counts = np.unique(forward, return_counts=True)
    if counts.max() > 1:
        return False
    return bool(np.isin(backward, unique, assume_unique=False).all())


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """The volume a closed surface encloses, positive when its faces are wound to face outwards (the
    divergence theorem; meaningless for an open surface)."""
    tri = np.asarray(vertices, np.float64)[faces]
    tri = tri - tri.reshape(-1, 3).mean(axis=0)  # about the surface's own centre: less cancellation
    return float(np.einsum("ij,ij->", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0)


def is_watertight(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Closed, manifold, consistently oriented (``is_closed``) and enclosing a positive volume."""
    return is_closed(faces) and signed_volume(vertices, faces) > 0


def loose_parts(vertices: np.ndarray, faces: np.ndarray, min_fraction: float = 0.01) -> np.ndarray:
    """One label per face: its connected piece of surface (after welding), numbered by decreasing area.

    Pieces under ``min_fraction`` of the total area (screws, decals, stray triangles) join the nearest
    larger piece, measured between their vertices and face centres.
    """
    from scipy.spatial import cKDTree

    faces = weld(vertices, faces)
    piece = face_components(faces, len(vertices))
    area = face_areas(vertices, faces)
    piece_area = np.bincount(piece, area)
    big = piece_area >= min_fraction * area.sum()
    if not big.any():
        big[np.argmax(piece_area)] = True
    if not big.all():
        big_face = big[piece]
        points = np.concatenate([vertices[faces[big_face]].reshape(-1, 3), vertices[faces[big_face]].mean(1)])
        owner = np.concatenate([np.repeat(piece[big_face], 3), piece[big_face]])
        small_face = np.flatnonzero(~big_face)
        queries = np.concatenate([vertices[faces[small_face]].reshape(-1, 3), vertices[faces[small_face]].mean(1)])
        query_piece = np.concatenate([np.repeat(piece[small_face], 3), piece[small_face]])
        distance, nearest = cKDTree(points).query(queries)
        # Per small piece, the big piece owning the closest point (ties: lowest query index, deterministic).
        order = np.lexsort((distance, query_piece))
        first = order[np.r_[True, query_piece[order[1:]] != query_piece[order[:-1]]]]
        target = np.arange(len(piece_area))
        target[query_piece[first]] = owner[nearest[first]]
        piece = target[piece]
    ids, inverse = compact_labels(piece)
    total = np.bincount(inverse, area)
    rank = np.empty(len(ids), np.int64)
    rank[np.lexsort((ids, -total))] = np.arange(len(ids))
    return rank[inverse].reshape(-1)
