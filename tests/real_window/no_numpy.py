# The numpy-free fallback in a real Blender window (issue #21), run by shared/tools/real-blender.sh with the
# repository bind-mounted at /work (see tests/test_real_window.py):
#
#     shared/tools/real-blender.sh run "$PWD" tests/real_window/no_numpy.py
#
# Debian's Blender finds numpy only in /usr/lib/python3/dist-packages (python3-numpy); this script takes
# that folder off sys.path before the extension is enabled, which is Blender as a build without numpy sees
# it. The extension must then register its fallback, borrow numpy from an engine environment made from this
# Blender's Python, load in full and complete a part.
import importlib.util
import json
import shutil
import subprocess
import sys
import time

sys.path[:] = [p for p in sys.path if "dist-packages" not in p]
for name in [n for n in sys.modules if n == "numpy" or n.startswith("numpy.")]:
    del sys.modules[name]
sys.path.insert(0, "/work")
sys.path.insert(0, "/work/tests/real_window")
import addon_utils  # noqa: E402
import bmesh  # noqa: E402
import bpy  # noqa: E402
from window import callback_errors, result, run, shot, view3d, wait_until  # noqa: E402

NUMPY_HIDDEN = importlib.util.find_spec("numpy") is None
addon_utils.enable("holopart_blender", default_set=True)
from holopart_blender.blender import numpy_fallback, session  # noqa: E402
from holopart_blender.blender.addon import preferences  # noqa: E402
from holopart_blender.blender.environment import _CHECK_SCRIPT, MARKER  # noqa: E402

ROOT = "/tmp/holopart-no-numpy"  # the engine environment's folder (prefs.environment_dir)


def make_environment():
    """An engine environment as the installer leaves it: a venv of Blender's own Python (here with the
    system's packages visible, for the CPU engines), numpy in its own site-packages, and the installer's
    record written from the installer's own check script."""
    shutil.rmtree(ROOT, ignore_errors=True)
    env = f"{ROOT}/env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", env], check=True)
    site = f"{env}/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    shutil.copytree("/usr/lib/python3/dist-packages/numpy", f"{site}/numpy")
    check = subprocess.run([f"{env}/bin/python", "-c", _CHECK_SCRIPT, "numpy", "scipy", "trimesh"],
                           capture_output=True, text=True, check=True)
    with open(f"{env}/{MARKER}", "w") as f:
        f.write(check.stdout.strip().splitlines()[-1])
    return site


def scenario():
    yield 0.5
    registered = {name: hasattr(bpy.types, name) for name in
                  ("HOLOPART_OT_use_environment_numpy", "HOLOPART_OT_install_environment", "HOLOPART_OT_complete_part",
                   "VIEW3D_PT_holopart")}
    result("fallback_registered", NUMPY_HIDDEN and not numpy_fallback.available()
           and registered["HOLOPART_OT_use_environment_numpy"] and registered["HOLOPART_OT_install_environment"]
           and registered["VIEW3D_PT_holopart"] and not registered["HOLOPART_OT_complete_part"],
           numpy_hidden=NUMPY_HIDDEN, registered=registered)

    # Without an environment the button says what to do, and nothing changes.
    preferences().environment_dir = ROOT
    shutil.rmtree(ROOT, ignore_errors=True)
    with bpy.context.temp_override(**view3d()):
        try:
            answer = bpy.ops.holopart.use_environment_numpy()
        except RuntimeError as exc:  # an operator's ERROR report is raised when called from Python
            answer = {"ERROR": str(exc)}
    result("fallback_without_environment", "ERROR" in answer and "engine environment" in answer["ERROR"]
           and not numpy_fallback.available(), answer=answer)

    site = make_environment()
    with bpy.context.temp_override(**view3d()):
        answer = bpy.ops.holopart.use_environment_numpy()
    yield from wait_until(lambda: hasattr(bpy.types, "HOLOPART_OT_complete_part"), 10)
    import numpy

    result("fallback_borrows_numpy", answer == {"FINISHED"} and hasattr(bpy.types, "HOLOPART_OT_complete_part")
           and numpy_fallback.borrowed_from() == site and numpy.__file__.startswith(site)
           and not hasattr(bpy.types, "HOLOPART_OT_use_environment_numpy"),
           answer=sorted(answer), borrowed=numpy_fallback.borrowed_from(), numpy=numpy.__file__)

    # Complete Part now works: the worker runs on the environment's Python.
    from holopart_blender.blender import job as job_state  # it needs numpy

    cube = bpy.data.objects["Cube"]
    bpy.context.view_layer.objects.active = cube
    with bpy.context.temp_override(**view3d(), active_object=cube, object=cube):
        bpy.ops.object.mode_set(mode="EDIT")
    bm = bmesh.from_edit_mesh(cube.data)
    for f in bm.faces:
        f.select_set(f.calc_center_median().z > 0.4)
    bmesh.update_edit_mesh(cube.data)
    t = time.monotonic()
    with bpy.context.temp_override(**view3d()):
        answer = bpy.ops.holopart.complete_part("INVOKE_DEFAULT")
    # The operator waits for the new worker's listing, then runs the job, which may start and end between
    # two polls: its parts collection counts as having seen it.
    yield from wait_until(lambda: job_state.current is not None or "Cube parts" in bpy.data.collections, 60)
    job = job_state.current
    yield from wait_until(lambda: job_state.current is None, 120)
    final = (job.final if job else None) or {}
    parts = bpy.data.collections.get("Cube parts")
    shot("no_numpy_complete_part")
    result("fallback_complete_part", answer == {"RUNNING_MODAL"} and final.get("type") in (None, "done")
           and parts is not None and len(parts.objects) == 1 and not callback_errors,
           final=final.get("type"), message=final.get("message"), worker=session.worker_client(preferences()).python,
           seconds=round(time.monotonic() - t, 1), errors=callback_errors[:3])
    print("environment:", json.dumps(session.environment_manager(preferences()).state().info), flush=True)


run(scenario, cleanup=session.shutdown_worker)
