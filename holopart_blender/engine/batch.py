"""Batch amodal segmentation of asset libraries on Ray: ``holopart batch INPUT --out OUT``.

    holopart batch library/ --out results/                       # a local Ray instance with this machine's CPUs
    holopart batch assets.csv --out results/ --engine holopart --address auto   # a running Ray cluster

INPUT is a folder, searched recursively for mesh files (``STEM.npy`` beside a mesh is its face labels, as in the
command line's folder mode), or a manifest: a ``.csv`` with a header or a ``.jsonl``, one asset a row, with
``path``, optional ``labels`` (a ``.npy``) and optional ``settings`` (a JSON object of completion settings,
over ``--set``); relative paths are relative to the manifest. Every node must be able to read the inputs
(a shared file system); outputs come back through Ray's object store and the driver writes them.

Each asset is one independent unit: a loading task (``meshfiles.load_job``, on any CPU) feeds a call on an
engine actor, which keeps its ``EngineSession`` (and so a loaded model) for its lifetime; up to ``DEPTH`` assets
wait at each actor, so the next asset is read while the current one completes. CPU engines get one actor per
CPU, the learned engine one actor per GPU (``num_gpus=1``). The actor writes the result with the command
line's own ``cli.write_outputs`` into a scratch folder and returns the files' bytes; the driver puts them
where the command line's folder mode would (``OUT/<subfolder>/STEM_OPERATION.glb`` ...), so they are the same
files. A failed asset, or one past ``--timeout``, is reported and the others go on; an actor that dies
(a crash, a lost node) is restarted by Ray and its in-flight assets are retried once.

Results are content-addressed: an asset's key is a hash of its input bytes (mesh and labels), its request,
the engine version (a hash of the engine's source) and where its output goes under OUT. A record ``OUT/.holopart-batch/KEY.json`` is written
after the outputs, so a rerun skips every asset whose record and outputs exist and resumes after a crash.
The summary goes to ``OUT/batch.json`` and ``OUT/batch.csv``: per asset its status (done, skipped, failed,
timeout), seconds, parts, engine and error.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import Cancelled, EngineError, InputError
from ..core.hashing import file_sha256
from ..core.progress import Progress
from ..wire.request import JobRequest
from .meshfiles import MESH_SUFFIXES

RECORDS = ".holopart-batch"  # under OUT: one record per finished asset, named by its key
DEPTH = 2  # assets waiting at one actor: the one it runs and the one being read
KILL_GRACE = 30.0  # seconds past --timeout after which an actor that did not stop is killed
COLUMNS = ("input", "status", "seconds", "parts", "engine", "error", "outputs", "key")
PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class Asset:
    """One input: its mesh file, optional labels file and settings, and where its outputs go."""

    path: Path
    labels: Path | None
    settings: dict
    out: Path  # the first output file (STEM_OPERATION.glb, or .npy for segment)
    row: dict = field(default_factory=dict)  # its line in the summary


# -- input ---------------------------------------------------------------------------------------------------
def find_assets(source: Path, out: Path, operation: str) -> list[Asset]:
    """The assets of a folder (recursive) or a manifest, each with its output path under ``out``."""
    from .cli import output_name

    if source.is_dir():
        skip = out.resolve()
        found = sorted(p for p in source.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()
                       and skip not in p.resolve().parents and not any(part.startswith(".") for part in
                                                                       p.relative_to(source).parts))
        if not found:
            raise InputError(f"no mesh files in {source} or its subfolders",
                             f"the folder should hold {', '.join(MESH_SUFFIXES)} files")
        rows = [(p, p.with_suffix(".npy") if p.with_suffix(".npy").is_file() else None, {}) for p in found]
        base = source
    elif source.is_file():
        rows, base = _read_manifest(source), source.parent
    else:
        raise InputError(f"no such file or folder: {source}", "give a folder of meshes or a .csv/.jsonl manifest")
    assets = []
    for path, labels, settings in rows:
        try:
            relative = path.resolve().relative_to(base.resolve()).parent
        except ValueError:  # a manifest entry outside the manifest's folder: its output goes to OUT itself
            relative = Path()
        assets.append(Asset(path, labels, settings, out / relative / output_name(path, operation)))
    return assets


def _read_manifest(path: Path) -> list[tuple[Path, Path | None, dict]]:
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise InputError(f"the manifest {path.name} is not .csv or .jsonl", "give a folder, a .csv or a .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the manifest {path.name}: {exc}", "save it as UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        entries = list(csv.DictReader(io.StringIO(text)))
    elif path.suffix.lower() == ".jsonl":
        entries = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path.name} line {number} is not JSON: {exc.msg}", "one object a line") from None
    rows = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry.get("path"):
            raise InputError(f"{path.name} entry {number} has no 'path'", "each entry needs path, optional labels, settings")
        settings = entry.get("settings") or {}
        if isinstance(settings, str):
            try:
                settings = json.loads(settings)
            except json.JSONDecodeError:
                settings = None
        if not isinstance(settings, dict):
            raise InputError(f"{path.name} entry {number}: 'settings' is not a JSON object",
                             'for example {"resolution": 128}')
        labels = entry.get("labels") or None
        rows.append((path.parent / entry["path"], path.parent / labels if labels else None, settings))
    if not rows:
        raise InputError(f"the manifest {path.name} lists no asset", "one asset a row: path[,labels][,settings]")
    return rows


# -- keys and records ----------------------------------------------------------------------------------------
def engine_version() -> str:
    """A hash of the engine's source (engine/, core/, wire/): a changed engine never reuses an old result."""
    digest = hashlib.sha256()
    for folder in ("engine", "core", "wire"):
        for file in sorted((PACKAGE / folder).rglob("*.py")):
            digest.update(file.relative_to(PACKAGE).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def asset_key(asset: Asset, request: JobRequest, version: str, out: Path) -> str:
    """The hash of the asset's input bytes, its request, the engine version and its output's place under ``out``
    (which names the files and the sidecar's ``source``: two copies of one file are two results)."""
    digest = hashlib.sha256(b"holopart-batch 1\0" + version.encode() + b"\0")
    digest.update(json.dumps(request.to_dict(), sort_keys=True).encode() + b"\0")
    digest.update(asset.out.relative_to(out).as_posix().encode() + b"\0" + asset.path.name.encode() + b"\0")
    for file in (asset.path, asset.labels):
        digest.update(_file_hash(file).encode() + b"\0")
    return digest.hexdigest()[:32]


def _file_hash(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return file_sha256(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", "check the path") from None


def _finished(record: Path, out_root: Path) -> dict | None:
    """The record of an asset finished earlier, when it and every output it lists exist."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if all((out_root / name).is_file() for name in data.get("outputs", [])):
        return data
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


# -- the Ray side --------------------------------------------------------------------------------------------
def load_asset(path: str, labels: str | None):
    """Loading task: the asset's job, or ``{"kind", "message"}`` when it cannot be read."""
    from .meshfiles import load_job

    try:
        return load_job(path, labels)
    except EngineError as exc:
        return exc.to_dict()


class EngineActor:
    """Runs assets one at a time on one ``EngineSession``, which keeps loaded engines between them."""

    def __init__(self):
        from .api import EngineSession

        self.session = EngineSession()

    def run(self, job, request: dict, operation: str, out_name: str, source_name: str, timeout: float) -> dict:
        from .cli import write_outputs

        if isinstance(job, dict):  # the loading task failed
            return {"status": "failed", "error": f"{job['kind']}: {job['message']}"}
        t0 = time.perf_counter()
        cancel = threading.Event()
        timer = threading.Timer(timeout, cancel.set)
        timer.start()
        try:
            result = self.session.run(job, JobRequest.from_dict(request), Progress(None, cancel))
            with tempfile.TemporaryDirectory() as scratch:
                written, count = write_outputs(operation, Path(scratch) / out_name, source_name, job, result)
                files = {p.name: p.read_bytes() for p in written}
            return {"status": "done", "files": files, "parts": count, "engine": result.engine or
                    result.segmentation_engine, "seconds": time.perf_counter() - t0, "warnings": result.warnings}
        except Cancelled:
            return {"status": "timeout", "error": f"timeout: stopped after {timeout:g} s"}
        except EngineError as exc:
            return {"status": "failed", "error": f"{exc.kind}: {exc.message}"}
        except Exception as exc:  # noqa: BLE001 - one asset's bug must not stop the batch
            return {"status": "failed", "error": f"internal: {type(exc).__name__}: {exc}"}
        finally:
            timer.cancel()


# -- the driver ----------------------------------------------------------------------------------------------
class BatchProgress:
    """Assets done, skipped and failed, the rate and the ETA, on one line of stderr (a line a second when
    the stream is not a terminal)."""

    def __init__(self, total: int, stream=sys.stderr, quiet: bool = False):
        self.total, self.stream, self.quiet = total, stream, quiet
        self.counts = collections.Counter()
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self._last = 0.0

    def start(self) -> None:
        """The rate counts from here (after Ray and its actors have started)."""
        self.t0 = time.monotonic()

    def add(self, status: str) -> None:
        self.counts[status] += 1
        self.show()

    def text(self) -> str:
        c = self.counts
        finished = c["done"] + c["failed"] + c["timeout"]
        ended = finished + c["skipped"]
        elapsed = time.monotonic() - self.t0
        rate = finished / elapsed if elapsed > 0 else 0.0
        eta = (self.total - ended) / rate if rate > 0 else float("nan")
        filled = int(30 * ended / max(self.total, 1))
        eta_text = "--:--" if eta != eta else f"{int(eta) // 60:d}:{int(eta) % 60:02d}"
        return (f"batch [{'#' * filled}{'.' * (30 - filled)}] {ended}/{self.total}: {c['done']} done, "
                f"{c['skipped']} skipped, {c['failed'] + c['timeout']} failed | {rate:.2f}/s | ETA {eta_text}")

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and not self.tty and now - self._last < 1.0):
            return
        self._last = now
        self.stream.write(("\r" + self.text().ljust(120)) if self.tty else self.text() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.show(force=True)
        if self.tty and not self.quiet:
            self.stream.write("\n")


def run_batch(args, request: JobRequest) -> int:
    """Run every asset of ``args.input`` through ``request``; write outputs, records and the summary."""
    from .cli import check_outputs, planned_outputs

    t_start = time.perf_counter()
    source, out = Path(args.input), Path(args.out)
    assets = find_assets(source, out, request.operation)
    records = out / RECORDS
    version = engine_version()
    owners: dict[Path, Asset] = {}
    todo: collections.deque = collections.deque()  # (asset, its request, its key)
    progress = BatchProgress(len(assets), quiet=args.quiet)
    for asset in assets:
        asset.row = {"input": str(asset.path), "status": "", "seconds": 0.0, "parts": 0, "engine": "",
                     "error": "", "outputs": "", "key": ""}
        try:
            planned = planned_outputs(request.operation, asset.out)
            check_outputs(planned, [asset.path] + ([asset.labels] if asset.labels else []))
            clash = next((owners[p.resolve()] for p in planned if p.resolve() in owners), None)
            if clash is not None:
                raise InputError(f"its outputs would overwrite those of {clash.path}", "rename one of them")
            owners.update({p.resolve(): asset for p in planned})
            own = JobRequest(**{**request.to_dict(), "settings": {**request.settings, **asset.settings}})
            asset.row["key"] = key = asset_key(asset, own, version, out)
        except EngineError as exc:
            asset.row.update(status="failed", error=f"{exc.kind}: {exc.message}")
            progress.add("failed")
            continue
        done = _finished(records / f"{key}.json", out)
        if done is None:
            todo.append((asset, own, key))
        else:
            asset.row.update({k: done[k] for k in ("seconds", "parts", "engine")}, status="skipped",
                             outputs=";".join(done["outputs"]))
            progress.add("skipped")
    if todo:
        _run_on_ray(args, request, todo, records, out, progress)
    progress.close()
    summary = _write_summary(args, request, assets, out, time.perf_counter() - t_start)
    print(f"batch: {summary['totals']} in {summary['seconds']:.1f} s -> {out / 'batch.csv'}, {out / 'batch.json'}")
    return 1 if summary["totals"].get("failed", 0) + summary["totals"].get("timeout", 0) else 0


def start_ray(address: str | None = None, cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://HOST:PORT``), or start a local instance with
    ``cpus`` CPUs (default: all); workers on every node get this engine's code (``py_modules``)."""
    import ray

    runtime_env = {"py_modules": [str(PACKAGE)]}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=cpus or os.cpu_count(), include_dashboard=False, runtime_env=runtime_env,
                 log_to_driver=False)


def _run_on_ray(args, request, todo, records, out, progress) -> None:
    """Start (or join) Ray and run what is left; a Ray instance the caller started is left running."""
    import ray

    ours = not ray.is_initialized()
    if ours:
        start_ray(args.address, args.cpus)
    try:
        progress.start()
        _schedule(ray, args, request, todo, records, out, progress)
    finally:
        if ours:
            ray.shutdown()


def _actors(ray, args, request: JobRequest) -> list:
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    learned = request.operation != "segment" and (request.engine == "holopart" or (request.engine == "auto" and gpus))
    if learned and gpus:
        options, count = {"num_gpus": 1, "num_cpus": 1}, gpus
    else:
        options, count = {"num_cpus": 1}, max(1, int(resources.get("CPU", 1)))
    remote = ray.remote(EngineActor).options(max_restarts=-1, max_task_retries=1, **options)
    return [remote.remote() for _ in range(args.actors or count)], remote


def _schedule(ray, args, request, todo, records, out, progress) -> None:
    """Keep ``DEPTH`` assets at every actor until all are done; collect, write and record the results."""
    actors, remote = _actors(ray, args, request)
    load = ray.remote(num_cpus=0, max_retries=1)(load_asset)
    queues = [collections.deque() for _ in actors]  # per actor: refs in submission order (the head runs)
    head_since = [0.0] * len(actors)
    inflight: dict = {}  # ref -> (asset, its request, its key, actor index)
    while todo or inflight:
        for i, actor in enumerate(actors):
            while todo and len(queues[i]) < DEPTH:
                asset, asset_request, key = todo.popleft()
                job = load.remote(str(asset.path), str(asset.labels) if asset.labels else None)
                ref = actor.run.remote(job, asset_request.to_dict(), request.operation, asset.out.name,
                                       asset.path.name, float(args.timeout))
                if not queues[i]:
                    head_since[i] = time.monotonic()
                queues[i].append(ref)
                inflight[ref] = (asset, asset_request, key, i)
        if not inflight:
            break
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
        for ref in ready:
            asset, _, key, i = inflight.pop(ref)
            queues[i].remove(ref)
            head_since[i] = time.monotonic()
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = {"status": "failed", "error": f"worker_crashed: the engine actor died twice on this asset "
                          f"({type(exc).__name__})"}
            _store(asset, key, result, records, out)
            progress.add(asset.row["status"])
        now = time.monotonic()
        for i, queue in enumerate(queues):  # an engine stuck inside one step: kill its actor, requeue the rest
            if queue and now - head_since[i] > args.timeout + KILL_GRACE:
                stuck = queue.popleft()
                asset, _, key, _ = inflight.pop(stuck)
                _store(asset, key, {"status": "timeout", "error": f"timeout: killed after {args.timeout:g} s"},
                       records, out)
                progress.add("timeout")
                for ref in queue:
                    todo.appendleft(inflight.pop(ref)[:3])
                queue.clear()
                ray.kill(actors[i], no_restart=True)
                actors[i] = remote.remote()
        progress.show()


def _store(asset: Asset, key: str, result: dict, records: Path, out: Path) -> None:
    """Write a finished asset's outputs, then its record; fill in its summary row."""
    row = asset.row
    row.update(status=result["status"], error=result.get("error", ""))
    if result["status"] != "done":
        return
    names = []
    for name, data in result["files"].items():
        target = asset.out.with_name(name)
        _write_atomic(target, data)
        names.append(target.relative_to(out).as_posix() if target.is_relative_to(out) else str(target))
    row.update(seconds=round(result["seconds"], 3), parts=result["parts"], engine=result["engine"],
               outputs=";".join(names))
    record = {"key": key, "input": str(asset.path), "outputs": names, "seconds": row["seconds"],
              "parts": row["parts"], "engine": row["engine"], "warnings": result.get("warnings", [])}
    _write_atomic(records / f"{key}.json", json.dumps(record, indent=1).encode())


def _write_summary(args, request: JobRequest, assets: list[Asset], out: Path, seconds: float) -> dict:
    rows = [asset.row for asset in assets]
    totals = dict(collections.Counter(row["status"] for row in rows))
    summary = {"input": str(args.input), "out": str(out), "request": request.to_dict(), "seconds": round(seconds, 3),
               "totals": totals, "assets": rows}
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "batch.json", json.dumps(summary, indent=1).encode())
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(out / "batch.csv", text.getvalue().encode())
    return summary
