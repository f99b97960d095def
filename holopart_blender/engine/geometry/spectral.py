"""Concavity-aware spectral clustering of a one-piece mesh into parts.

Parts of man-made and organic shapes meet along concave creases (the minima rule: a leg meets the seat in a
valley, never on a ridge). The method follows spectral mesh segmentation (Liu & Zhang 2004; Katz & Tal's
concavity weighting), made robust to remeshing noise and fast on large meshes:

1. Patches: faces are grouped into about ``patches`` small connected patches (faces in the same cell of a
   grid sized to the surface area, split into connected pieces), so noise of single triangles (marching
   cubes staircases) averages out and the eigenproblem stays small whatever the face count.
2. Patch graph: neighbouring patches are linked with weight = shared boundary length x exp(-cost / sigma),
   where cost = 1 - cos(angle between the patches' mean normals), damped by ``convex_weight`` on convex
   junctions so that cuts prefer concave creases. sigma is the mean cost over links.
3. Spectral embedding: the leading eigenvectors of the normalised affinity D^-1/2 W D^-1/2. The number of
   parts, unless given, is where the normalised Laplacian's eigenvalues jump most (the eigengap).
4. k-means on the row-normalised embedding (Ng, Jordan & Weiss), several seeded starts, the best kept.
5. Clean-up: pieces of a part that are not connected to its largest piece and hold less than
   ``min_fraction`` of the area join the neighbouring part they share the most affinity with.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import sparse
from scipy.cluster.vq import kmeans2
from scipy.sparse import linalg as sparse_linalg

from .topology import components, face_adjacency, face_areas, face_normals, weld


def segment_parts(vertices: np.ndarray, faces: np.ndarray, num_parts: int = 0, max_parts: int = 12,
                  patches: int = 3000, convex_weight: float = 0.3, sigma: float = 0.1, smoothing: int = 5,
                  dimensions: int = 16, min_fraction: float = 0.01, seed: int = 0,
                  progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """One part label (0..k-1, by decreasing area) per face; ``num_parts`` 0 chooses k by the eigengap."""
    progress = progress or (lambda fraction, message: None)
    faces = weld(vertices, faces)
    area = face_areas(vertices, faces)
    centre = vertices[faces].mean(1)
    pairs, shared = face_adjacency(faces)
    length = np.linalg.norm(vertices[shared[:, 0]] - vertices[shared[:, 1]], axis=1)
    progress(0.1, "measuring creases")
    normal = _smoothed_normals(face_normals(vertices, faces) * area[:, None], pairs, smoothing)
    patch = _patches(centre, area, pairs, patches)
    n = int(patch.max()) + 1
    patch_area = np.bincount(patch, area, n)
    affinity = _affinity(patch, pairs, length, normal, centre, convex_weight, sigma)
    progress(0.4, f"spectral embedding of {n} patches")
    count = min(max(max_parts, dimensions) + 1, n - 1)
    vectors, eigenvalues = _embedding(affinity, count)
    k = int(num_parts) if num_parts else _eigengap(eigenvalues, max_parts)
    k = max(1, min(k, n))
    progress(0.7, f"clustering into {k} parts")
    labels = np.zeros(n, np.int64)
    if k > 1:
        # Commute-time-like coordinates: eigenvector i scaled by 1/lambda_i, so smooth, weakly linked
        # regions (parts behind a crease) dominate and noise directions fade; the constant vector is dropped.
        degree = np.asarray(affinity.sum(1)).reshape(-1)
        used = slice(1, max(k, min(dimensions, count)))
        rows = vectors[:, used] / np.sqrt(np.maximum(degree, 1e-300))[:, None]
        rows /= np.maximum(eigenvalues[used], 1e-9)
        labels = _kmeans(rows, k, patch_area, seed)
    progress(0.9, "merging small pieces")
    labels = _merge_small_pieces(labels, affinity, patch_area, min_fraction)
    return _compact(labels, patch_area)[patch]


def _smoothed_normals(weighted: np.ndarray, pairs: np.ndarray, steps: int) -> np.ndarray:
    """Face normals averaged over ``steps`` rings of neighbours (remeshing staircases cancel out)."""
    n = len(weighted)
    ring = sparse.coo_matrix((np.ones(2 * len(pairs)), (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                             shape=(n, n)).tocsr() + sparse.identity(n, format="csr")
    for _ in range(steps):
        weighted = ring @ weighted
    return weighted / np.maximum(np.linalg.norm(weighted, axis=1, keepdims=True), 1e-300)


def _patches(centre, area, pairs, target) -> np.ndarray:
    """Patch index per face: connected faces sharing a grid cell of about total_area / target each."""
    cell_size = np.sqrt(max(area.sum(), 1e-300) / max(target, 1))
    cell = np.floor((centre - centre.min(0)) / cell_size).astype(np.int64)
    _, cell_id = np.unique(cell, axis=0, return_inverse=True)
    cell_id = cell_id.reshape(-1)
    inside = pairs[cell_id[pairs[:, 0]] == cell_id[pairs[:, 1]]]
    return components(len(centre), inside)


def _affinity(patch, pairs, length, normal, centre, convex_weight, sigma) -> sparse.csr_matrix:
    """Patch graph: for every edge between faces of two patches, length x exp(-crease cost / sigma)."""
    i, j = pairs[:, 0], pairs[:, 1]
    bend = np.clip(1.0 - np.einsum("ij,ij->i", normal[i], normal[j]), 0.0, 2.0)
    # Concave when each face lies above the other's tangent plane: (c_j - c_i) . (n_i - n_j) > 0.
    concave = np.einsum("ij,ij->i", centre[j] - centre[i], normal[i] - normal[j]) > 0
    weight = length * np.exp(-bend * np.where(concave, 1.0, convex_weight) / sigma)
    p, q = patch[i], patch[j]
    cross = p != q
    n = int(patch.max()) + 1
    w = sparse.coo_matrix((np.r_[weight[cross], weight[cross]], (np.r_[p[cross], q[cross]], np.r_[q[cross], p[cross]])),
                          shape=(n, n))
    return w.tocsr()


def _embedding(affinity, count) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` leading eigenvectors of D^-1/2 W D^-1/2 and the matching Laplacian eigenvalues (ascending)."""
    degree = np.asarray(affinity.sum(1)).reshape(-1)
    scale = 1.0 / np.sqrt(np.maximum(degree, 1e-300))
    normalised = sparse.diags(scale) @ affinity @ sparse.diags(scale)
    n = affinity.shape[0]
    if n <= 400 or count >= n - 1:
        values, vectors = np.linalg.eigh(normalised.toarray())
        values, vectors = values[::-1][:count], vectors[:, ::-1][:, :count]
    else:
        # Shift by +I so the wanted (largest) eigenvalues are also the largest in magnitude.
        shifted = normalised + sparse.identity(n)
        values, vectors = sparse_linalg.eigsh(shifted, k=count, which="LA", v0=np.sqrt(np.maximum(degree, 0)) + 1e-3,
                                              tol=1e-6, maxiter=n * 50)
        order = np.argsort(-values)
        values, vectors = values[order] - 1.0, vectors[:, order]
    return vectors, 1.0 - values


