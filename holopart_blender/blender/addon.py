"""Where the add-on lives: its package name (inside Blender's ``bl_ext`` tree or a source checkout), its
preferences, and its writable user folder (job folders, the engine environment, weights, logs)."""

from __future__ import annotations

from pathlib import Path

import bpy

# "bl_ext.user_default.holopart_blender" when installed as an extension, "holopart_blender" from a checkout.
PACKAGE = __package__.rpartition(".")[0]


def preferences():
    """The add-on preferences (registered with ``bl_idname = PACKAGE``)."""
    addon = bpy.context.preferences.addons.get(PACKAGE)
    if addon is None:
        raise RuntimeError(f"the add-on '{PACKAGE}' is not enabled")
    return addon.preferences


def user_folder() -> Path:
    """The extension's user folder, which survives upgrades (a config folder when run from a checkout)."""
    try:
        return Path(bpy.utils.extension_path_user(PACKAGE, create=True))
    except ValueError:  # not installed as an extension
        return Path(bpy.utils.user_resource("CONFIG", path=PACKAGE, create=True))
