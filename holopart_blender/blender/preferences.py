"""Add-on preferences (drawing only): the engine and device, where the engine runs (this computer, or a
server running ``holopart serve``), the managed engine environment, and the HoloPart weights. The buttons are the
operators of ``setup_operators``, whose tasks' progress and log tail show here. The server's token is kept in a
file of the extension's user folder (``session.token_file``), never in the preferences or a .blend file.
"""

from __future__ import annotations

import bpy

from . import listing, numpy_fallback, properties, session, setup_operators
from .addon import PACKAGE
from .environment import Task
from .ui_text import draw_wrapped


def _get_token(self) -> str:
    return session.read_token()


def _set_token(self, value: str) -> None:
    session.write_token(value)


class HoloPartPreferences(bpy.types.AddonPreferences):
    bl_idname = PACKAGE

    engine: bpy.props.EnumProperty(name="Engine", items=properties.completion_items, default=listing.number("auto"),
                                   description="Completion engine")
    device: bpy.props.EnumProperty(name="Device", default="auto", items=[
        ("auto", "Auto", "The best device found (CUDA, then Apple MPS, then CPU)"),
        ("cuda", "CUDA", "An NVIDIA GPU"), ("mps", "Apple", "Apple silicon GPU (MPS)"), ("cpu", "CPU", "The CPU (slow)"),
    ], description="Where HoloPart runs")
    engine_location: bpy.props.EnumProperty(name="Engine", default="LOCAL", items=[
        ("LOCAL", "Local", "The engine runs on this computer"),
        ("REMOTE", "Remote Server", "The engine runs on a server started with 'holopart serve' (a studio's GPU server)"),
    ], description="Where the engine runs")
    server_url: bpy.props.StringProperty(name="URL", default="http://127.0.0.1:8700",
                                         description="The server's address, e.g. http://gpu-server:8700 or https://...")
    server_token: bpy.props.StringProperty(name="Token", subtype="PASSWORD", get=_get_token, set=_set_token,
                                           description="The access token from the server's token file")
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
        if not numpy_fallback.available():  # the numpy-free fallback (``no_numpy``): install the environment
            draw_wrapped(layout, numpy_fallback.MESSAGE, icon="ERROR")
            self._draw_environment(layout.box())
            return
        box = layout.box()
        box.label(text="Engine", icon="MODIFIER")
        box.row().prop(self, "engine_location", expand=True)
        if self.engine_location == "REMOTE":
            box.prop(self, "server_url")
            box.prop(self, "server_token")
            draw_wrapped(box, f"The token is kept in {session.token_file()}, not in any .blend file.", icon="LOCKED")
            reason = session.remote_refusal(self.server_url)
            if reason:
                draw_wrapped(box, reason, icon="ERROR")
        box.prop(self, "engine")
        box.prop(self, "device")
        if session.last_summary:
            draw_wrapped(box, f"Last run: {session.last_summary}")
        self._draw_environment(layout.box())
        self._draw_weights(layout.box())

    def _draw_environment(self, box):
        task = setup_operators.tasks.get("install")
        running = task is not None and not task.done
        state = session.environment_manager(self).state(installing=running)
        box.label(text="Engine environment (torch, for HoloPart)", icon="CONSOLE")
        box.label(text=f"State: {state.summary()}")
        if state.status == "missing":
            box.label(text="Without it the geometric engine runs on Blender's own Python.")
        box.prop(self, "environment_dir")
        box.prop(self, "torch_build")
        reason = setup_operators.offline_reason()
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
            draw_wrapped(box, f"Last install failed: {last.get('reason', '')}", icon="ERROR")
            draw_wrapped(box, f"Log: {last.get('log', '')}")

    def _draw_weights(self, box):
        box.label(text="HoloPart weights", icon="FILE_3D")
        box.prop(self, "weights_source", expand=True)
        if self.weights_source == "LOCAL":
            box.prop(self, "weights_folder")
        else:
            box.prop(self, "weights_repo")
            box.prop(self, "weights_revision")
            task = setup_operators.tasks.get("weights")
            row = box.row()
            row.enabled = (task is None or task.done) and not setup_operators.offline_reason()
            row.operator("holopart.download_weights", icon="IMPORT")
            _draw_task(box, "weights", task)
        row = box.row()
        row.operator("holopart.refresh_status", icon="FILE_REFRESH")
        if setup_operators.weights_status:
            row.label(text=setup_operators.weights_status.get("summary", ""))


def _draw_task(box, name: str, task: Task | None) -> None:
    if task is None:
        return
    if not task.done:
        row = box.row()
        row.progress(factor=task.progress, text=task.message)
        row.operator("holopart.cancel_task", text="", icon="CANCEL").name = name
    elif not task.ok:
        draw_wrapped(box, task.message, icon="ERROR")
    column = box.column(align=True)
    column.scale_y = 0.7
    for line in list(task.tail)[-6:]:
        column.label(text=line)


CLASSES = (HoloPartPreferences,)
