"""Command line for pipelines: complete segments, segment meshes, or both (amodal segmentation).

    holopart complete chair.glb --out chair_parts.glb
    holopart complete scan.ply --labels scan_labels.npy --engine geometric
    holopart segment scan.ply --out scan_labels.npy
    holopart segment scan.ply --seeds scan_seeds.npy --out scan_labels.npy
    holopart amodal models/ --out results/ --seed 7 --set steps=30
    holopart engines
    holopart weights download --dest weights/ --allow-network
    holopart batch library/ --out results/ --engine geometric      # on Ray (docs/batch-and-server.md)
    holopart serve --token-file token.txt                          # the engine over HTTP, on Ray Serve

``holopart`` is the command ``pip install .`` provides; ``python -m holopart_blender.engine.cli`` is the same.

INPUT is a mesh file or a folder of them (not recursive). A GLB/GLTF scene with several meshes is read as one
segment per mesh (the official HoloPart input); a mesh plus ``--labels`` (or, in folder mode, a ``STEM.npy``
beside each mesh) gives one integer label per face (-1 = none). Results: a GLB with one node per part plus a
``.parts.json`` with each part's metadata; ``segment`` writes the labels as ``.npy`` and the segments as GLB.
A ``--out`` in a one-mesh format (.ply .stl .off) gets one file per part, ``STEM_PARTNAME.ply``; the line printed
for each input names every file written. Outputs are checked before any work: one that would overwrite an
input, lies under a file, is not writable or has too long a name is refused and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..wire.request import JobRequest
from .api import EngineSession
from .engines import COMPLETION_ENGINES, SEGMENTATION_ENGINES, completion_engine, segmentation_engine
from ..core.errors import EngineError, InputError
from .meshfiles import MESH_SUFFIXES, load_job, parts_targets, write_parts
from ..core.partjob import CompletedPart, PartJob
from ..core.progress import Progress


class ProgressBar:
    """A one-line progress bar on stderr (plain lines, at most one a second, when not a terminal)."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label, self.stream = label, stream
        self.tty = stream.isatty()
        self._last = 0.0

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 1.0 and fraction < 1.0:
            return
        self._last = now
        filled = int(30 * fraction)
        line = f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% {stage}: {message}"
        self.stream.write(("\r" + line[:160].ljust(160)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def parse_settings(pairs: list[str], seed: int | None) -> dict:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"--set takes NAME=VALUE, got {pair!r}", "for example --set steps=30")
        name, value = pair.split("=", 1)
        out[name.strip()] = value.strip()
    if seed is not None:
        out["seed"] = seed
    return out


def parse_parts(text: str | None) -> list[int] | None:
    """``--parts``: comma-separated integer labels, or None for all."""
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise InputError(f"--parts takes comma-separated integer labels, got {text!r}", "for example --parts 0,2,3") from None


def check_outputs(targets: list[Path], inputs: list[Path]) -> None:
    """Refuse, before any work, outputs that would overwrite an input or cannot be written."""
    sources = {p.resolve() for p in inputs}
    for target in targets:
        if target.resolve() in sources:
            raise InputError(f"the output {target} is also an input; it would be overwritten", "choose another --out")
        if target.is_dir():
            raise InputError(f"the output {target} is a folder", "give a file name, or a folder for STEM_COMMAND files")
        folder = target.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise InputError(f"cannot write {target}: {folder} is a file, not a folder", "choose another --out")
        if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise InputError(f"cannot write {target}: no permission to write in {folder}", "choose another --out")


def load_seeds(path: str | Path) -> np.ndarray:
    """``--seeds``: a ``.npy`` of one integer per face, a part label on the faces the artist marked, -1 elsewhere."""
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise InputError(f"the seed file {path.name} is not a .npy file", "save the seeds with numpy.save")
    try:
        seeds = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"no such seed file: {path}", "check the path") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read seeds from {path.name}: {str(exc).splitlines()[0]}",
                         "save the seeds with numpy.save as an integer array") from None
    if not isinstance(seeds, np.ndarray) or not np.issubdtype(seeds.dtype, np.integer):
        raise InputError(f"the seeds in {path.name} are {getattr(seeds, 'dtype', type(seeds))}, not integers",
                         "save one integer per face: a part label, or -1 for unmarked faces")
    if seeds.ndim != 1:
        raise InputError(f"the seeds in {path.name} have shape {seeds.shape}, not one value per face",
                         "save a one-dimensional array, one integer per face")
    if seeds.size and seeds.min() < -1:
        raise InputError(f"the seeds in {path.name} hold labels below -1 ({int(seeds.min())})",
                         "use -1 for unmarked faces and labels 0 and up for parts")
    return seeds.astype(np.int32)


