"""Benchmark runner: score completion engines (or segmentation + completion) on a folder of part assets.

    python -m devtools.evaluation.run ../shared/benchmark/parts --engine geometric --out out/bench
    python -m devtools.evaluation.run DATA --engine hull --engine geometric --samples 500000
    python -m devtools.evaluation.run DATA --amodal --segmentation auto --engine geometric
    python -m devtools.evaluation.run DATA --engine holopart --set weights=PATH --set steps=50

DATA holds one GLB per object with one complete part per mesh (the format of ``benchmark/parts``). Each
object becomes a task (``tasks.build_task``: the visible faces, labelled by part), every engine completes
it, and every part is scored (``metrics``). The ``visible`` row (each segment returned unchanged) is always
run: it is the floor every engine must beat. With ``--amodal`` the engines get the visible surface without
labels and segment it first (``--segmentation``); each ground-truth part is then scored against the
predicted part that overlaps its visible faces most (IoU by face area), and the segmentation's mIoU is
reported.

Writes to ``--out``: ``parts.csv`` (a row per engine and part), ``results.json`` (rows, per-object and
overall means, the settings), ``summary.md`` (the overall and per-object tables), ``objects/NAME.md``
(one object's parts) and ``pictures/NAME.png`` (ground truth beside each engine's result). While it runs it
prints each engine's progress and, after each object, the time taken and an estimate of the time left.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import holopart_blender.engine  # noqa: F401  (before numpy: its thread settings apply, as in the worker)
import numpy as np

from holopart_blender.engine.api import EngineSession
from holopart_blender.wire.request import JobRequest
from holopart_blender.engine.cli import ProgressBar, parse_settings
from holopart_blender.core.errors import EngineError
from holopart_blender.core.meshmath import TOL, face_areas
from holopart_blender.engine.meshfiles import safe_name
from holopart_blender.core.partjob import PartJob
from holopart_blender.core.progress import Progress
from . import metrics
from .pictures import side_by_side
from .tasks import Task, build_task

FLOOR = "visible"
# Columns of the tables, in order, with how to format them; means skip NaN (parts that failed).
COLUMNS = [("chamfer", "CD", "{:.4f}"), ("iou", "IoU", "{:.3f}"), ("fscore", "F", "{:.3f}"),
           ("hidden_recall", "hidden recall", "{:.3f}"), ("clear_hidden_recall", "hidden recall clear of overlaps",
                                                           "{:.3f}"),
           ("hidden_overlap", "hidden in other parts", "{:.3f}"), ("hidden_precision", "hidden precision", "{:.3f}"),
           ("part_chamfer", "CD (part frame)", "{:.4f}"), ("part_iou", "IoU (part frame)", "{:.3f}"),
           ("part_fscore", "F (part frame)", "{:.3f}"), ("success", "success", "{:.3f}"),
           ("watertight", "watertight", "{:.3f}"), ("penetration", "penetration", "{:.4f}"),
           ("seconds", "s/object", "{:.2f}")]


def run_engine(task: Task, engine: str, settings: dict, session: EngineSession, amodal: bool,
               segmentation: str, progress: Progress, segmented_floor: bool = False) -> tuple[dict[int, tuple], dict]:
    """Complete one task with one engine: ({truth label: (vertices, faces, watertight)}, extras). With
    ``amodal`` the floor keeps the true segments unless ``segmented_floor`` (then it gets the predicted ones)."""
    t0 = time.perf_counter()
    if amodal and (engine != FLOOR or segmented_floor):
        job = PartJob(task.job.mesh, np.full(task.job.mesh.num_faces, -1, np.int32))
        request = JobRequest("amodal", engine, settings, segmentation)
    else:
        job, request = task.job, JobRequest("complete", engine, settings if engine != FLOOR else {})
    result = session.run(job, request, progress)
    seconds = time.perf_counter() - t0
    by_label = {p.label: p for p in result.parts}
    extras = {"seconds": seconds, "engine": result.engine}
    if request.operation == "complete":
        return {k: (p.vertices, p.faces, p.watertight) for k, p in by_label.items()}, extras
    area = face_areas(task.job.mesh.vertices, task.job.mesh.faces)
    extras["segmentation_miou"] = metrics.segmentation_miou(result.face_labels, task.job.face_labels, area)
    matched = {}
    for label in task.job.labels:
        truth = task.job.face_labels == label
        best, best_iou = None, 0.0
        for predicted, part in by_label.items():
            mine = result.face_labels == predicted
            inter = area[truth & mine].sum()
            iou = inter / max(area[truth | mine].sum(), TOL.tiny)
            if iou > best_iou:
                best, best_iou = part, iou
        if best is not None:
            matched[label] = (best.vertices, best.faces, best.watertight)
    return matched, extras


def truth_overlaps(task: Task) -> dict[int, np.ndarray]:
    """Per labelled part, the voxel grid of the other truth parts' insides (for the overlap scores)."""
    labels = task.job.labels
    solids = [metrics.solid_voxels(task.parts[label].vertices, task.parts[label].faces) for label in labels]
    coverage = np.sum(solids, axis=0)
    return {label: coverage - solid > 0 for label, solid in zip(labels, solids)}


