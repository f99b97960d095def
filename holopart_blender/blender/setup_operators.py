"""The set-up operators: install the engine environment, download the weights, check the installation, stop
a running install or download; the registry of those tasks and the weights command's progress parser.

Installing and downloading run as background tasks (``environment.Task``) whose progress and log tail the
preferences show; a timer redraws them while a task runs. In background mode the same operators run to the
end synchronously. Nothing is downloaded while Blender's "Allow Online Access" is off: the environment can
then be installed from a local folder of wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import bpy

from ..wire.client import PACKAGE_NAME, PACKAGE_PARENT
from . import session
from .addon import preferences
from .environment import Task

REQUIREMENTS = "vendor_requirements.txt"
tasks: dict[str, Task] = {}  # "install" / "weights" -> the running or last task
weights_status: dict = {}  # what Check Installation found, for the preferences


def requirements_file() -> Path:
    """The engine environment's requirements: shipped inside the extension, or at a checkout's top."""
    for folder in (Path(__file__).resolve().parents[1], PACKAGE_PARENT):
        if (folder / REQUIREMENTS).is_file():
            return folder / REQUIREMENTS
    raise FileNotFoundError(f"{REQUIREMENTS} is missing from the extension")


def offline_reason() -> str:
    """Why downloads are not allowed now ('' when they are)."""
    if bpy.app.online_access:
        return ""
    if bpy.app.online_access_override:
        return "Blender was started in offline mode (--offline-mode)"
    return "online access is off (Preferences > System > Network > Allow Online Access)"


def stop_tasks() -> None:
    for task in tasks.values():
        if not task.done:
            task.cancel()


def _watch(name: str) -> None:
    """Redraw the preferences while the task runs (a timer: the task itself lives on a thread)."""
    def tick():
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "PREFERENCES":
                    area.tag_redraw()
        task = tasks.get(name)
        return None if task is None or task.done else 0.5

    bpy.app.timers.register(tick, first_interval=0.5)


def _run(op, name: str, task: Task) -> set:
    """Run a task: synchronously in background mode, else on a thread watched by a timer."""
    tasks[name] = task
    if bpy.app.background:
        ok = task.run()
        op.report({"INFO"} if ok else {"ERROR"}, f"HoloPart: {task.message} (log: {task.log_path})")
        return {"FINISHED"} if ok else {"CANCELLED"}
    task.start()
    _watch(name)
    return {"FINISHED"}


class HOLOPART_OT_install_environment(bpy.types.Operator):
    """Create or repair the engine environment (torch and the engine's packages) in the extension's user folder"""

    bl_idname = "holopart.install_environment"
    bl_label = "Install Engine Environment"

    from_folder: bpy.props.BoolProperty(name="From Wheel Folder", default=False,
                                        description="Install only from the local wheel folder (no download)")

    def execute(self, context):
        prefs = preferences()
        if tasks.get("install") and not tasks["install"].done:
            self.report({"ERROR"}, "an install is already running")
            return {"CANCELLED"}
        folder = session.bpy_path(prefs.wheel_folder) if self.from_folder else None
        if self.from_folder and not (folder and Path(folder).is_dir()):
            self.report({"ERROR"}, "choose an existing wheel folder first")
            return {"CANCELLED"}
        reason = offline_reason()
        if folder is None and reason:
            self.report({"ERROR"}, f"HoloPart: nothing is downloaded while {reason}; install from a wheel folder")
            return {"CANCELLED"}
        session.shutdown_worker()  # the worker may be running on the environment about to be replaced
        manager = session.environment_manager(prefs)
        task = manager.install_task(requirements_file(), wheel_folder=folder, online=not reason,
                                    torch=prefs.torch_build)
        return _run(self, "install", task)


class HOLOPART_OT_download_weights(bpy.types.Operator):
    """Download the HoloPart weights from the model hub (resumable; needs online access and the environment)"""

    bl_idname = "holopart.download_weights"
    bl_label = "Download Weights"

    def execute(self, context):
        prefs = preferences()
        reason = offline_reason()
        if reason:
            self.report({"ERROR"}, f"HoloPart: nothing is downloaded while {reason}")
            return {"CANCELLED"}
        manager = session.environment_manager(prefs)
        if manager.state().status != "ready":
            self.report({"ERROR"}, "HoloPart: install the engine environment first")
            return {"CANCELLED"}
        dest = session.weights_download_folder(prefs)
        command = [str(manager.python), "-m", f"{PACKAGE_NAME}.engine.holopart.weights", "download",
                   "--repo", prefs.weights_repo, "--dest", str(dest), "--allow-network"]
        if prefs.weights_revision:
            command += ["--revision", prefs.weights_revision]
        task = Task([("download the weights", command)], manager.root / "logs" / "weights.log",
                    on_line=_weights_progress, env={"PYTHONPATH": str(PACKAGE_PARENT)})
        weights_status.clear()
        return _run(self, "weights", task)


def _weights_progress(task: Task, line: str) -> None:
    """Progress from the weights command's JSON lines (``file``: index of count; ``progress``: bytes of total)."""
    try:
        event = json.loads(line)
    except ValueError:
        return
    if not isinstance(event, dict):
        return
    count = max(int(event.get("count") or 1), 1)
    if event.get("event") == "file":
        task.progress, task.message = event["index"] / count, f"{event['file']} ({event['index'] + 1}/{count})"
    elif event.get("event") == "progress" and event.get("total"):
        task.progress = (event["index"] + event["bytes"] / event["total"]) / count
    elif event.get("event") in ("error", "status"):
        task.message = str(event.get("message", ""))


class HOLOPART_OT_refresh_status(bpy.types.Operator):
    """Check what is installed: the engine environment and the HoloPart weights"""

    bl_idname = "holopart.refresh_status"
    bl_label = "Check Installation"

    def execute(self, context):
        prefs = preferences()
        manager = session.environment_manager(prefs)
        weights_status.clear()
        python = manager.python if manager.state().status == "ready" else None
        if python is None:
            weights_status["summary"] = "needs the engine environment"
            return {"FINISHED"}
        if not session.weights_folder(prefs):
            weights_status["summary"] = "choose the weights folder"
            return {"FINISHED"}
        command = [str(python), "-m", f"{PACKAGE_NAME}.engine.holopart.weights", "status", "--repo",
                   prefs.weights_repo, "--dest", session.weights_folder(prefs)]
        if prefs.weights_revision:
            command += ["--revision", prefs.weights_revision]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)})
        lines = [line for line in out.stdout.splitlines() if line.strip().startswith("{")]
        if not lines:  # the command itself failed
            weights_status["summary"] = f"could not check: {(out.stderr or out.stdout).strip()[-200:]}"
            return {"FINISHED"}
        status = json.loads(lines[-1])  # {"event": "status", "found", "path", "missing", "message"}
        weights_status.update(status)
        weights_status["summary"] = (f"installed in {status.get('path')}" if status.get("found")
                                      else f"not installed: {status.get('message', '')}")
        return {"FINISHED"}


class HOLOPART_OT_cancel_task(bpy.types.Operator):
    """Stop the running install or download (a cancelled install leaves the previous environment in place)"""

    bl_idname = "holopart.cancel_task"
    bl_label = "Stop"

    name: bpy.props.StringProperty()

    def execute(self, context):
        task = tasks.get(self.name)
        if task is not None:
            task.cancel()
        return {"FINISHED"}


CLASSES = (HOLOPART_OT_install_environment, HOLOPART_OT_download_weights, HOLOPART_OT_refresh_status,
           HOLOPART_OT_cancel_task)