def check_seeds(seeds: np.ndarray, num_faces: int, name: str) -> np.ndarray:
    """The seeds, when there is one per face of the mesh (in the mesh file's face order)."""
    if len(seeds) != num_faces:
        raise InputError(f"the seed array has {len(seeds)} values but {name} has {num_faces} faces",
                         "give one integer per face of the mesh file, in its face order")
    return seeds


def _inputs(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in MESH_SUFFIXES and p.is_file())
        if not files:
            raise InputError(f"no mesh files in {path}", f"the folder should hold {', '.join(MESH_SUFFIXES)} files")
        return files
    if not path.exists():
        raise InputError(f"no such file or folder: {path}", "check the path")
    return [path]


def _labels_for(path: Path, labels: Path | None, folder_mode: bool) -> Path | None:
    if labels is None and folder_mode and path.with_suffix(".npy").is_file():
        return path.with_suffix(".npy")
    return labels


def _output_for(args, path: Path, folder_mode: bool) -> Path:
    if args.out is None:
        return path.with_name(output_name(path, args.command))
    out = Path(args.out)
    if folder_mode or out.is_dir() or not out.suffix:
        return out / output_name(path, args.command)
    return out


def output_name(path: Path, command: str) -> str:
    """The first output file's name for an input in folder mode: ``STEM_COMMAND.glb`` (``.npy`` for segment)."""
    return f"{path.stem}_{command}{'.npy' if command == 'segment' else '.glb'}"


def planned_outputs(command: str, out: Path) -> list[Path]:
    """The files ``write_outputs`` writes at ``out`` (checked before any work)."""
    return [out, *parts_targets(out.with_suffix(".glb"), [])] if command == "segment" else [out, *parts_targets(out, [])]


def write_outputs(command: str, out: Path, source_name: str, job: PartJob, result) -> tuple[list[Path], int]:
    """Write a job's result as the command line does; returns the files written and the number of parts.
    ``holopart batch`` writes through this function too, so its files are the same."""
    if command == "segment":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, result.face_labels)
        segments = _segments_as_parts(PartJob(job.mesh, result.face_labels))
        return [out, *write_parts(out.with_suffix(".glb"), segments, {"source": source_name})], len(segments)
    written = write_parts(out, result.parts, {"source": source_name, "engine": result.engine,
                                              "segmentation_engine": result.segmentation_engine,
                                              "timings": result.timings, "warnings": result.warnings})
    return written, len(result.parts)


def _segments_as_parts(job: PartJob) -> list[CompletedPart]:
    parts = []
    for label in job.labels:
        vertices, faces, index = job.mesh.submesh(job.face_labels == label)
        parts.append(CompletedPart(label, job.part_name(label), vertices, faces, index, len(index), -1, "segment"))
    return parts


def request_from_args(args, operation: str) -> JobRequest:
    return JobRequest(operation, args.engine, parse_settings(args.set, args.seed), args.segmenter,
                      parse_settings(args.segment_set, args.seed if operation != "complete" else None),
                      parse_parts(args.parts))