def score_task(task: Task, engine: str, completed: dict[int, tuple], extras: dict, samples: int,
               overlaps: dict[int, np.ndarray] | None = None) -> list[dict]:
    """One row per ground-truth part that has visible faces; ``overlaps`` (``truth_overlaps``) adds the
    overlap scores."""
    labels = task.job.labels
    overlaps = overlaps or {}
    results = [completed.get(label, (np.zeros((0, 3)), np.zeros((0, 3), np.int64), False)) for label in labels]
    pen = metrics.penetration([(v, f) for v, f, _ in results])
    rows = []
    for label, (vertices, faces, watertight), penetration in zip(labels, results, pen):
        truth, visible = task.parts[label], task.segment(label)
        scores = metrics.score_part(vertices, faces, truth.vertices, truth.faces, visible.vertices, visible.faces,
                                    samples, others=overlaps.get(label))
        rows.append({"object": task.name, "part": truth.name, "engine": engine, **scores,
                     "watertight": bool(watertight) if len(faces) else False, "penetration": penetration,
                     "faces": int(len(faces)), "seconds": extras["seconds"],
                     **({"segmentation_miou": extras["segmentation_miou"]} if "segmentation_miou" in extras else {})})
    return rows


def means(rows: list[dict]) -> dict:
    """Mean of each column over parts (NaN skipped); seconds per object (not per part)."""
    out = {}
    for key, _, _ in COLUMNS:
        values = np.array([float(r[key]) for r in rows if key in r], np.float64)
        if key == "seconds":
            per_object = {r["object"]: r["seconds"] for r in rows}
            values = np.array(list(per_object.values()), np.float64)
        out[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    if any("segmentation_miou" in r for r in rows):
        per_object = {r["object"]: r["segmentation_miou"] for r in rows}
        out["segmentation_miou"] = float(np.mean(list(per_object.values())))
    out["parts"] = len(rows)
    return out


def table(rows_by_engine: dict[str, dict]) -> str:
    keys = [c for c in COLUMNS if any(np.isfinite(m.get(c[0], np.nan)) for m in rows_by_engine.values())]
    seg = any("segmentation_miou" in m for m in rows_by_engine.values())
    head = ["engine", "parts", *[title for _, title, _ in keys]] + (["seg. mIoU"] if seg else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for engine, m in rows_by_engine.items():
        cells = [engine, str(m["parts"])] + [fmt.format(m[k]) if np.isfinite(m[k]) else "–" for k, _, fmt in keys]
        if seg:
            cells.append(f"{m['segmentation_miou']:.3f}" if "segmentation_miou" in m else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def part_table(rows: list[dict]) -> str:
    keys = [("chamfer", "CD", "{:.4f}"), ("iou", "IoU", "{:.3f}"), ("fscore", "F", "{:.3f}"),
            ("hidden_recall", "hidden recall", "{:.3f}"), ("watertight", "watertight", "{}")]
    lines = ["| part | engine | " + " | ".join(t for _, t, _ in keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for r in rows:
        cells = [fmt.format(r[k]) if not (isinstance(r[k], float) and np.isnan(r[k])) else "–" for k, _, fmt in keys]
        lines.append(f"| {r['part']} | {r['engine']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.evaluation.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="folder of GLB files, one complete part per mesh (or one such file)")
    parser.add_argument("--engine", action="append", default=[],
                        help="completion engine to score (repeatable; default geometric); 'visible' always runs")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="engine setting for every engine that has it (repeatable)")
    parser.add_argument("--amodal", action="store_true", help="segment the unlabelled visible surface first")
    parser.add_argument("--segmentation", default="auto", help="segmentation engine for --amodal (default auto)")
    parser.add_argument("--samples", type=int, default=20_000,
                        help="surface samples per mesh for the metrics (default 20000, the reference scorer's "
                             "count; 500000 for the full count, many times slower)")
    parser.add_argument("--views", type=int, default=64, help="ray directions of the visibility test (default 64)")
    parser.add_argument("--cache", type=Path, default=Path(".cache/benchmark"), help="task cache folder")
    parser.add_argument("--out", type=Path, default=Path("out/benchmark"), help="output folder")
    parser.add_argument("--no-pictures", action="store_true", help="skip the pictures")
    args = parser.parse_args(argv)

    files = sorted(args.data.glob("*.glb")) if args.data.is_dir() else [args.data]
    if not files:
        parser.error(f"no .glb files in {args.data}")
    engines = [FLOOR] + [e for e in dict.fromkeys(args.engine or ["geometric"]) if e != FLOOR]
    settings = parse_settings(args.set, None)
    for folder in ("objects", "pictures"):
        (args.out / folder).mkdir(parents=True, exist_ok=True)
    session, rows = EngineSession(), []
    estimate = Estimate(files)
    print(f"{len(files)} objects, engines {', '.join(engines)}, {args.samples} samples per mesh", file=sys.stderr)
    for index, path in enumerate(files):
        task = build_task(path, args.cache, args.views)
        panels = [("ground truth", [(task.parts[k].vertices, task.parts[k].faces) for k in task.job.labels])]
        nothing = (np.zeros((0, 3)), np.zeros((0, 3), np.int64))
        overlaps = truth_overlaps(task)
        object_rows = []
        for engine in engines:
            bar = ProgressBar(f"[{index + 1}/{len(files)}] {task.name} {engine}")
            try:
                own = _own_settings(engine, settings)
                completed, extras = run_engine(task, engine, own, session, args.amodal, args.segmentation,
                                               Progress(bar))
            except EngineError as exc:
                bar.close()
                print(f"{task.name} {engine}: {exc.message} ({exc.hint})", file=sys.stderr)
                completed, extras = {}, {"seconds": float("nan")}
            bar.close()
            object_rows += score_task(task, engine, completed, extras, args.samples, overlaps)
            panels.append((engine, [completed[k][:2] if k in completed else nothing for k in task.job.labels]))
        rows += object_rows
        (args.out / "objects" / f"{safe_name(task.name)}.md").write_text(
            f"# {task.name}\n\n" + table({e: means([r for r in object_rows if r["engine"] == e]) for e in engines})
            + "\n" + part_table(object_rows), encoding="utf-8")
        if not args.no_pictures:
            side_by_side(panels, args.out / "pictures" / f"{safe_name(task.name)}.png")
        print(f"[{index + 1}/{len(files)}] {task.name} done: {estimate.line(index + 1)}", file=sys.stderr, flush=True)
    _write(args, files, engines, settings, rows)
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    return 0


class Estimate:
    """The time left of a run, from the time taken so far per byte of the input files done (bigger files hold
    bigger meshes, which take longer to build, complete and score)."""

    def __init__(self, files: list[Path]):
        self.sizes = [max(f.stat().st_size, 1) for f in files]
        self.start = time.perf_counter()

    def line(self, done: int) -> str:
        elapsed = time.perf_counter() - self.start
        left = elapsed * sum(self.sizes[done:]) / sum(self.sizes[:done])
        return f"{_clock(elapsed)} elapsed, about {_clock(left)} left"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _own_settings(engine: str, settings: dict) -> dict:
    """The ``--set`` values this engine knows (the floor takes none)."""
    from holopart_blender.engine.engines import completion_engine
    if engine == FLOOR or engine == "auto":
        return {} if engine == FLOOR else settings
    names = {s.name for s in completion_engine(engine).settings_spec}
    return {k: v for k, v in settings.items() if k in names}


def _write(args, files, engines, settings, rows) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out / "parts.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    overall = {e: means([r for r in rows if r["engine"] == e]) for e in engines}
    objects = sorted({r["object"] for r in rows})
    per_object = {o: {e: means([r for r in rows if r["engine"] == e and r["object"] == o]) for e in engines}
                  for o in objects}
    command = "python -m devtools.evaluation.run " + " ".join(sys.argv[1:])
    (args.out / "results.json").write_text(json.dumps(
        {"command": command, "files": [f.name for f in files], "engines": engines, "settings": settings,
         "amodal": args.amodal, "segmentation": args.segmentation if args.amodal else None,
         "samples": args.samples, "views": args.views, "overall": overall, "objects": per_object, "parts": rows},
        indent=1, default=float), encoding="utf-8")
    lines = [f"# Benchmark: {len(files)} objects, {len(rows) // len(engines)} parts\n",
             f"`{command}`\n", "## Overall (means over parts)\n", table(overall), "## Per object\n"]
    for o in objects:
        lines += [f"### {o}\n", table(per_object[o])]
    (args.out / "summary.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
