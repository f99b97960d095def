"""Runs Blender (the bpy module) in a fresh Python process per test, with its own user folders.

bpy keeps global state (scene, preferences, registered classes) for the life of a process, so each Blender
test runs its script in a subprocess of the project's Python: the script gets ``bpy``, the add-on enabled
from this checkout, helpers (``cube``, ``select_faces``, ``result_objects``) and ``emit(**values)``, which
hands JSON values back to the test. A failing ``assert`` in the script fails the test with its traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = f"""
import json, sys
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
import bpy, bmesh, addon_utils
import numpy as np
bpy.ops.wm.read_factory_settings(use_empty=True)
if ENABLE_CHECKOUT:
    addon_utils.enable("holopart_blender", default_set=True)
    assert "holopart_blender" in bpy.context.preferences.addons
    from holopart_blender.blender import export, labels, operators, session
    from holopart_blender.blender.job import Job

def emit(**values):
    print("EMIT " + json.dumps(values), flush=True)

def cube(name="Cube", location=(0, 0, 0), size=2.0):
    bpy.ops.mesh.primitive_cube_add(size=size, location=location)
    obj = bpy.context.active_object
    obj.name = obj.data.name = name
    return obj

def two_cubes_joined(name="A"):
    # Two cubes 4 apart joined into one mesh object (two loose parts), left active.
    a, b = cube(name, location=(0, 0, 0)), cube("B", location=(4, 0, 0))
    with bpy.context.temp_override(active_object=a, selected_editable_objects=[a, b]):
        bpy.ops.object.join()
    bpy.context.view_layer.objects.active = a
    return a

def select_faces(obj, indices):
    bpy.context.view_layer.objects.active = obj
    if obj.mode != "EDIT":
        bpy.ops.object.mode_set(mode="EDIT")
    bm = bmesh.from_edit_mesh(obj.data)
    bm.faces.ensure_lookup_table()
    for f in bm.faces:
        f.select_set(f.index in set(indices))
    bmesh.update_edit_mesh(obj.data)

def result_objects(source_name):
    collection = bpy.data.collections.get(source_name + " parts")
    return [] if collection is None else sorted(collection.objects, key=lambda o: o.name)

def ready_environment(prefs):
    # An engine environment in the 'ready' state: a venv that sees this project's packages through a .pth
    # file, standing in for an installed one. Returns its manager.
    import site, subprocess
    prefs.environment_dir = str(Path("engine_env").resolve())
    manager = session.environment_manager(prefs)
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(manager.env_dir)], check=True)
    packages = next(manager.env_dir.glob("lib/python*/site-packages"))
    (packages / "project.pth").write_text(site.getsitepackages()[0] + "\\n")
    (manager.env_dir / "holopart-env.json").write_text(json.dumps({{"python": "3.11", "packages": {{}}}}))
    assert manager.state().status == "ready"
    return manager
"""


def run_blender(body: str, tmp_path: Path, timeout: float = 300, checkout_addon: bool = True) -> dict:
    """Run ``body`` after the prelude; returns the merged ``emit`` values. Fails on a non-zero exit.
    ``checkout_addon=False`` leaves the add-on from this checkout disabled (to test the installed zip)."""
    script = tmp_path / "blender_test_script.py"
    script.write_text(f"ENABLE_CHECKOUT = {checkout_addon}\n" + PRELUDE + textwrap.dedent(body))
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout,
                          env=environ, cwd=tmp_path)
    if proc.returncode != 0:
        raise AssertionError(f"Blender script failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    values = {}
    for line in proc.stdout.splitlines():
        if line.startswith("EMIT "):
            values.update(json.loads(line[5:]))
    values["_stdout"] = proc.stdout
    return values