def run(args) -> int:
    session = EngineSession()
    source = Path(args.input)
    files = _inputs(source)
    folder_mode = source.is_dir()
    if args.labels and folder_mode:
        raise InputError("--labels takes one file and so works with one input mesh",
                         "in folder mode put STEM.npy beside each STEM mesh")
    seeds = load_seeds(args.seeds) if getattr(args, "seeds", None) else None
    if seeds is not None:
        if folder_mode or args.labels:
            raise InputError("--seeds takes one input mesh and no --labels", "give one mesh file and its seeds")
        if args.segmenter not in ("auto", "seeded"):
            raise InputError(f"--seeds needs the seeded segmenter, not {args.segmenter}", "leave out --segmenter")
        args.segmenter = "seeded"
    request = request_from_args(args, args.command)
    failures = 0
    for path in files:
        bar = ProgressBar(path.name)
        try:
            labels = _labels_for(path, Path(args.labels) if args.labels else None, folder_mode)
            out = _output_for(args, path, folder_mode)
            check_outputs(planned_outputs(args.command, out), [path] + ([labels] if labels else []))
            job = load_job(path, labels)
            if seeds is not None:  # the seeded engine takes the job's labels as its seeds
                job = PartJob(job.mesh, check_seeds(seeds, job.mesh.num_faces, path.name))
            result = session.run(job, request, Progress(None if args.quiet else bar))
            bar.close()
            written, count = write_outputs(args.command, out, path.name, job, result)
            by = "" if args.command == "segment" else (f" by {result.engine} in "
                                                       f"{result.timings.get('total', 0):.2f} s")
            print(f"{path.name}: {count} parts{by} -> {', '.join(map(str, written))}")
            for warning in result.warnings:
                print(f"  warning: {warning}", file=sys.stderr)
        except EngineError as exc:
            bar.close()
            failures += 1
            print(f"{path.name}: error ({exc.kind}): {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
                  file=sys.stderr)
    return 1 if failures else 0


def list_engines() -> int:
    print(json.dumps(_engine_table(), indent=1))
    return 0


def _engine_table() -> dict:
    table = {}
    for kind, names, load in (("completion", COMPLETION_ENGINES, completion_engine),
                              ("segmentation", SEGMENTATION_ENGINES, segmentation_engine)):
        for name in names:
            try:
                cls = load(name)
                ok, reason = cls.availability()
                table[f"{kind}:{name}"] = {"available": ok, "reason": reason, "description": cls.description,
                                           "settings": {s.name: {"default": s.default, "help": s.help}
                                                        for s in cls.settings_spec}}
            except ImportError as exc:
                table[f"{kind}:{name}"] = {"available": False, "reason": str(exc)}
    return table


