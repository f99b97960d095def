"""Automatic and seeded segmentation of one-piece remeshes: class-agnostic mIoU against the benchmark's parts.

    .venv/bin/python tests/benchmarks/bench_segmentation.py [--remesh 128] [--remesh 96:1:0 ...]
        [--engine auto] [--set NAME=VALUE ...] [--no-seeded] [--seeded-set NAME=VALUE ...]
        [--whole-task geometric] [--samples 20000]
        [--max-faces 200000] [--seed 0] [--cache .cache/benchmark] [--asset NAME.glb ...]

Each benchmark object is remeshed into one closed piece (marching cubes of its outside, ``build_remesh_task``),
so connectivity gives nothing away, and every face carries the label of the nearest part as ground truth.
``--remesh RESOLUTION[:OFFSET[:SMOOTHING]]`` (repeatable) picks the remeshings: grid cells along the longest
axis, iso-level offset in cells (0..1, outwards) and Taubin smoothing steps; default ``128`` (the project's
own remesh) and three others: ``96:1:0``, ``160:0.5:10``, ``128:0.5:3``.

The score is class-agnostic mIoU: each true part's best IoU (by face area) with any predicted segment,
averaged over the object's parts. Printed per remeshing and object: one segment for everything and k-means
on face positions and normals with the true part count (references), the engine (part count chosen
automatically: chosen/true; ``--set`` changes its settings), then the ``seeded`` engine with 1 and 3 seed
faces per true part (``devtools/evaluation/seeds.py`` picks them: first the part's most interior face, then
faces spread over it; ``--seeded-set`` changes its settings, e.g. ``thickness=0``); each with its seconds,
and the process's peak memory so far. Then, per remeshing, the means over objects and over all parts, and
at the end the means over every remeshing.

``--whole-task ENGINE`` adds the whole task on each remesh (Complete All Parts on a one-piece mesh): the
mesh is segmented by the automatic engine and every segment completed by ENGINE, or returned unchanged
(``visible``); each true part is scored against the predicted part overlapping it most
(``devtools/evaluation/run.py``, ``--samples`` surface samples per mesh). Printed per object: the IoU and F
of both and their paired gain; then the mean gain per part with a 95% bootstrap interval (2000 resamplings
of the parts, seeded) and the objects made worse.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import holopart_blender.engine  # noqa: E402, F401  (before numpy: its thread settings apply, as in the worker)
import numpy as np  # noqa: E402
from scipy.cluster.vq import kmeans2  # noqa: E402
from conftest import BENCHMARK, ROOT  # noqa: E402
from holopart_blender.engine import api  # noqa: E402
from holopart_blender.engine.cli import parse_settings  # noqa: E402
from holopart_blender.core.progress import Progress  # noqa: E402
from holopart_blender.core.meshmath import face_areas, face_normals  # noqa: E402
from devtools.evaluation.metrics import segmentation_miou  # noqa: E402
from devtools.evaluation.run import FLOOR, run_engine, score_task  # noqa: E402
from devtools.evaluation.seeds import seed_faces  # noqa: E402
from devtools.evaluation.tasks import build_remesh_task  # noqa: E402

REMESHINGS = ("128", "96:1:0", "160:0.5:10", "128:0.5:3")
# Columns averaged in the summaries (a row holds them in this order, then the true part count).
SCORES = ("one", "kmeans", "auto", "seeded1", "seeded3")


def kmeans_reference(vertices: np.ndarray, faces: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means (k-means++ start, seeded) on face centres and unit normals, positions scaled to unit spread."""
    centre = vertices[faces].mean(1)
    centre = (centre - centre.mean(0)) / centre.std(0).mean()
    features = np.concatenate([centre, face_normals(vertices, faces)], 1)
    return kmeans2(features, k, minit="++", seed=np.random.default_rng(seed))[1]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def remeshing(text: str) -> tuple[int, float, int]:
    resolution, offset, smoothing = (text.split(":") + ["0", "0"])[:3]
    return int(resolution), float(offset), int(smoothing)


