"""Metrics for part completion and segmentation (the paper's, plus the hidden-surface scores).

All distances are in the frame the meshes are given in; the runner passes them in the object frame
(normalised to [-1, 1] on the longest axis) and again in each part's own frame (``meshmath.box_frame``).

Per part (``score_part``):
- ``chamfer``: L1 Chamfer distance, the mean of the two mean nearest-sample distances (result → truth and
  truth → result) over ``samples`` area-weighted surface samples of each mesh;
- ``iou`` and ``fscore``: over the voxels of a 64³ grid spanning [-1, 1]³ that the samples occupy; the
  F-score is that of voxel precision (result voxels that truth occupies) and recall (truth voxels the result
  occupies), so its distance threshold is one voxel (2/64 = 0.03125 of the normalised frame);
- ``hidden_recall``: the share of truth samples farther than ``HIDDEN_MARGIN`` (0.02) from the visible input
  that lie within ``HIDDEN_MATCH`` (0.01) of the result (the unchanged segment scores 0 by construction);
- ``hidden_precision`` / ``hidden_stray``: of the result samples farther than ``HIDDEN_MARGIN`` from the
  visible input (what the engine added), the share within ``HIDDEN_MATCH`` of the truth and their mean
  distance to it: how far the added surface strays. Both are NaN when nothing was added there.
- ``hidden_overlap`` / ``clear_hidden_recall`` (given the other truth parts' solids): the share of those
  hidden truth samples that lie inside another truth part (where the ground truth's parts overlap, as
  generated objects' do, so only a result that overlaps its neighbours can reach them), and the hidden
  recall over the rest. Both are NaN without the solids or when nothing is hidden.
The hidden scores use object-frame thresholds, so they are computed in the object frame only.

Per object: ``penetration`` (the share of each part's inside that lies inside another part, on a voxel grid)
and ``segmentation_miou`` for segmentation.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from holopart_blender.core.meshmath import box_frame, compact_labels, face_areas
from .sampling import seeded_samples

VOXELS = 64
HIDDEN_MARGIN = 0.02
HIDDEN_MATCH = 0.01
PENETRATION_VOXELS = 128
SOLID_DENSITY = 40  # surface samples per crossed cell when voxelising a solid (an empty cell has odds e^-40)
SOLID_MAX_SAMPLES = 30_000_000


def nearest_distance(points: np.ndarray, to: np.ndarray, upper_bound: float = np.inf) -> np.ndarray:
    """Distance from each of ``points`` to the nearest of ``to``; with ``upper_bound``, inf beyond it (a much
    faster search where only a threshold matters)."""
    return cKDTree(to).query(points, distance_upper_bound=upper_bound, workers=-1)[0]


def cells(points: np.ndarray, voxels: int) -> np.ndarray:
    """Per point, its (i, j, k) cell of a ``voxels``³ grid over [-1, 1]³ (clipped at the edge)."""
    return np.clip(np.floor((points + 1.0) * (voxels / 2.0)).astype(np.int64), 0, voxels - 1)


def voxel_set(points: np.ndarray, voxels: int = VOXELS) -> np.ndarray:
    """Flat indices of the cells of a ``voxels``³ grid over [-1, 1]³ that the points fall in."""
    cell = cells(points, voxels)
    return np.unique((cell[:, 0] * voxels + cell[:, 1]) * voxels + cell[:, 2])


def voxel_scores(result: np.ndarray, truth: np.ndarray, voxels: int = VOXELS) -> tuple[float, float]:
    """(IoU, F-score) of the occupied voxels of two sample sets."""
    a, b = voxel_set(result, voxels), voxel_set(truth, voxels)
    inter = len(np.intersect1d(a, b, assume_unique=True))
    union = len(a) + len(b) - inter
    iou = inter / union if union else 1.0
    precision = inter / len(a) if len(a) else 0.0
    recall = inter / len(b) if len(b) else 0.0
    fscore = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(iou), float(fscore)


def surface_scores(result: np.ndarray, truth: np.ndarray) -> dict:
    """Chamfer, IoU and F-score between two surface sample sets (same frame)."""
    return _scores(result, truth, nearest_distance(result, truth), nearest_distance(truth, result))


def _scores(result, truth, to_truth, to_result) -> dict:
    iou, fscore = voxel_scores(result, truth)
    return {"chamfer": float(0.5 * (to_truth.mean() + to_result.mean())), "iou": iou, "fscore": fscore}


def hidden_scores(to_truth: np.ndarray, to_result: np.ndarray, truth_hidden: np.ndarray,
                  added: np.ndarray, truth_overlapped: np.ndarray | None = None) -> dict:
    """Hidden recall, precision and stray distance (module docstring) from the result↔truth distances and
    the masks of the truth samples far from the visible input (``truth_hidden``) and of the result samples
    far from it (``added``); with the mask of the truth samples inside other truth parts
    (``truth_overlapped``), the overlap share and the recall clear of it too."""
    found = to_result <= HIDDEN_MATCH
    recall = float(found[truth_hidden].mean()) if truth_hidden.any() else np.nan
    overlap = clear_recall = np.nan
    if truth_overlapped is not None and truth_hidden.any():
        overlap = float(truth_overlapped[truth_hidden].mean())
        clear = truth_hidden & ~truth_overlapped
        clear_recall = float(found[clear].mean()) if clear.any() else np.nan
    if added.any():
        stray = to_truth[added]
        precision, mean_stray = float((stray <= HIDDEN_MATCH).mean()), float(stray.mean())
    else:
        precision = mean_stray = np.nan
    return {"hidden_recall": recall, "hidden_precision": precision, "hidden_stray": mean_stray,
            "hidden_share": float(truth_hidden.mean()), "hidden_overlap": overlap, "clear_hidden_recall": clear_recall}


def score_part(result_vertices: np.ndarray, result_faces: np.ndarray, truth_vertices: np.ndarray,
               truth_faces: np.ndarray, visible_vertices: np.ndarray, visible_faces: np.ndarray,
               samples: int = 500_000, seed: int = 0, others: np.ndarray | None = None) -> dict:
    """Every per-part score, object frame and part frame (``part_`` prefix); inputs in the object frame.
    ``others``, a ``solid_voxels`` grid of the other truth parts' insides, adds the overlap scores.

    An empty result scores ``success`` False and NaN elsewhere (means over parts then skip it; the success
    rate counts it).
    """
    truth, _ = seeded_samples(truth_vertices, truth_faces, samples, seed)
    if len(result_faces) == 0:
        nan = {k: np.nan for k in ("chamfer", "iou", "fscore", "hidden_recall", "hidden_precision",
                                   "hidden_stray", "hidden_overlap", "clear_hidden_recall", "part_chamfer",
                                   "part_iou", "part_fscore")}
        return {"success": False, **nan}
    # One seed for every mesh: identical meshes give identical samples, so the unchanged segment scores a
    # hidden recall of exactly 0 and a copy of the truth a Chamfer distance of exactly 0.
    result, _ = seeded_samples(result_vertices, result_faces, samples, seed)
    visible, _ = seeded_samples(visible_vertices, visible_faces, samples, seed)
    to_truth, to_result = nearest_distance(result, truth), nearest_distance(truth, result)
    # Only "farther than the margin from the visible input" matters: a bounded (fast) search.
    truth_hidden = nearest_distance(truth, visible, HIDDEN_MARGIN * 1.001) > HIDDEN_MARGIN
    added = nearest_distance(result, visible, HIDDEN_MARGIN * 1.001) > HIDDEN_MARGIN
    overlapped = None if others is None else inside(others, truth)
    scores = {"success": True, **_scores(result, truth, to_truth, to_result),
              **hidden_scores(to_truth, to_result, truth_hidden, added, overlapped)}
    # The part frame is a translation and a uniform scale: distances scale, only the voxels need redoing.
    centre, scale = box_frame(truth_vertices)  # the truth part in [-1, 1] on its longest axis
    own = _scores((result - centre) * scale, (truth - centre) * scale, to_truth * scale, to_result * scale)
    scores.update({f"part_{k}": v for k, v in own.items()})
    return scores


def solid_voxels(vertices: np.ndarray, faces: np.ndarray, voxels: int = PENETRATION_VOXELS) -> np.ndarray:
    """Boolean ``voxels``³ grid over [-1, 1]³: the cells strictly inside a closed mesh (its surface cells
    removed), by filling the cells its dense surface samples occupy.

    The samples must leave no surface cell empty (one gap and the fill leaks out, leaving nothing inside),
    so their number grows with the area: about ``SOLID_DENSITY`` per cell the surface crosses.
    """
    cell_area = (2.0 / voxels) ** 2
    area = float(face_areas(np.asarray(vertices, np.float64), np.asarray(faces, np.int64)).sum())
    count = int(min(SOLID_MAX_SAMPLES, max(200_000, SOLID_DENSITY * area / cell_area)))
    points, _ = seeded_samples(vertices, faces, count, seed=3)
    grid = np.zeros((voxels,) * 3, bool)
    grid[tuple(cells(points, voxels).T)] = True
    return ndimage.binary_fill_holes(grid) & ~grid


def inside(grid: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Per point, whether it falls in a set cell of a ``solid_voxels`` grid over [-1, 1]³."""
    return grid[tuple(cells(points, grid.shape[0]).T)]


