"""Metrics for part completion and segmentation."""

from __future__ import annotations

import numpy as np


def segmentation_miou(predicted: np.ndarray, truth: np.ndarray, face_area: np.ndarray) -> float:
    """Class-agnostic mIoU: each ground-truth part's best area-weighted IoU with any predicted segment,
    averaged over ground-truth parts. Faces labelled -1 in ``truth`` are ignored."""
    predicted = np.asarray(predicted).reshape(-1)
    truth = np.asarray(truth).reshape(-1)
    area = np.asarray(face_area, np.float64).reshape(-1)
    keep = truth >= 0
    predicted, truth, area = predicted[keep], truth[keep], area[keep]
    pred_ids, pred_inv = np.unique(predicted, return_inverse=True)
    true_ids, true_inv = np.unique(truth, return_inverse=True)
    inter = np.zeros((len(true_ids), len(pred_ids)))
    np.add.at(inter, (true_inv, pred_inv), area)
    true_area = inter.sum(axis=1)
    pred_area = inter.sum(axis=0)
    union = true_area[:, None] + pred_area[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return float(iou.max(axis=1).mean()) if len(true_ids) else 0.0
