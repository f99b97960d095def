"""Part completion on the benchmark: Chamfer, IoU, F-score and hidden recall per object, plus a 200k-face timing.

    .venv/bin/python tests/benchmarks/bench_completion.py [--engines visible,hull,geometric] [--samples 20000]
        [--settings '{"convex": 0}'] [--cache .cache/benchmark] [--asset NAME.glb ...]
        [--big-faces 200000]

Each benchmark object becomes its completion task (``build_task``: the faces a ray from outside reaches, each
labelled with its part), every engine completes every part, and each part is scored against its complete
mesh in the object frame (``score_part``: L1 Chamfer, voxel IoU and F-score at 64³, hidden recall = share of
the truth's hidden surface, farther than 0.02 from the visible input, that lies within 0.01 of the result).
Printed per object and engine: the means over its parts, the share of parts that are closed, the largest
share of a part's inside that lies inside another part (penetration, 128³ voxels), the engine's seconds and
the process's peak memory so far (with that of its largest forked process); then the means over all parts,
with the hidden recall clear of overlaps (over the hidden truth that lies inside no other truth part) and the
share of the hidden truth that does.

Last, the ``geometric`` engine is timed on an 8-part object of about ``--big-faces`` faces: the 8 segments
of the task with the most parts whose faces, subdivided once (each triangle into four, labels kept), come
closest to that size.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import holopart_blender.engine  # noqa: E402, F401  (before numpy: its thread settings apply, as in the worker)
import numpy as np  # noqa: E402
import trimesh  # noqa: E402
from conftest import BENCHMARK, ROOT  # noqa: E402
from holopart_blender.engine import api  # noqa: E402
from holopart_blender.engine.api import EngineSession  # noqa: E402
from holopart_blender.core.partjob import Mesh, PartJob  # noqa: E402
from holopart_blender.core.progress import Progress  # noqa: E402
from devtools.evaluation import run  # noqa: E402
from devtools.evaluation.tasks import build_task  # noqa: E402


def peak_mib() -> float:
    """This process's peak memory so far plus that of the largest process it forked and waited for (the
    geometric engine closes parts in forked processes on Linux): an upper bound, since a forked process
    shares its parent's pages until it writes them. ``ru_maxrss`` is in kilobytes on Linux."""
    return sum(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024


def big_job(task, target: int, parts: int = 8) -> PartJob:
    """``parts`` segments of the task, subdivided once, whose face count comes closest to ``target``."""
    job = task.job
    labels = np.array(job.labels)
    counts = np.bincount(job.face_labels[job.face_labels >= 0])[labels]
    order = np.argsort(counts, kind="stable")
    windows = [order[i:i + parts] for i in range(max(1, len(order) - parts + 1))]
    chosen = labels[min(windows, key=lambda w: abs(4 * counts[w].sum() - target))]
    vertices, faces, index = job.mesh.submesh(np.isin(job.face_labels, chosen))
    source_labels = job.face_labels[index]
    vertices, faces, origin = trimesh.remesh.subdivide(vertices, faces, return_index=True)
    labels_out = np.empty(len(faces), np.int32)
    for old, new in origin.items():
        labels_out[new] = source_labels[old]
    return PartJob(Mesh(vertices, faces), labels_out, job.part_names)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="visible,hull,geometric")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--settings", default="{}", help="JSON settings for the geometric engine")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "benchmark")
    parser.add_argument("--asset", action="append", help="benchmark file name (repeatable; default: all)")
    parser.add_argument("--big-faces", type=int, default=200_000, help="0 skips the timing")
    args = parser.parse_args()
    engines = args.engines.split(",")
    settings = json.loads(args.settings)

    paths = [BENCHMARK / name for name in args.asset] if args.asset else sorted(BENCHMARK.glob("*.glb"))
    header = (f"{'object':<22}{'engine':<11}{'parts':>6}{'Chamfer':>9}{'IoU':>7}{'F':>7}{'hidden R':>10}"
              f"{'closed':>8}{'penetr.':>9}{'seconds':>9}{'peak MiB':>10}")
    print(header)
    session, rows, largest = EngineSession(), {engine: [] for engine in engines}, None
    for path in paths:
        task = build_task(path, cache_dir=args.cache)
        if largest is None or len(task.job.labels) > len(largest.job.labels):
            largest = task
        overlaps = run.truth_overlaps(task)
        for engine in engines:
            # The benchmark runner's own steps: complete, then score every part (penetration included).
            completed, extras = run.run_engine(task, engine, settings if engine == "geometric" else {}, session,
                                               False, "auto", Progress())
            scores = run.score_task(task, engine, completed, extras, args.samples, overlaps)
            rows[engine] += scores
            means = run.means(scores)
            shares = [s["penetration"] for s in scores]
            worst = float(np.nanmax(shares)) if np.isfinite(shares).any() else np.nan
            print(f"{task.name:<22}{engine:<11}{len(scores):>6}{means['chamfer']:>9.4f}{means['iou']:>7.3f}"
                  f"{means['fscore']:>7.3f}{means['hidden_recall']:>10.3f}{means['watertight']:>8.2f}{worst:>9.3f}"
                  f"{extras['seconds']:>9.2f}{peak_mib():>10.0f}", flush=True)
    print(f"\nmeans over all parts ({args.samples} samples each way)")
    for engine in engines:
        means = run.means(rows[engine])
        print(f"MEAN {engine:<11} parts {means['parts']:>3}  Chamfer {means['chamfer']:.4f}  IoU {means['iou']:.3f}  "
              f"F {means['fscore']:.3f}  hidden recall {means['hidden_recall']:.3f} (clear of overlaps "
              f"{means['clear_hidden_recall']:.3f}, hidden in other parts {means['hidden_overlap']:.3f})  "
              f"closed {means['watertight']:.2f}")

    if args.big_faces and largest is not None:
        job = big_job(largest, args.big_faces)
        t0 = time.perf_counter()
        result = api.complete_parts(job, "geometric", settings=settings)
        seconds = time.perf_counter() - t0
        closed = np.mean([p.watertight for p in result.parts])
        print(f"\ntiming: {largest.name}, {len(job.labels)} parts subdivided to {job.mesh.num_faces:,} faces: "
              f"geometric {seconds:.2f} s (closed {closed:.2f}, peak {peak_mib():.0f} MiB)")


if __name__ == "__main__":
    main()