def penetration(parts: list[tuple[np.ndarray, np.ndarray]], voxels: int = PENETRATION_VOXELS) -> list[float]:
    """Per part, the share of its inside cells that are inside another part too (NaN for a part with no
    inside at this resolution, e.g. open or very thin)."""
    solids = [solid_voxels(v, f, voxels) if len(f) else np.zeros((voxels,) * 3, bool) for v, f in parts]
    coverage = np.sum(solids, axis=0)
    out = []
    for solid in solids:
        inside = int(solid.sum())
        out.append(float((coverage[solid] > 1).sum() / inside) if inside else np.nan)
    return out


def segmentation_miou(predicted: np.ndarray, truth: np.ndarray, face_area: np.ndarray) -> float:
    """Class-agnostic mIoU: each ground-truth part's best area-weighted IoU with any predicted segment,
    averaged over ground-truth parts. Faces labelled -1 in ``truth`` are ignored."""
    predicted = np.asarray(predicted).reshape(-1)
    truth = np.asarray(truth).reshape(-1)
    area = np.asarray(face_area, np.float64).reshape(-1)
    keep = truth >= 0
    predicted, truth, area = predicted[keep], truth[keep], area[keep]
    pred_ids, pred_inv = compact_labels(predicted)
    true_ids, true_inv = compact_labels(truth)
    inter = np.zeros((len(true_ids), len(pred_ids)))
    np.add.at(inter, (true_inv, pred_inv), area)
    true_area = inter.sum(axis=1)
    pred_area = inter.sum(axis=0)
    union = true_area[:, None] + pred_area[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou.max(axis=1).mean()) if len(true_ids) else 0.0
