"""Concavity-aware segmentation of a one-piece mesh into parts: recursive spectral cuts along concave creases.

Parts of man-made and organic shapes meet along concave creases (the minima rule: a leg meets the seat in a
valley, never on a ridge). The method combines spectral partitioning (Shi & Malik's normalised cut, with
sweep cuts over eigenvectors) with Katz & Tal's concavity weighting, and lets the creases decide how many
parts there are:

1. Orientation: each connected piece's faces are flipped when its signed volume is negative, so normals
   point outwards and concave can be told from convex (inside-out exports and remeshes are common).
2. Patches: connected faces sharing a cell of a grid sized to the surface area (about ``patches`` cells) and
   the same dominant signed axis of their smoothed normal. Splitting by normal puts a crease between two
   patches rather than inside one; the graph stays small whatever the face count.
3. Patch graph: neighbouring patches are linked with weight = shared edge length x exp(-bend / sigma), where
   bend = 1 - cos(angle between the patches' mean normals), damped by ``convex_weight`` on convex links.
   A link's crease length is its edge length x (1 - exp(-bend / crease_scale)) when concave, else 0. Parts
   also change thickness where they meet (a robot's thigh and calf, a chair's leg under its seat), often
   with a crease too shallow to count: a concave link whose two patches' median local thickness
   (``thickness.py``) differs by more than a factor exp(``thickness_jump``) counts as crease along its whole
   length (``thickness_jump`` 0: thickness is ignored).
4. Cuts: for every segment (at first, every connected piece), the level sets of its ``sweeps`` leading
   non-trivial eigenvectors of the normalised Laplacian are scanned for the cut of lowest conductance
   (cut weight over the smaller side's volume) that leaves at least ``min_fraction`` of the area on each side
   and runs mostly along concave creases (crease length over boundary length at least ``crease_fraction``).
   The best cut over all segments is made, separate pieces of the new segments become segments of their
   own, and so on until no segment has such a cut (or there are ``max_parts`` segments, when given): the
   creases alone decide how many parts there are. With ``num_parts`` set, cuts are made, creases or not,
   until there are that many.
5. Clean-up: pieces under ``min_fraction`` of the area join the neighbouring piece they are most strongly
   linked to. The result depends only on the input and ``seed`` (the eigensolver's start vector).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
from scipy import linalg as scipy_linalg, sparse
from scipy.sparse import linalg as sparse_linalg

from ...core.meshmath import TOL, compact_labels, edge_key, face_areas, face_normals
from .thickness import face_thickness
from .topology import components, face_adjacency, face_components, weld


class _Graph(NamedTuple):
    """The patch graph: links a < b with their edge length, affinity weight and crease length; patch areas."""

    a: np.ndarray
    b: np.ndarray
    length: np.ndarray
    weight: np.ndarray
    crease: np.ndarray
    area: np.ndarray


def segment_parts(vertices: np.ndarray, faces: np.ndarray, num_parts: int = 0, max_parts: int = 0,
                  patches: int = 1500, convex_weight: float = 0.3, sigma: float = 0.1, crease_scale: float = 0.1,
                  crease_fraction: float = 0.65, sweeps: int = 3, min_fraction: float = 0.01, seed: int = 0,
                  thickness_jump: float = 0.3, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """One part label (0..k-1, by decreasing area) per face.

    ``num_parts`` > 0 asks for exactly that many parts (more when the mesh has more separate pieces, fewer
    when no more cuts leave ``min_fraction`` of the area on each side); 0 lets the creases decide, with at
    most ``max_parts`` when that is > 0. Separate pieces of the mesh are never joined.
    """
    progress = progress or (lambda fraction, message: None)
    faces = _outward(vertices, weld(vertices, faces))
    area = face_areas(vertices, faces)
    centre = vertices[faces].mean(1)
    normal = face_normals(vertices, faces)
    pairs, shared = face_adjacency(faces)
    length = np.linalg.norm(vertices[shared[:, 0]] - vertices[shared[:, 1]], axis=1)
    progress(0.1, "grouping faces into patches")
    patch = _patches(centre, area, normal, pairs, patches)
    graph = _patch_graph(patch, pairs, length, normal, centre, area, convex_weight, sigma, crease_scale)
    if thickness_jump:
        progress(0.15, "measuring thickness")
        thick = _patch_median(patch, np.log(face_thickness(vertices, faces, normal)), area)
        jump = (graph.crease > 0) & (np.abs(thick[graph.a] - thick[graph.b]) > thickness_jump)
        graph = graph._replace(crease=np.where(jump, graph.length, graph.crease))
    n = len(graph.area)
    labels = components(n, np.stack([graph.a, graph.b], 1))
    limit = int(num_parts) if num_parts else int(max_parts) or len(graph.area)
    threshold = -np.inf if num_parts else crease_fraction
    min_area = min_fraction * graph.area.sum()
    rng = np.random.default_rng(seed)
    cuts = {label: _best_cut(graph, labels == label, threshold, sweeps, min_area, rng)
            for label in range(labels.max() + 1)}
    while labels.max() + 1 < limit:
        options = [(cut[0], label) for label, cut in cuts.items() if cut is not None]
        if not options:
            break
        label = min(options)[1]
        new = labels.max() + 1
        labels[cuts[label][1]] = new
        for changed in [label, new] + _separate_pieces(labels, graph, (label, new), min_area):
            cuts[changed] = _best_cut(graph, labels == changed, threshold, sweeps, min_area, rng)
        progress(0.2 + 0.7 * (labels.max() + 1) / limit, f"{labels.max() + 1} parts")
    labels = _merge_small(labels, graph, min_fraction)
    return _compact(labels, graph.area)[patch]


def _outward(vertices, faces) -> np.ndarray:
    """Faces with every connected piece wound so that its signed volume (about its own centre) is positive."""
    piece = face_components(faces, len(vertices))
    tri = vertices[faces]
    count = np.bincount(piece)
    middle = np.stack([np.bincount(piece, tri[:, :, d].mean(1)) for d in range(3)], 1) / count[:, None]
    tri = tri - middle[piece][:, None]
    volume = np.bincount(piece, np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])))
    return np.where((volume[piece] < 0)[:, None], faces[:, ::-1], faces)


def _patches(centre, area, normal, pairs, target) -> np.ndarray:
    """Patch index per face: connected faces sharing a grid cell (about total_area / target each) and the
    dominant signed axis of their normal averaged over five rings of neighbours (staircases cancel out)."""
    n = len(centre)
    rows, columns = np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]
    ring = sparse.coo_matrix((np.ones(len(rows)), (rows, columns)), shape=(n, n)).tocsr() + sparse.identity(n)
    smooth = normal * area[:, None]
    for _ in range(5):
        smooth = ring @ smooth
    axis = np.argmax(np.abs(smooth), 1)
    direction = 2 * axis + (smooth[np.arange(n), axis] > 0)
    cell_size = np.sqrt(max(area.sum(), TOL.tiny) / max(target, 1))
    cell = np.floor((centre - centre.min(0)) / cell_size).astype(np.int64)
    _, cell_id = np.unique(np.c_[cell, direction], axis=0, return_inverse=True)
    cell_id = cell_id.reshape(-1)
    return components(n, pairs[cell_id[pairs[:, 0]] == cell_id[pairs[:, 1]]])


def _patch_median(patch, value, area) -> np.ndarray:
    """Per patch, the area-weighted median of a per-face ``value`` (faces of positive area)."""
    order = np.lexsort((value, patch))
    cumulative = np.cumsum(area[order])
    patch_area = np.bincount(patch, area)
    before = np.cumsum(patch_area) - patch_area
    middle = np.searchsorted(cumulative, before + 0.5 * patch_area)
    return value[order[np.minimum(middle, len(order) - 1)]]


def _patch_graph(patch, pairs, length, normal, centre, area, convex_weight, sigma, crease_scale) -> _Graph:
    """Links between adjacent patches, concave when each patch lies above the other's tangent plane:
    (c_b - c_a) . (n_a - n_b) > 0 with the patches' area-weighted mean centres and normals."""
    n = int(patch.max()) + 1
    patch_area = np.bincount(patch, area, n)
    p, q = patch[pairs[:, 0]], patch[pairs[:, 1]]
    cross = p != q
    key, inverse = np.unique(edge_key(p[cross], q[cross], n, directed=False), return_inverse=True)
    a, b = key // n, key % n
    link_length = np.bincount(inverse.reshape(-1), length[cross])
    mean_normal = np.stack([np.bincount(patch, normal[:, d] * area, n) for d in range(3)], 1)
    mean_normal /= np.maximum(np.linalg.norm(mean_normal, axis=1, keepdims=True), TOL.tiny)
    mean_centre = np.stack([np.bincount(patch, centre[:, d] * area, n) for d in range(3)], 1)
    mean_centre /= np.maximum(patch_area, TOL.tiny)[:, None]
    bend = np.clip(1.0 - np.einsum("ij,ij->i", mean_normal[a], mean_normal[b]), 0.0, 2.0)
    concave = np.einsum("ij,ij->i", mean_centre[b] - mean_centre[a], mean_normal[a] - mean_normal[b]) > 0
    weight = link_length * np.exp(-bend * np.where(concave, 1.0, convex_weight) / sigma)
    crease = link_length * np.where(concave, 1.0 - np.exp(-bend / crease_scale), 0.0)
    return _Graph(a, b, link_length, weight, crease, patch_area)