def _eigengap(eigenvalues, max_parts) -> int:
    """k whose eigenvalue gap lambda_k - lambda_(k-1) is largest (k in 2..max_parts)."""
    if len(eigenvalues) < 3:
        return 1
    gaps = np.diff(eigenvalues[: max_parts + 1])
    return int(np.argmax(gaps[1:]) + 2)


def _kmeans(rows, k, weight, seed, starts=8) -> np.ndarray:
    """Best of ``starts`` seeded k-means++ runs (lowest area-weighted distortion)."""
    rng = np.random.default_rng(seed)
    best, best_cost = None, np.inf
    for _ in range(starts):
        centres, labels = kmeans2(rows, k, minit="++", seed=rng)
        cost = float((weight * np.sum((rows - centres[labels]) ** 2, axis=1)).sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    return best.astype(np.int64)


def _merge_small_pieces(labels, affinity, area, min_fraction) -> np.ndarray:
    """Join disconnected pieces under ``min_fraction`` of the area to their best-linked neighbouring part."""
    a, b = affinity.nonzero()
    weight = np.asarray(affinity[a, b]).reshape(-1)
    for _ in range(20):
        same = labels[a] == labels[b]
        piece = components(len(labels), np.stack([a[same], b[same]], 1))
        piece_area = np.bincount(piece, area)
        piece_label = np.zeros(len(piece_area), np.int64)
        piece_label[piece] = labels
        largest = np.zeros(len(piece_area), bool)
        by_size = np.lexsort((-piece_area, piece_label))
        largest[by_size[np.r_[True, piece_label[by_size[1:]] != piece_label[by_size[:-1]]]]] = True
        small = ((piece_area < min_fraction * area.sum()) & ~largest)[piece]
        # Links from a small piece to another part, summed per (piece, part): the best one wins.
        out = small[a] & ~same
        if not out.any():
            return labels
        key_piece, key_label = piece[a[out]], labels[b[out]]
        pairs, inverse = np.unique(np.stack([key_piece, key_label], 1), axis=0, return_inverse=True)
        strength = np.bincount(inverse.reshape(-1), weight[out])
        order = np.lexsort((-strength, pairs[:, 0]))
        first = order[np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]]
        target = np.full(piece.max() + 1, -1)
        target[pairs[first, 0]] = pairs[first, 1]
        move = target[piece] >= 0
        labels = np.where(move, target[piece], labels)
    return labels


def _compact(labels, area) -> np.ndarray:
    """Labels renumbered 0..k-1 by decreasing area (ties by first label), so the numbering is stable."""
    ids, inverse = np.unique(labels, return_inverse=True)
    total = np.bincount(inverse, area)
    order = np.lexsort((ids, -total))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return rank[inverse]
