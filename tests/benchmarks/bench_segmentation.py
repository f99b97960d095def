"""Automatic segmentation of one-piece remeshes: class-agnostic mIoU against the benchmark's parts.

    .venv/bin/python tests/benchmarks/bench_segmentation.py [--engine auto] [--resolution 128]
        [--max-faces 200000] [--seed 0] [--cache .cache/benchmark] [--asset NAME.glb ...]

Each benchmark object is remeshed into one closed piece (marching cubes of its outside, ``build_remesh_task``),
so connectivity gives nothing away, and every face carries the label of the nearest part as ground truth. The
segmenter runs with its default settings (part count chosen automatically). The score is class-agnostic mIoU:
each true part's best IoU (by face area) with any predicted segment, averaged over the object's parts. Two
reference columns come from the same tasks: one segment for everything, and k-means on face positions and
normals with the true part count. Printed per object: the three scores, chosen vs true part count, the
segmenter's seconds and the process's peak memory so far; then the means over objects and over all parts.

With ``--engine seeded`` the segmenter grows seed faces instead (``devtools/evaluation/seeds.py`` picks
them inside each true part: first its most interior face, then faces spread over it); printed per object:
one segment, then mIoU and seconds with 1 and with 3 seeds per part.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy.cluster.vq import kmeans2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import BENCHMARK, ROOT  # noqa: E402
from holopart_blender.engine import api  # noqa: E402
from holopart_blender.core.meshmath import face_areas, face_normals  # noqa: E402
from devtools.evaluation.metrics import segmentation_miou  # noqa: E402
from devtools.evaluation.seeds import seed_faces  # noqa: E402
from devtools.evaluation.tasks import build_remesh_task  # noqa: E402


def kmeans_reference(vertices: np.ndarray, faces: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means (k-means++ start, seeded) on face centres and unit normals, positions scaled to unit spread."""
    centre = vertices[faces].mean(1)
    centre = (centre - centre.mean(0)) / centre.std(0).mean()
    features = np.concatenate([centre, face_normals(vertices, faces)], 1)
    return kmeans2(features, k, minit="++", seed=np.random.default_rng(seed))[1]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="auto", help="segmentation engine (auto or spectral)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--max-faces", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "benchmark")
    parser.add_argument("--asset", action="append", help="benchmark file name (repeatable; default: all)")
    args = parser.parse_args()

    paths = [BENCHMARK / name for name in args.asset] if args.asset else sorted(BENCHMARK.glob("*.glb"))
    if args.engine == "seeded":
        return seeded(paths, args)
    print(f"{'object':<22}{'faces':>9}{'one segment':>13}{'k-means (true k)':>18}{args.engine + ' (auto k)':>18}"
          f"{'k chosen/true':>15}{'seconds':>9}{'peak MiB':>10}")
    rows = []
    for path in paths:
        task = build_remesh_task(path, args.cache, args.resolution, args.max_faces)
        mesh, truth = task.job.mesh, task.job.face_labels
        area = face_areas(mesh.vertices, mesh.faces)
        k_true = len(np.unique(truth))
        one = segmentation_miou(np.zeros(len(truth)), truth, area)
        kmeans = segmentation_miou(kmeans_reference(mesh.vertices, mesh.faces, k_true, args.seed), truth, area)
        t0 = time.perf_counter()
        labels = api.segment(mesh, args.engine, {"seed": args.seed})
        seconds = time.perf_counter() - t0
        miou = segmentation_miou(labels, truth, area)
        k_chosen = len(np.unique(labels[labels >= 0]))
        rows.append((one, kmeans, miou, seconds, k_true))
        print(f"{task.name:<22}{mesh.num_faces:>9,}{one:>13.3f}{kmeans:>18.3f}{miou:>18.3f}"
              f"{f'{k_chosen}/{k_true}':>15}{seconds:>9.2f}{peak_mib():>10.0f}")
    rows = np.array(rows)
    one, kmeans, miou, seconds = rows[:, :4].mean(0)
    print(f"{'mean over objects':<22}{'':>9}{one:>13.3f}{kmeans:>18.3f}{miou:>18.3f}{'':>15}{seconds:>9.2f}")
    one, kmeans, miou = (rows[:, :3] * rows[:, 4:]).sum(0) / rows[:, 4].sum()
    print(f"{'mean over parts':<22}{'':>9}{one:>13.3f}{kmeans:>18.3f}{miou:>18.3f}{f'({int(rows[:, 4].sum())})':>15}")


def seeded(paths, args):
    """Seeded segmentation with 1 and 3 seed faces per true part."""
    print(f"{'object':<22}{'faces':>9}{'parts':>7}{'one segment':>13}{'1 seed':>9}{'seconds':>9}{'3 seeds':>9}{'seconds':>9}")
    rows = []
    for path in paths:
        task = build_remesh_task(path, args.cache, args.resolution, args.max_faces)
        mesh, truth = task.job.mesh, task.job.face_labels
        area = face_areas(mesh.vertices, mesh.faces)
        row = [segmentation_miou(np.zeros(len(truth)), truth, area)]
        for per_part in (1, 3):
            seeds = seed_faces(mesh, truth, per_part)
            t0 = time.perf_counter()
            labels = api.segment(mesh, "seeded", seeds=seeds)
            row += [segmentation_miou(labels, truth, area), time.perf_counter() - t0]
        rows.append(row + [len(np.unique(truth))])
        print(f"{task.name:<22}{mesh.num_faces:>9,}{rows[-1][-1]:>7}{row[0]:>13.3f}{row[1]:>9.3f}{row[2]:>9.2f}"
              f"{row[3]:>9.3f}{row[4]:>9.2f}", flush=True)
    rows = np.array(rows)
    mean = rows[:, :5].mean(0)
    print(f"{'mean over objects':<22}{'':>9}{'':>7}{mean[0]:>13.3f}{mean[1]:>9.3f}{mean[2]:>9.2f}{mean[3]:>9.3f}{mean[4]:>9.2f}")
    parts = (rows[:, [0, 1, 3]] * rows[:, 5:]).sum(0) / rows[:, 5].sum()
    print(f"{'mean over parts':<22}{'':>9}{int(rows[:, 5].sum()):>7}{parts[0]:>13.3f}{parts[1]:>9.3f}{'':>9}{parts[2]:>9.3f}")


if __name__ == "__main__":
    main()
