"""Engine jobs from Blender: the shared worker, the request built from the settings, and the running job.

One worker process serves every job of the session (so a loaded model stays loaded). It runs on the
managed engine environment's Python when that is ready, and otherwise on Blender's own Python with the
extension's bundled wheels on its path, so the CPU engines work right after installing the extension.
Job data travels through a job folder in the extension's user folder (``wire.jobfolder``).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import time
from pathlib import Path

from ..wire.request import JobRequest
from ..wire.client import WorkerClient
from ..wire.jobfolder import read_result, write_job
from ..core.errors import EngineError
from .environment import EnvironmentManager

KEEP_JOB_FOLDERS = 5
BUNDLED_MODULES = ("numpy", "scipy", "trimesh", "skimage")

_client: WorkerClient | None = None
_client_key: tuple | None = None
_engines: dict | None = None
current: "Job | None" = None  # the job in progress (one at a time)
last_summary: str = ""  # what the last job did, for the panel


def environment_manager(prefs) -> EnvironmentManager:
    from .addon import user_folder

    root = Path(prefs.environment_dir) if prefs.environment_dir else user_folder() / "engine"
    return EnvironmentManager(root, sys.executable)


def bundled_paths() -> list[str]:
    """Import folders of the CPU engines' modules as this Python finds them (the extension's wheels)."""
    paths = []
    for name in BUNDLED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            folder = str(Path(next(iter(spec.submodule_search_locations))).parent)
            if folder not in paths:
                paths.append(folder)
    return paths


def worker_client(prefs) -> WorkerClient:
    """The shared worker client, recreated when the engine environment changed."""
    global _client, _client_key
    manager = environment_manager(prefs)
    if manager.state().status == "ready":
        python, paths = str(manager.python), []
    else:
        python, paths = sys.executable, bundled_paths()
    key = (python, tuple(paths))
    if _client is None or key != _client_key:
        shutdown_worker()
        log = manager.root / "logs" / "engine.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        _client, _client_key = WorkerClient(python=python, pythonpath=paths, engine_log=log), key
    return _client


def shutdown_worker() -> None:
    """Stop the worker (before the environment it runs on is replaced, and on unregister)."""
    global _client, _client_key, _engines
    if _client is not None:
        _client.close()
    _client, _client_key, _engines = None, None, None


def engines(prefs, timeout: float = 300.0) -> dict:
    """The worker's engines with their availability and settings (asked once per worker)."""
    global _engines
    client = worker_client(prefs)
    if _engines is None or not client.running:
        client.request_engines()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = client.wait_event(timeout=1.0)
            if event is None:
                if not client.running:
                    break
                continue
            if event["type"] == "engines":
                _engines = event
                break
            if event["type"] == "worker_exit":
                break
        else:
            raise EngineError("the engine worker did not answer", "see the engine log", kind="worker_timeout")
        if _engines is None:
            raise EngineError("the engine worker could not start", "see the engine log (Preferences > HoloPart)",
                              kind="worker_crashed")
    return _engines


def make_request(prefs, settings, operation: str, engine: str = "", parts=None) -> JobRequest:
    """The request for ``operation`` from the preferences (engine, device, weights) and the scene settings
    (steps, guidance, seed, resolution; 0 means the engine's default). Each engine gets only the settings
    it takes (the worker says which); with 'auto' the engine itself drops those of the engine not chosen."""
    engine = engine or prefs.engine
    wanted = {"seed": settings.seed}
    for name in ("steps", "guidance", "resolution"):
        if getattr(settings, name):
            wanted[name] = getattr(settings, name)
    if prefs.device != "auto":
        wanted["device"] = prefs.device
    weights = weights_folder(prefs)
    if weights:
        wanted["weights"] = weights
    available = engines(prefs)["completion"]
    if engine == "auto":
        known = {s["name"] for info in available.values() for s in info.get("settings", [])}
    else:
        known = {s["name"] for s in available.get(engine, {}).get("settings", [])}
    return JobRequest(operation, engine, {k: v for k, v in wanted.items() if k in known},
                      segmentation_engine=settings.segmentation_engine, parts=parts)


def weights_folder(prefs) -> str:
    """Where the HoloPart weights are: the chosen local folder, or the download folder for the hub repo."""
    if prefs.weights_source == "LOCAL":
        return bpy_path(prefs.weights_folder)
    return str(weights_download_folder(prefs))


def weights_download_folder(prefs) -> Path:
    from .addon import user_folder

    return user_folder() / "weights" / prefs.weights_repo.replace("/", "--") / (prefs.weights_revision or "main")


def bpy_path(path: str) -> str:
    import bpy

    return bpy.path.abspath(path) if path else ""


class Job:
    """One job: its folder, the source it was read from, and its progress as reported by the worker."""

    def __init__(self, client: WorkerClient, operation: str, source_name: str, source, request: JobRequest):
        from .addon import user_folder

        self.client, self.operation, self.source_name, self.source = client, operation, source_name, source
        self.request = request
        jobs = user_folder() / "jobs"
        self.folder = jobs / (time.strftime("%Y%m%d-%H%M%S-") + f"{time.time_ns() % 10**6:06d}")
        _prune(jobs)
        self.job_id: str | None = None
        self.fraction, self.message, self.stage = 0.0, "starting the engine", ""
        self.final: dict | None = None
        self.started = time.monotonic()
        self.cancel_time: float | None = None

    def start(self) -> None:
        """Write the job folder and send it to the worker (non-blocking)."""
        global current
        write_job(self.folder, self.source.job, self.request)
        self.job_id = self.client.submit(self.folder)
        current = self

    def run(self, on_event=None) -> dict:
        """Write the job folder and run it to the end (background mode); returns the final event."""
        def handle(event):
            self.update(event)
            if on_event is not None:
                on_event(event)

        write_job(self.folder, self.source.job, self.request)
        return self.client.run(self.folder, on_event=handle)

    def update(self, event: dict) -> None:
        if self.job_id is not None and event.get("id") not in (None, self.job_id):
            return  # late news of an earlier job
        if event["type"] == "progress":
            self.fraction, self.stage, self.message = event["fraction"], event["stage"], event["message"]
        elif event["type"] == "accepted":
            self.job_id = event["id"]
        elif event["type"] in ("done", "error", "cancelled") and event.get("id") == self.job_id:
            self.final = event

    def drain(self) -> dict | None:
        """Apply the worker's events so far; returns the final event once the job has ended."""
        for event in self.client.poll():
            self.update(event)
        return self.final

    def cancel(self) -> None:
        """Ask the worker to stop the job (it answers 'cancelled' at the engine's next progress call)."""
        self.cancel_time = self.cancel_time or time.monotonic()
        if self.job_id is not None:
            self.client.cancel(self.job_id)

    def result(self):
        return read_result(self.folder)

    def status_text(self) -> str:
        return f"HoloPart: {self.message or self.stage} ({self.fraction * 100:.0f}%) - Esc to cancel"

    def finish(self) -> None:
        global current
        if current is self:
            current = None


def _prune(jobs: Path) -> None:
    jobs.mkdir(parents=True, exist_ok=True)
    for old in sorted(p for p in jobs.iterdir() if p.is_dir())[:-KEEP_JOB_FOLDERS]:
        shutil.rmtree(old, ignore_errors=True)
