"""The worker of the Blender session: which Python it runs on (or which server), its lifetime, and its engine
listing.

One worker process serves every job of the session (so a loaded model stays loaded). It runs on the
managed engine environment's Python when that is ready, and otherwise on Blender's own Python with the
extension's bundled wheels on its path, so the CPU engines work right after installing the extension.
With the preferences' Engine set to Remote Server, jobs go to a server running ``holopart serve`` instead
(``wire.remote.RemoteClient``, the same events). A server on this computer or the local network is the
user's own explicit setting; any other host is contacted only while Blender's Allow Online Access is on
(``remote_refusal``). The server's token lives in ``token_file()``, never in a .blend file.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import bpy

from ..core.errors import EngineError
from ..wire.client import EventClient, WorkerClient
from ..wire.remote import RemoteClient, is_local_network
from .addon import user_folder
from .environment import EnvironmentManager

BUNDLED_MODULES = ("numpy", "scipy", "trimesh", "skimage")

_client: EventClient | None = None
_client_key: tuple | None = None
_engines: dict | None = None
known_engines: dict | None = None  # the last listing any worker sent: menus show it while a new worker starts
_asked = False  # an engines request is on its way (``engines_if_ready``)
listing_failed = False  # the worker died before listing its engines; a job or a new worker asks again
last_summary = ""  # what the last job did, for the panel and the preferences
listing_error = ""  # why a remote server did not list them (shown in the panel)


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


def token_file() -> Path:
    return user_folder() / "server_token"


def read_token() -> str:
    try:
        return token_file().read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def write_token(value: str) -> None:
    """Keep the token in ``token_file()`` (readable by this user only); an empty token removes the file."""
    path = token_file()
    if not value.strip():
        path.unlink(missing_ok=True)
        return
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value.strip() + "\n", encoding="utf-8")


def remote_refusal(url: str) -> str:
    """Why the server at ``url`` may not be contacted now ('' when it may): this computer and the local network
    are the user's own setting; other hosts follow Blender's Allow Online Access."""
    if not url.strip():
        return "No server URL is set (Preferences > Add-ons > HoloPart > Engine)."
    if is_local_network(url) or bpy.app.online_access:
        return ""
    return ("The server is neither on this computer nor on the local network, and Blender's online access is off "
            "(Preferences > System > Network > Allow Online Access).")


def worker_client(prefs) -> EventClient:
    """The shared worker client (or remote server client), recreated when the engine environment or the
    server changed. Raises EngineError for a server that may not be contacted."""
    global _client, _client_key
    if prefs.engine_location == "REMOTE":
        url, token = prefs.server_url.strip(), read_token()
        reason = remote_refusal(url)
        if reason:
            raise EngineError(reason, "use a server on the local network, or allow online access", kind="offline")
        key = ("remote", url, token)
        if _client is None or key != _client_key:
            shutdown_worker()
            try:
                _client, _client_key = RemoteClient(url, token), key
            except ValueError as exc:
                raise EngineError(str(exc), "for example http://gpu-server:8700", kind="bad_input") from None
        return _client
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
    global _client, _client_key, _engines, _asked, listing_failed, listing_error
    if _client is not None:
        _client.close()
    _client, _client_key, _engines, _asked, listing_failed, listing_error = None, None, None, False, False, ""


def engines_if_ready(prefs, wait: bool | None = None) -> dict | None:
    """The listing when the worker has sent it. Otherwise ask for it (starting the worker, which takes a
    few seconds) and return None at once: what the UI draws with, so a starting worker never blocks it. A
    timer collects the answer and redraws. ``wait`` (default: in background mode, where no timer runs)
    waits for it instead, as ``engines`` does."""
    global _asked
    if bpy.app.background if wait is None else wait:
        return engines(prefs)
    client = worker_client(prefs)
    if _engines is not None and client.running:
        return _engines
    if listing_failed:
        return None
    if not _asked or not client.running:
        client.request_engines()
        _asked = True
        if not bpy.app.timers.is_registered(_collect_listing):
            bpy.app.timers.register(_collect_listing, first_interval=0.2)
    return None


def take_listing(event: dict) -> None:
    """Keep an ``engines`` event as the listing (from the timer, or from a running job's events)."""
    global _engines, known_engines, _asked, listing_failed
    _engines = known_engines = event
    _asked, listing_failed = False, False
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()


def _collect_listing():
    """Timer: wait for the listing without blocking; a running job's drain hands it over instead."""
    global _asked, listing_failed, listing_error
    from . import job

    if _client is None or not _asked:
        return None
    if job.current is None:
        for event in _client.poll():
            if event["type"] == "engines":
                take_listing(event)
                return None
            if event["type"] == "worker_exit":
                _asked, listing_failed = False, True
                listing_error = event.get("stderr_tail", "") if event.get("kind") else ""
                return None
    return 0.2


def engines(prefs, timeout: float = 300.0) -> dict:
    """The worker's engines with their availability and settings (asked once per worker)."""
    global _engines, known_engines, listing_failed
    listing_failed = False
    client = worker_client(prefs)
    failure: dict = {}
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
                _engines = known_engines = event
                break
            if event["type"] == "worker_exit":
                failure = event
                break
        else:
            raise EngineError("the engine worker did not answer", "see the engine log", kind="worker_timeout")
        if _engines is None and failure.get("kind"):  # a remote server that could not be asked
            raise EngineError(failure["stderr_tail"], "check the server URL and token (Preferences > HoloPart)",
                              kind=failure["kind"])
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
