"""Seeded segmentation: grow a few artist-marked faces per part over the whole mesh (a random walker).

The artist marks some faces of each part with its label (>= 0; -1 = unseeded). Every other face takes the
label whose seeds a random walk on the face graph, started at that face, most probably reaches first
(Grady's random walker): for each label the probability solves the graph Laplace equation with the seeds
as hard constraints (1 on that label's seeds, 0 on the others), one sparse linear system per label with
one factorisation shared by all.

Edges join faces sharing an edge (after welding split vertices). The weight of an edge is its length x
exp(-bend x f / sigma), with bend = 1 - cos(angle between the two faces' normals, each averaged over
``smooth`` rings of neighbours so that remesh staircases cancel out) and f = 1 on concave edges,
``convex_weight`` on convex ones: a walk crosses flat and convex surface freely and concave creases, where
parts meet, hardly at all. Concave is told from convex after each connected piece is wound outwards.
Parts also differ in thickness where they meet without a crease (a drawer in its box, a leg in a sleeve):
with ``thickness`` > 0 each weight is further multiplied by exp(-|log(t_a / t_b)| / thickness), t being the
faces' local thickness (``thickness.py``: twice the largest inscribed ball along the inward normal).

Connected pieces with no seed are not reached by any walk: each such piece takes, whole, the label of the
seed face nearest (by face centre, straight-line distance) to any of its faces. Seed faces keep their
labels; ties go to the smallest label. The result depends on the input only.

The sparse factorisation grows faster than the face count, so a mesh of more than ``max_nodes`` faces is
walked on about ``max_nodes / 2`` patches instead: connected faces sharing a cell of a grid and the
dominant axis of their smoothed normal (as the spectral segmenter groups them), each seed face a patch of
its own; links between patches add up the weights of the face edges between them, and every face takes
its patch's label. At a million faces a patch is a few faces across, so part boundaries move by that much.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg
from scipy.spatial import cKDTree

from .spectral import _outward, _patches
from ...core.meshmath import face_areas, face_normals
from .thickness import face_thickness
from .topology import components, face_adjacency, weld


def grow_seeds(vertices: np.ndarray, faces: np.ndarray, seeds: np.ndarray, sigma: float = 0.01,
               convex_weight: float = 0.05, smooth: int = 6, max_nodes: int = 100_000,
               thickness: float = 0.3) -> np.ndarray:
    """One label per face: seed faces keep theirs, every other face gets one of the seed labels.

    ``seeds`` (F,) holds a label >= 0 on seed faces and -1 elsewhere; at least one face must be seeded.
    Meshes of more than ``max_nodes`` faces are walked on patches of faces (see the module doc).
    """
    seeds = np.asarray(seeds, np.int64)
    seeded = seeds >= 0
    if not seeded.any():
        raise ValueError("no seed faces")
    n = len(faces)
    faces = _outward(vertices, weld(vertices, faces))
    pairs, shared = face_adjacency(faces)
    piece = components(n, pairs)
    values, seed_index = np.unique(seeds[seeded], return_inverse=True)
    labels = np.full(n, -1, np.int64)
    labels[seeded] = seed_index

    piece_has_seed = np.bincount(piece[seeded], minlength=piece.max() + 1) > 0
    walk = piece_has_seed[piece] & ~seeded  # unseeded faces that a walk from a seed reaches
    if walk.any():
        weight = _edge_weights(vertices, faces, pairs, shared, sigma, convex_weight, smooth)
        if thickness:
            log_thick = np.log(face_thickness(vertices, faces, face_normals(vertices, faces)))
            weight = weight * np.exp(-np.abs(log_thick[pairs[:, 0]] - log_thick[pairs[:, 1]]) / thickness)
        if n > max_nodes:  # walk on patches of neighbouring faces alike in place and normal, seeds apart
            node = _patches(vertices[faces].mean(1), face_areas(vertices, faces), face_normals(vertices, faces),
                            pairs, max_nodes // 2)
            node = np.where(seeded, node.max() + 1 + np.arange(n), node)
            _, node = np.unique(node, return_inverse=True)
            node = node.reshape(-1)
        else:
            node = np.arange(n)
        m = int(node.max()) + 1
        node_label = np.full(m, -1, np.int64)
        node_label[node[seeded]] = labels[seeded]
        node_walk = np.zeros(m, bool)
        node_walk[node[walk]] = True
        cross = node[pairs[:, 0]] != node[pairs[:, 1]]
        node_pairs = node[pairs[cross]]
        node_label[node_walk] = _random_walk(m, node_pairs, weight[cross], node_label, len(values), node_walk)
        labels[walk] = node_label[node[walk]]

    lonely = ~piece_has_seed[piece]
    if lonely.any():
        centre = vertices[faces].mean(1)
        seed_faces = np.flatnonzero(seeded)
        distance, nearest = cKDTree(centre[seed_faces]).query(centre[lonely])
        lonely_faces = np.flatnonzero(lonely)
        lonely_piece = piece[lonely_faces]
        # Per seedless piece, its face closest to a seed (ties: lowest face index) picks the label.
        order = np.lexsort((lonely_faces, distance, lonely_piece))
        first = order[np.r_[True, lonely_piece[order[1:]] != lonely_piece[order[:-1]]]]
        piece_label = np.full(piece.max() + 1, -1, np.int64)
        piece_label[lonely_piece[first]] = labels[seed_faces[nearest[first]]]
        labels[lonely] = piece_label[lonely_piece]
    return values[labels].astype(np.int32)


def _edge_weights(vertices, faces, pairs, shared, sigma, convex_weight, smooth) -> np.ndarray:
    """Per face-graph edge: length (over the mean length) x exp(-bend x (1 or convex_weight) / sigma)."""
    n = len(faces)
    area = face_areas(vertices, faces)
    centre = vertices[faces].mean(1)
    normal = face_normals(vertices, faces) * area[:, None]
    if smooth:
        ring = sparse.coo_matrix((np.ones(2 * len(pairs)), (np.r_[pairs[:, 0], pairs[:, 1]],
                                                             np.r_[pairs[:, 1], pairs[:, 0]])), shape=(n, n)).tocsr()
        ring = ring + sparse.identity(n, format="csr")
        for _ in range(smooth):
            normal = ring @ normal
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
    a, b = pairs[:, 0], pairs[:, 1]
    bend = np.clip(1.0 - np.einsum("ij,ij->i", normal[a], normal[b]), 0.0, 2.0)
    concave = np.einsum("ij,ij->i", centre[b] - centre[a], normal[a] - normal[b]) > 0
    length = np.linalg.norm(vertices[shared[:, 0]] - vertices[shared[:, 1]], axis=1)
    length = length / max(float(length.mean()), 1e-300)
    # A floor keeps every edge conducting a little, so the system stays non-singular on each piece.
    return length * np.maximum(np.exp(-bend * np.where(concave, 1.0, convex_weight) / sigma), 1e-10)


def _random_walk(n, pairs, weight, labels, k, walk) -> np.ndarray:
    """For the ``walk`` faces, the index of the seed label with the highest random-walker probability."""
    rows, cols = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
    adjacency = sparse.coo_matrix((np.r_[weight, weight], (rows, cols)), shape=(n, n)).tocsr()
    degree = np.asarray(adjacency.sum(1)).reshape(-1)
    free = np.flatnonzero(walk)
    fixed = np.flatnonzero(labels >= 0)
    laplacian = sparse.diags(degree) - adjacency
    system = laplacian[free][:, free].tocsc()
    coupling = adjacency[free][:, fixed]  # -L_UF
    one_hot = sparse.coo_matrix((np.ones(len(fixed)), (np.arange(len(fixed)), labels[fixed])),
                                shape=(len(fixed), k)).tocsr()
    rhs = np.asarray((coupling @ one_hot).todense())
    if k == 1:
        return np.zeros(len(free), np.int64)
    solve = sparse_linalg.splu(system, permc_spec="COLAMD").solve
    # Probabilities sum to one: the last label's is what the others leave.
    probability = np.empty((len(free), k))
    probability[:, :-1] = solve(np.ascontiguousarray(rhs[:, :-1]))
    probability[:, -1] = 1.0 - probability[:, :-1].sum(1)
    return np.argmax(probability, 1)
