"""Add-on preferences: the engine and device, the managed engine environment, and the HoloPart weights.

Installing the environment and downloading weights run as background tasks (``environment.Task``) whose
progress and log tail the preferences show; a timer redraws them while a task runs. In background mode
the same operators run to the end synchronously. Nothing is downloaded while Blender's "Allow Online
Access" is off: the environment can then be installed from a local folder of wheels.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import bpy

from ..wire.client import PACKAGE_NAME, PACKAGE_PARENT
from . import jobs
from .addon import PACKAGE, preferences
from .environment import Task

REQUIREMENTS = "vendor_requirements.txt"
tasks: dict[str, Task] = {}  # "install" / "weights" -> the running or last task
_weights_status: dict = {}


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
        folder = jobs.bpy_path(prefs.wheel_folder) if self.from_folder else None
        if self.from_folder and not (folder and Path(folder).is_dir()):
            self.report({"ERROR"}, "choose an existing wheel folder first")
            return {"CANCELLED"}
        reason = offline_reason()
        if folder is None and reason:
            self.report({"ERROR"}, f"HoloPart: nothing is downloaded while {reason}; install from a wheel folder")
            return {"CANCELLED"}
        jobs.shutdown_worker()  # the worker may be running on the environment about to be replaced
        manager = jobs.environment_manager(prefs)
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
        manager = jobs.environment_manager(prefs)
        if manager.state().status != "ready":
            self.report({"ERROR"}, "HoloPart: install the engine environment first")
            return {"CANCELLED"}
        dest = jobs.weights_download_folder(prefs)
        command = [str(manager.python), "-m", f"{PACKAGE_NAME}.engine.holopart.weights", "download",
                   "--repo", prefs.weights_repo, "--dest", str(dest), "--allow-network"]
        if prefs.weights_revision:
            command += ["--revision", prefs.weights_revision]
        task = Task([("download the weights", command)], manager.root / "logs" / "weights.log",
                    on_line=_weights_progress, env={"PYTHONPATH": str(PACKAGE_PARENT)})
        _weights_status.clear()
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
        manager = jobs.environment_manager(prefs)
        _weights_status.clear()
        python = manager.python if manager.state().status == "ready" else None
        if python is None:
            _weights_status["summary"] = "needs the engine environment"
            return {"FINISHED"}
        if not jobs.weights_folder(prefs):
            _weights_status["summary"] = "choose the weights folder"
            return {"FINISHED"}
        command = [str(python), "-m", f"{PACKAGE_NAME}.engine.holopart.weights", "status", "--repo",
                   prefs.weights_repo, "--dest", jobs.weights_folder(prefs)]
        if prefs.weights_revision:
            command += ["--revision", prefs.weights_revision]
        out = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)})
        lines = [line for line in out.stdout.splitlines() if line.strip().startswith("{")]
        if not lines:  # the command itself failed
            _weights_status["summary"] = f"could not check: {(out.stderr or out.stdout).strip()[-200:]}"
            return {"FINISHED"}
        status = json.loads(lines[-1])  # {"event": "status", "found", "path", "missing", "message"}
        _weights_status.update(status)
        _weights_status["summary"] = (f"installed in {status.get('path')}" if status.get("found")
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


class HoloPartPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    engine: bpy.props.EnumProperty(name="Engine", default="auto", items=[
        ("auto", "Auto", "HoloPart when its weights are installed, otherwise the geometric engine"),
        ("holopart", "HoloPart", "The HoloPart diffusion model (engine environment and weights needed)"),
        ("geometric", "Geometric", "CPU geometric completion (works right after installing)"),
    ], description="Completion engine")
    device: bpy.props.EnumProperty(name="Device", default="auto", items=[
        ("auto", "Auto", "The best device found (CUDA, then Apple MPS, then CPU)"),
        ("cuda", "CUDA", "An NVIDIA GPU"), ("mps", "Apple", "Apple silicon GPU (MPS)"), ("cpu", "CPU", "The CPU (slow)"),
    ], description="Where HoloPart runs")
    weights_source: bpy.props.EnumProperty(name="Weights", default="HUB", items=[
        ("HUB", "Model Hub", "Download from a Hugging Face repository"),
        ("LOCAL", "Local Folder", "Weights already on disk"),
    ])
    weights_repo: bpy.props.StringProperty(name="Repository", default="VAST-AI/HoloPart")
    weights_revision: bpy.props.StringProperty(name="Revision", default="",
                                               description="Branch, tag or commit (empty: the default branch)")
    weights_folder: bpy.props.StringProperty(name="Folder", subtype="DIR_PATH")
    environment_dir: bpy.props.StringProperty(
        name="Location", subtype="DIR_PATH",
        description="Where the engine environment goes (empty: the extension's user folder). Keep it short on Windows")
    torch_build: bpy.props.EnumProperty(name="Torch Build", default="auto", items=[
        ("auto", "Auto", "CUDA where an NVIDIA driver is found, Apple's build on macOS, else CPU"),
        ("cuda", "CUDA", "NVIDIA GPUs (CUDA 12.8 build)"), ("cpu", "CPU", "CPU only (smallest download)"),
        ("default", "PyPI Default", "The build PyPI serves (macOS, or CUDA on Linux)"),
    ])
    wheel_folder: bpy.props.StringProperty(name="Wheel Folder", subtype="DIR_PATH",
                                           description="A folder of wheels to install from without downloading")

    def draw(self, context):
        layout = self.layout
        box = layout.box()
        box.label(text="Engine", icon="MODIFIER")
        box.prop(self, "engine")
        box.prop(self, "device")
        if jobs.last_summary:
            box.label(text=f"Last run: {jobs.last_summary}")
        self._draw_environment(layout.box())
        self._draw_weights(layout.box())

    def _draw_environment(self, box):
        task = tasks.get("install")
        running = task is not None and not task.done
        state = jobs.environment_manager(self).state(installing=running)
        box.label(text="Engine environment (torch, for HoloPart)", icon="CONSOLE")
        box.label(text=f"State: {state.summary()}")
        if state.status == "missing":
            box.label(text="Without it the geometric engine runs on Blender's own Python.")
        box.prop(self, "environment_dir")
        box.prop(self, "torch_build")
        reason = offline_reason()
        if reason:
            box.label(text=f"No downloads: {reason}.", icon="ERROR")
        row = box.row()
        row.enabled = not running and not reason
        label = "Install" if state.status == "missing" else "Repair / Reinstall"
        row.operator("holopart.install_environment", text=label, icon="IMPORT").from_folder = False
        row = box.row()
        row.prop(self, "wheel_folder")
        sub = row.row()
        sub.enabled = not running
        sub.operator("holopart.install_environment", text="Install from Folder").from_folder = True
        _draw_task(box, "install", task)
        last = state.last_install
        if last and not last.get("ok") and not running:
            box.label(text=f"Last install failed: {last.get('reason', '')[:120]}", icon="ERROR")
            box.label(text=f"Log: {last.get('log', '')}")

    def _draw_weights(self, box):
        box.label(text="HoloPart weights", icon="FILE_3D")
        box.prop(self, "weights_source", expand=True)
        if self.weights_source == "LOCAL":
            box.prop(self, "weights_folder")
        else:
            box.prop(self, "weights_repo")
            box.prop(self, "weights_revision")
            task = tasks.get("weights")
            row = box.row()
            row.enabled = (task is None or task.done) and not offline_reason()
            row.operator("holopart.download_weights", icon="IMPORT")
            _draw_task(box, "weights", task)
        row = box.row()
        row.operator("holopart.refresh_status", icon="FILE_REFRESH")
        if _weights_status:
            row.label(text=_weights_status.get("summary", ""))


def _draw_task(box, name: str, task: Task | None) -> None:
    if task is None:
        return
    if not task.done:
        row = box.row()
        row.progress(factor=task.progress, text=task.message)
        row.operator("holopart.cancel_task", text="", icon="CANCEL").name = name
    elif not task.ok:
        box.label(text=task.message[:200], icon="ERROR")
    column = box.column(align=True)
    column.scale_y = 0.7
    for line in list(task.tail)[-6:]:
        column.label(text=line)


CLASSES = (HoloPartPreferences, HOLOPART_OT_install_environment, HOLOPART_OT_download_weights,
           HOLOPART_OT_refresh_status, HOLOPART_OT_cancel_task)