def timed(call):
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="auto", help="automatic segmentation engine (auto or spectral)")
    parser.add_argument("--remesh", action="append", type=remeshing,
                        help="RESOLUTION[:OFFSET[:SMOOTHING]] (repeatable; default: " + ", ".join(REMESHINGS) + ")")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the automatic engine (repeatable)")
    parser.add_argument("--no-seeded", action="store_true", help="leave out the seeded columns")
    parser.add_argument("--seeded-set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the seeded engine (repeatable)")
    parser.add_argument("--whole-task", metavar="ENGINE", help="also complete the segments with ENGINE (§3)")
    parser.add_argument("--samples", type=int, default=20_000, help="surface samples per mesh for --whole-task")
    parser.add_argument("--max-faces", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "benchmark")
    parser.add_argument("--asset", action="append", help="benchmark file name (repeatable; default: all)")
    args = parser.parse_args()

    settings, seeded_settings = parse_settings(args.set, args.seed), parse_settings(args.seeded_set, None)
    paths = [BENCHMARK / name for name in args.asset] if args.asset else sorted(BENCHMARK.glob("*.glb"))
    means = {}
    for resolution, offset, smoothing in args.remesh or [remeshing(text) for text in REMESHINGS]:
        name = f"{resolution}:{offset:g}:{smoothing}"
        print(f"\nremesh {name} (resolution:offset:smoothing)")
        print(f"{'object':<22}{'faces':>9}{'one seg':>9}{'k-means':>9}{args.engine:>8}{'k/true':>8}{'s':>7}"
              f"{'1 seed':>8}{'s':>7}{'3 seeds':>8}{'s':>7}{'peak MiB':>10}")
        rows = []
        for path in paths:
            task = build_remesh_task(path, args.cache, resolution, args.max_faces, offset, smoothing)
            mesh, truth = task.job.mesh, task.job.face_labels
            area = face_areas(mesh.vertices, mesh.faces)
            k_true = len(np.unique(truth))
            score = lambda labels: segmentation_miou(labels, truth, area)  # noqa: E731
            one = score(np.zeros(len(truth)))
            kmeans = score(kmeans_reference(mesh.vertices, mesh.faces, k_true, args.seed))
            labels, seconds = timed(lambda: api.segment(mesh, args.engine, settings))
            row = [one, kmeans, score(labels)]
            text = (f"{task.name:<22}{mesh.num_faces:>9,}{one:>9.3f}{kmeans:>9.3f}{row[2]:>8.3f}"
                    f"{f'{len(np.unique(labels[labels >= 0]))}/{k_true}':>8}{seconds:>7.2f}")
            for per_part in () if args.no_seeded else (1, 3):
                seeds = seed_faces(mesh, truth, per_part)
                grown, seconds = timed(lambda: api.segment(mesh, "seeded", seeded_settings, seeds=seeds))
                row.append(score(grown))
                text += f"{row[-1]:>8.3f}{seconds:>7.2f}"
            rows.append(row + [np.nan] * (len(SCORES) - len(row)) + [k_true])
            print(text + ("" if not args.no_seeded else " " * 30) + f"{peak_mib():>10.0f}", flush=True)
        rows = np.array(rows)
        by_object = rows[:, :-1].mean(0)
        by_part = (rows[:, :-1] * rows[:, -1:]).sum(0) / rows[:, -1].sum()
        means[name] = by_object
        for label, values in (("mean over objects", by_object), (f"mean over {int(rows[:, -1].sum())} parts", by_part)):
            print(f"{label:<31}" + "".join(f"{v:>9.3f}" if i < 2 else f"{v:>8.3f}" + " " * (15 if i == 2 else 7)
                                          for i, v in enumerate(values)))
        if args.whole_task:
            whole_task([build_remesh_task(p, args.cache, resolution, args.max_faces, offset, smoothing) for p in paths],
                       args)
    print("\nmean over objects, per remeshing:    " + "  ".join(SCORES))
    for name, values in means.items():
        print(f"{name:<36}" + "  ".join(f"{v:.3f}" for v in values))
    print(f"{'all remeshings':<36}" + "  ".join(f"{v:.3f}" for v in np.mean(list(means.values()), 0)))


def whole_task(tasks, args):
    """Completion after automatic segmentation against the predicted segments unchanged (see the module doc)."""
    session = api.EngineSession()
    print(f"\nwhole task: {args.engine} segments completed by {args.whole_task}, against them unchanged")
    print(f"{'object':<22}{'IoU unchanged':>15}{'IoU completed':>15}{'gain':>8}{'F unchanged':>13}"
          f"{'F completed':>13}{'gain':>8}{'s':>8}")
    gains, worse = [], []
    for task in tasks:
        scores = {}
        for engine in (FLOOR, args.whole_task):
            completed, extras = run_engine(task, engine, {}, session, True, args.engine,
                                           Progress(), segmented_floor=True)
            rows = score_task(task, engine, completed, extras, args.samples)
            scores[engine] = np.array([[r["iou"], r["fscore"]] for r in rows], np.float64)
        gain = scores[args.whole_task] - scores[FLOOR]
        gains.append(gain)
        mean = np.nanmean(gain, 0)
        if (mean < 0).any():
            worse.append(task.name)
        before, after = np.nanmean(scores[FLOOR], 0), np.nanmean(scores[args.whole_task], 0)
        print(f"{task.name:<22}{before[0]:>15.3f}{after[0]:>15.3f}{mean[0]:>+8.3f}{before[1]:>13.3f}{after[1]:>13.3f}"
              f"{mean[1]:>+8.3f}{extras['seconds']:>8.1f}", flush=True)
    gains = np.concatenate(gains)
    gains = gains[np.isfinite(gains).all(1)]
    rng = np.random.default_rng(args.seed)
    draws = np.stack([gains[rng.integers(0, len(gains), len(gains))].mean(0) for _ in range(2000)])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    for i, name in enumerate(("IoU", "F")):
        print(f"{name} gain per part: {gains[:, i].mean():+.4f}, 95% interval [{low[i]:+.4f}, {high[i]:+.4f}] "
              f"over {len(gains)} parts")
    print(f"objects made worse (IoU or F): {', '.join(worse) or 'none'}")


if __name__ == "__main__":
    main()