def _settings_help() -> str:
    lines = ["engine settings (give them with --set NAME=VALUE):"]
    for key, info in _engine_table().items():
        state = "" if info["available"] else f"  [not available here: {info['reason']}]"
        lines.append(f"  {key}: {info.get('description', '')}{state}")
        for name, setting in info.get("settings", {}).items():
            lines.append(f"      {name} (default {setting['default']!r}): {setting['help']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="holopart", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    help_text = {"complete": "complete the labelled segments of each input into whole parts",
                 "segment": "write one part label per face (.npy) and the segments (.glb)",
                 "amodal": "segment, then complete every part (amodal segmentation)"}
    for name, text in help_text.items():
        sub = commands.add_parser(name, help=text, description=text, epilog=_settings_help,
                                  formatter_class=_LazyEpilogFormatter)
        sub.add_argument("input", help="a mesh file (.glb .gltf .obj .ply .stl .off) or a folder of them")
        sub.add_argument("--out", help="output file, or folder (default: beside the input, STEM_COMMAND.glb/.npy)")
        sub.add_argument("--seed", type=int, help="random seed, for engines that take one (same seed, same result)")
        if name != "segment":
            _add_engine_options(sub)
        if name != "amodal":
            sub.add_argument("--labels", help="a .npy file with one integer part label per face (-1 = none)")
        if name == "segment":
            sub.add_argument("--seeds", help="a .npy with one integer per face: the part label on the faces you "
                             "marked, -1 elsewhere; grows them with the seeded segmenter")
        if name == "complete":
            sub.add_argument("--parts", help="comma-separated labels to complete (default: all)")
        if name != "complete":
            _add_segmenter_options(sub)
        sub.add_argument("--quiet", action="store_true", help="no progress bar")
    text = "run every asset of a folder (recursive) or a CSV/JSONL manifest on Ray (docs/batch-and-server.md)"
    sub = commands.add_parser("batch", help=text, description=text, epilog=_settings_help,
                              formatter_class=_LazyEpilogFormatter)
    sub.add_argument("input", help="a folder of mesh files (searched recursively) or a .csv/.jsonl manifest")
    sub.add_argument("--out", required=True, help="output folder: the command line's files, batch.csv, batch.json")
    sub.add_argument("--operation", default="amodal", choices=["amodal", "complete", "segment"])
    sub.add_argument("--seed", type=int, help="random seed, for engines that take one (same seed, same result)")
    _add_engine_options(sub)
    _add_segmenter_options(sub)
    sub.add_argument("--address", help="a running Ray cluster: auto, or ray://HOST:PORT (default: start a local one)")
    sub.add_argument("--cpus", type=int, help="CPUs of the local Ray instance (default: all of this machine's)")
    sub.add_argument("--actors", type=int, help="engine actors (default: one per CPU, or per GPU for holopart)")
    sub.add_argument("--timeout", type=float, default=1800.0, help="seconds one asset may take (default 1800)")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    text = "serve the engine over HTTP as a Ray Serve application (docs/batch-and-server.md)"
    sub = commands.add_parser("serve", help=text, description=text)
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sub.add_argument("--port", type=int, default=8700, help="port (default 8700)")
    sub.add_argument("--token-file", required=True, help="a file holding the access token (at least 16 characters)")
    sub.add_argument("--max-body-mb", type=float, default=512.0, help="largest job body in MB (default 512)")
    sub.add_argument("--max-job-seconds", type=float, default=1800.0, help="longest job in seconds (default 1800)")
    sub.add_argument("--set", action="append", metavar="NAME=VALUE",
                     help="a completion setting the server fixes for every job (repeatable), e.g. weights=/srv/holopart")
    sub.add_argument("--address", help="a running Ray cluster: auto, or ray://HOST:PORT (default: start a local one)")
    commands.add_parser("engines", help="list engines, whether they can run here, and their settings")
    commands.add_parser("weights", add_help=False, help="download or check the HoloPart weights "
                        "(holopart weights --help)")
    return parser


def _add_engine_options(sub) -> None:
    sub.add_argument("--engine", default="auto", choices=["auto", *COMPLETION_ENGINES],
                     help="completion engine; auto = holopart when its weights are installed, else geometric")
    sub.add_argument("--set", action="append", metavar="NAME=VALUE", help="a completion engine setting (repeatable)")


def _add_segmenter_options(sub) -> None:
    sub.add_argument("--segmenter", default="auto", choices=list(SEGMENTATION_ENGINES),
                     help="segmentation engine; auto = loose parts when the mesh has several, else spectral")
    sub.add_argument("--segment-set", action="append", metavar="NAME=VALUE",
                     help="a segmentation engine setting (repeatable), e.g. num_parts=6")


class _LazyEpilogFormatter(argparse.RawDescriptionHelpFormatter):
    """Builds the settings list only when --help is shown (it inspects every engine)."""

    def add_text(self, text):
        super().add_text(text() if callable(text) else text)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["weights"]:  # its own command line, torch-free (``engine.holopart.weights``)
        from .holopart import weights
        return weights.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "engines":
        return list_engines()
    for attr, default in (("engine", "auto"), ("set", None), ("segmenter", "auto"), ("segment_set", None),
                          ("labels", None), ("parts", None)):
        if not hasattr(args, attr):
            setattr(args, attr, default)
    try:
        if args.command == "batch":
            from .batch import run_batch
            return run_batch(args, request_from_args(args, args.operation))
        if args.command == "serve":
            from .serve import run_server
            return run_server(args)
        return run(args)
    except EngineError as exc:
        print(f"error ({exc.kind}): {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
