"""The worker of the Blender session: which Python it runs on, its lifetime, and its engine listing.

One worker process serves every job of the session (so a loaded model stays loaded). It runs on the
managed engine environment's Python when that is ready, and otherwise on Blender's own Python with the
extension's bundled wheels on its path, so the CPU engines work right after installing the extension.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import bpy

from ..core.errors import EngineError
from ..wire.client import WorkerClient
from .addon import user_folder
from .environment import EnvironmentManager

BUNDLED_MODULES = ("numpy", "scipy", "trimesh", "skimage")

_client: WorkerClient | None = None
_client_key: tuple | None = None
_engines: dict | None = None


def environment_manager(prefs) -> EnvironmentManager:
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


def weights_folder(prefs) -> str:
    """Where the HoloPart weights are: the chosen local folder, or the download folder for the hub repo."""
    if prefs.weights_source == "LOCAL":
        return bpy_path(prefs.weights_folder)
    return str(weights_download_folder(prefs))


def weights_download_folder(prefs) -> Path:
    return user_folder() / "weights" / prefs.weights_repo.replace("/", "--") / (prefs.weights_revision or "main")


def bpy_path(path: str) -> str:
    """A Blender path ('//' relative to the .blend) as an absolute one; '' stays ''."""
    return bpy.path.abspath(path) if path else ""