def _best_cut(graph: _Graph, inside: np.ndarray, threshold, sweeps, min_area, rng):
    """(conductance, patches of one side) of the segment's best admissible sweep cut, or None."""
    nodes = np.flatnonzero(inside)
    n = len(nodes)
    if n < 4 or graph.area[nodes].sum() < 2 * min_area:
        return None
    links = inside[graph.a] & inside[graph.b]
    local = np.full(len(inside), -1)
    local[nodes] = np.arange(n)
    a, b = local[graph.a[links]], local[graph.b[links]]
    weight = graph.weight[links]
    affinity = sparse.coo_matrix((np.r_[weight, weight], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()
    degree = np.asarray(affinity.sum(1)).reshape(-1)
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros(n), where=degree > 0)
    laplacian = sparse.identity(n) - sparse.diags(scale) @ affinity @ sparse.diags(scale)
    count = min(sweeps + 1, n - 2)
    if n <= 400:
        # Only the leading pairs (LAPACK's MRRR driver): a full decomposition costs 10-60x more.
        vectors = scipy_linalg.eigh(laplacian.toarray(), subset_by_index=[0, count - 1], driver="evr")[1]
    else:
        # Shift-invert about just below 0: the smallest eigenvalues converge in a few iterations.
        try:
            values, vectors = sparse_linalg.eigsh(laplacian.tocsc(), k=count, sigma=-1e-3, which="LM",
                                                  v0=rng.uniform(0.5, 1.0, n), tol=1e-8)
        except sparse_linalg.ArpackNoConvergence as error:  # keep the pairs that did converge
            values, vectors = error.eigenvalues, error.eigenvectors
        vectors = vectors[:, np.argsort(values)]
    best = None
    for vector in (vectors[:, 1:] * scale[:, None]).T:
        order = np.argsort(vector, kind="stable")
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        # A link is cut by the prefix sets of sizes min(rank)+1 .. max(rank): sum over them with differences.
        low, high = np.minimum(rank[a], rank[b]), np.maximum(rank[a], rank[b])
        cut, boundary, crease = (np.cumsum(np.bincount(low, value, n + 1) - np.bincount(high, value, n + 1))[:-1]
                                 for value in (weight, graph.length[links], graph.crease[links]))
        volume = np.cumsum(degree[order])
        side_area = np.cumsum(graph.area[nodes[order]])
        admissible = ((side_area >= min_area) & (side_area[-1] - side_area >= min_area) & (boundary > 0)
                      & (crease >= threshold * boundary))
        admissible[-1] = False
        if not admissible.any():
            continue
        conductance = np.where(admissible, cut / np.maximum(np.minimum(volume, volume[-1] - volume), TOL.tiny), np.inf)
        t = int(np.argmin(conductance))
        if best is None or conductance[t] < best[0]:
            best = (float(conductance[t]), nodes[order[: t + 1]])
    return best


def _separate_pieces(labels, graph: _Graph, changed, min_area) -> list[int]:
    """Give every connected piece of the ``changed`` segments but the largest, if it holds at least
    ``min_area``, a label of its own; return the new labels."""
    same = labels[graph.a] == labels[graph.b]
    piece = components(len(labels), np.stack([graph.a[same], graph.b[same]], 1))
    piece_area = np.bincount(piece, graph.area)
    new = []
    for label in changed:
        pieces = np.unique(piece[labels == label])
        big = pieces[piece_area[pieces] >= min_area]
        for p in big[np.argsort(-piece_area[big], kind="stable")][1:]:
            labels[piece == p] = labels.max() + 1
            new.append(int(labels.max()))
    return new


def _merge_small(labels, graph: _Graph, min_fraction) -> np.ndarray:
    """Join every connected piece of a segment under ``min_fraction`` of the area to the larger neighbouring
    piece it is most strongly linked to (round by round, so chains of small pieces end in a large one)."""
    a, b = np.r_[graph.a, graph.b], np.r_[graph.b, graph.a]
    while True:
        same = labels[a] == labels[b]
        piece = components(len(labels), np.stack([a[same], b[same]], 1))
        piece_area = np.bincount(piece, graph.area)
        rank = np.empty(len(piece_area), np.int64)
        rank[np.lexsort((np.arange(len(piece_area)), piece_area))] = np.arange(len(piece_area))
        src, dst = piece[a], piece[b]
        move = ~same & (piece_area[src] < min_fraction * graph.area.sum()) & (rank[dst] > rank[src])
        if not move.any():
            return labels
        key, inverse = np.unique(np.stack([src[move], dst[move]], 1), axis=0, return_inverse=True)
        strength = np.bincount(inverse.reshape(-1), np.r_[graph.weight, graph.weight][move])
        best = np.lexsort((-strength, key[:, 0]))
        best = best[np.r_[True, key[best[1:], 0] != key[best[:-1], 0]]]
        target = np.arange(len(piece_area))
        target[key[best, 0]] = key[best, 1]
        piece_label = np.zeros(len(piece_area), np.int64)
        piece_label[piece] = labels
        labels = piece_label[target[piece]]


def _compact(labels, area) -> np.ndarray:
    """Labels renumbered 0..k-1 by decreasing area (ties by first label), so the numbering is stable."""
    ids, inverse = compact_labels(labels)
    total = np.bincount(inverse, area)
    order = np.lexsort((ids, -total))
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return rank[inverse]
