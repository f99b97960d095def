# The modal operators in a real Blender window (issue #21): run by shared/tools/real-blender.sh with the
# repository bind-mounted at /work (see tests/test_real_window.py):
#
#     shared/tools/real-blender.sh run "$PWD" tests/real_window/modal_operators.py
#
# Steps through the scenario with bpy.app.timers, sends real Esc / Ctrl+Z with xdotool, prints one
# `RESULT {json}` line per check and exits non-zero (os._exit) when any check failed. Screenshots go to
# /work/out/real_window/ (the workdir's out/, ignored by git).
import json
import os
import subprocess
import sys
import time
import traceback

sys.path.insert(0, "/work")
import addon_utils  # noqa: E402
import bmesh  # noqa: E402
import bpy  # noqa: E402

addon_utils.enable("holopart_blender", default_set=True)
from holopart_blender.blender import job as job_state, reimport, session  # noqa: E402
from holopart_blender.blender.addon import preferences  # noqa: E402

SHOTS = "/work/out/real_window"
os.makedirs(SHOTS, exist_ok=True)
checks = []
T0 = time.monotonic()


def result(name, ok, **info):
    checks.append(bool(ok))
    print("RESULT " + json.dumps({"check": name, "ok": bool(ok), "t": round(time.monotonic() - T0, 1), **info},
                                 default=str), flush=True)


def view3d():
    w = bpy.context.window_manager.windows[0]
    a = next(a for a in w.screen.areas if a.type == "VIEW_3D")
    return dict(window=w, screen=w.screen, area=a, region=next(r for r in a.regions if r.type == "WINDOW"))


def key(*keys):
    c = view3d()
    r = c["region"]
    y = c["window"].height - (r.y + r.height // 2)
    subprocess.run(["xdotool", "mousemove", str(r.x + r.width // 2), str(y), "key", *keys], check=True)


def shot(name):
    subprocess.run(["import", "-window", "root", f"{SHOTS}/{name}.png"], check=False)


def scene_state():
    return {"objects": sorted(o.name for o in bpy.data.objects),
            "collections": sorted(c.name for c in bpy.data.collections),
            "meshes": {o.name: (len(o.data.vertices), len(o.data.polygons),
                                round(sum(v.co.length for v in o.data.vertices), 5))
                       for o in bpy.data.objects if o.type == "MESH" and o.mode != "EDIT"}}


def set_mode(obj, mode):
    with bpy.context.temp_override(**view3d(), active_object=obj, object=obj):
        if obj.mode != mode:
            bpy.ops.object.mode_set(mode=mode)


def activate(obj):
    for o in bpy.data.objects:
        if o.name not in bpy.context.view_layer.objects:
            continue
        if o.mode == "EDIT":
            set_mode(o, "OBJECT")
        o.select_set(False)
    obj.hide_set(False)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)


def select_faces(obj, pick):
    activate(obj)
    set_mode(obj, "EDIT")
    bm = bmesh.from_edit_mesh(obj.data)
    bm.faces.ensure_lookup_table()
    for f in bm.faces:
        f.select_set(pick(f))
    bmesh.update_edit_mesh(obj.data)


def invoke(op, **kwargs):
    with bpy.context.temp_override(**view3d()):
        return getattr(bpy.ops.holopart, op)("INVOKE_DEFAULT", **kwargs)


def wait_until(cond, timeout):
    """Generator: polls ``cond`` every 0.2 s; yields delays to the timer; ends when true or timed out."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        yield 0.2


def watch_progress(job, seen, timeout):
    """Polls the running job, collecting the status texts and fractions the modal timer shows."""
    deadline = time.monotonic() + timeout
    while job_state.current is job and time.monotonic() < deadline:
        seen.add((round(job.fraction, 3), job.status_text()))
        if len(seen) >= 2 and job.job_id is not None:  # the first text and one from the worker's progress
            return
        yield 0.05


def scenario():
    key("Escape")  # the splash screen
    yield 1.0
    prefs = preferences()
    # The worker was started at registration; wait for its engine listing (a timer collects it).
    yield from wait_until(lambda: session.engines_if_ready(prefs) is not None, 120)
    listing = session.engines_if_ready(prefs)
    completion = (listing or {}).get("completion", {})
    engine = next((e for e in ("geometric", "hull", "visible") if completion.get(e, {}).get("available")), None)
    client = session.worker_client(prefs)
    result("worker_listing", engine is not None, engine=engine, python=client.python,
           reasons={k: v.get("reason") for k, v in completion.items() if not v.get("available")})
    if engine is None:
        return
    scene = bpy.context.scene

    # Smooth by Angle comes from Blender's essentials assets, which Debian's build lacks: the lookup must
    # say "missing" (the product then shades the mesh itself) rather than fail.
    assets = bpy.utils.system_resource("DATAFILES", path="assets")
    try:
        group = reimport._essentials_node_group(reimport.SMOOTH_BY_ANGLE)
        result("essentials_lookup", True, assets=assets, found=group is not None)
    except Exception as exc:
        result("essentials_lookup", False, assets=assets, error=f"{type(exc).__name__}: {exc}",
               note="system_resource gave '' (no assets) and Path('') is the working folder, which was searched")
        reimport._missing_assets.add(reimport.SMOOTH_BY_ANGLE)  # what a fixed lookup returns: go on with the rest

    # A heavy mesh so that a job runs long enough to be cancelled.
    for o in list(bpy.data.objects):
        bpy.data.objects.remove(o)
    with bpy.context.temp_override(**view3d()):
        bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=7, radius=1.0, location=(0, 0, 0))
    ball = bpy.context.active_object
    ball.name = "Ball"
    if engine == "geometric":
        scene.holopart["geometric.resolution"] = 512
    select_faces(ball, lambda f: f.calc_center_median().z > -0.3)
    before = scene_state()
    shot("01_edit_mode")

    # 1. Invoke Complete Part in Edit Mode: modal, and progress shows (run to the end; the result is then removed).
    t = time.monotonic()
    answer = invoke("complete_part", engine=engine)
    job = job_state.current
    seen = set()
    if job is not None:
        yield from watch_progress(job, seen, 120)
        shot("02_progress")
        yield from wait_until(lambda: job_state.current is None, 120)
    texts = sorted({s for _, s in seen})
    final = (job.final if job else None) or {}
    result("invoke_progress", answer == {"RUNNING_MODAL"} and job is not None and len(texts) >= 2
           and max(f for f, _ in seen) > 0, answer=sorted(answer), progress=sorted(seen)[:8],
           final=final.get("type"), seconds=round(time.monotonic() - t, 1))
    if job_state.current is not None:
        return
    for name in [n for n in bpy.data.objects.keys() if n not in before["objects"]]:
        bpy.data.objects.remove(bpy.data.objects[name])
    if "Ball parts" in bpy.data.collections:
        bpy.data.collections.remove(bpy.data.collections["Ball parts"])
    select_faces(bpy.data.objects["Ball"], lambda f: f.calc_center_median().z > -0.3)
    before = scene_state()
    yield 0.5

    # 2. A real Esc, right after the click, cancels the job.
    answer = invoke("complete_part", engine=engine)
    job = job_state.current
    t = time.monotonic()
    key("Escape")
    yield from wait_until(lambda: job_state.current is None, 60)
    yield 0.5
    after = scene_state()
    final = (job.final if job else None) or {}
    forced = job is not None and job.final is None  # no answer in FORCE_KILL_SECONDS: the worker was stopped
    result("esc_cancels", answer == {"RUNNING_MODAL"} and job_state.current is None
           and (final.get("type") == "cancelled" or forced) and job.cancel_time is not None and after == before
           and "Ball parts" not in bpy.data.collections,
           final=final.get("type"), forced=forced, esc_seen=job is not None and job.cancel_time is not None,
           seconds=round(time.monotonic() - t, 1), new_objects=sorted(set(after["objects"]) - set(before["objects"])),
           mode=bpy.data.objects["Ball"].mode)
    if job_state.current is not None:
        return

    # 3. The Cancel button's operator cancels.
    yield 1.0  # the worker's answer to a cancel may trail
    answer = invoke("complete_part", engine=engine)
    job = job_state.current
    yield 0.2
    with bpy.context.temp_override(**view3d()):
        polled = bpy.ops.holopart.cancel.poll()
        cancel_answer = bpy.ops.holopart.cancel() if polled else {"NOT_POLLED"}
    t = time.monotonic()
    yield from wait_until(lambda: job_state.current is None, 60)
    yield 0.5
    after = scene_state()
    final = (job.final if job else None) or {}
    forced = job is not None and job.final is None
    result("cancel_button", answer == {"RUNNING_MODAL"} and cancel_answer == {"FINISHED"}
           and job_state.current is None and (final.get("type") == "cancelled" or forced) and after == before,
           forced=forced,
           answer=sorted(answer), cancel=sorted(cancel_answer), final=final.get("type"),
           seconds=round(time.monotonic() - t, 1),
           new_objects=sorted(set(after["objects"]) - set(before["objects"])))
    if job_state.current is not None:
        return

    # 4. Complete All succeeds; one real Ctrl+Z removes the result and restores the scene.
    set_mode(bpy.data.objects["Ball"], "OBJECT")
    bpy.data.objects.remove(bpy.data.objects["Ball"])
    if engine == "geometric":
        scene.holopart["geometric.resolution"] = 64
    with bpy.context.temp_override(**view3d()):
        bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, 0))
        bpy.ops.mesh.primitive_cylinder_add(radius=0.3, depth=1.0, location=(0, 0, 1.0))
        bpy.ops.object.select_all(action="SELECT")
        bpy.ops.object.join()
    toy = bpy.context.active_object
    toy.name = "Toy"
    activate(toy)
    with bpy.context.temp_override(**view3d()):
        bpy.ops.ed.undo_push(message="Toy set up")
    before = scene_state()
    t = time.monotonic()
    answer = invoke("complete_all", engine=engine)
    job = job_state.current
    yield from wait_until(lambda: job_state.current is None, 240)
    yield 0.5
    final = (job.final if job else None) or {}
    coll = bpy.data.collections.get("Toy parts")
    parts = sorted(o.name for o in coll.objects) if coll else []
    ok = answer == {"RUNNING_MODAL"} and final.get("type") == "done" and len(parts) >= 1
    result("complete_all_done", ok, final=final.get("type"), parts=parts, message=final.get("message"),
           seconds=round(time.monotonic() - t, 1), source_hidden=bpy.data.objects["Toy"].hide_get())
    shot("03_complete_all")
    key("ctrl+z")
    yield from wait_until(lambda: "Toy parts" not in bpy.data.collections, 10)
    yield 1.0
    after = scene_state()
    toy = bpy.data.objects.get("Toy")
    result("complete_all_undo", ok and after == before and toy is not None and not toy.hide_get(),
           left_over=sorted(set(after["objects"]) - set(before["objects"])),
           missing=sorted(set(before["objects"]) - set(after["objects"])),
           collections=after["collections"], source_visible=toy is not None and not toy.hide_get())
    shot("04_undone")

    # 5. A failure (the selected faces are all degenerate: the engine refuses them), then Ctrl+Z.
    mesh = bpy.data.meshes.new("Flat")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0), (3, 0, 0), (3, 0, 0), (3, 0, 0)], [],
                     [(0, 1, 2, 3), (4, 5, 6)])
    flat = bpy.data.objects.new("Flat", mesh)
    scene = bpy.context.scene  # the undo replaced the scene's Python object
    scene.collection.objects.link(flat)
    activate(flat)
    with bpy.context.temp_override(**view3d()):
        bpy.ops.ed.undo_push(message="Flat set up")
    before = scene_state()
    select_faces(flat, lambda f: f.index == 1)
    with bpy.context.temp_override(**view3d()):
        bpy.ops.ed.undo_push(message="Flat selection")
    answer = invoke("complete_part", engine=engine)
    job = job_state.current
    yield from wait_until(lambda: job_state.current is None, 120)
    yield 0.5
    final = (job.final if job else None) or {}
    set_mode_after = bpy.data.objects["Flat"].mode
    failed = final.get("type") == "error" or (job is None and answer == {"CANCELLED"})
    result("failure_answered", failed and "Flat parts" not in bpy.data.collections,
           answer=sorted(answer), final=final.get("type"), message=final.get("message"), mode=set_mode_after)
    shot("05_failure")
    key("ctrl+z")  # the failed run recorded no step: this goes back past the selection step
    yield 1.5
    mode_after_undo = bpy.data.objects["Flat"].mode if "Flat" in bpy.data.objects else None
    for o in bpy.data.objects:
        if o.mode == "EDIT":
            set_mode(o, "OBJECT")
    yield 0.5
    after = scene_state()
    result("failure_undo", after == before and "Flat parts" not in bpy.data.collections,
           objects=after["objects"], expected=before["objects"], meshes=after["meshes"].get("Flat"),
           expected_mesh=before["meshes"].get("Flat"), mode_after_undo=mode_after_undo)


steps = scenario()


def tick():
    try:
        return next(steps)
    except StopIteration:
        pass
    except Exception:
        traceback.print_exc()
        result("script_error", False, error=traceback.format_exc().splitlines()[-1])
    ok = checks and all(checks)
    print(f"REAL_WINDOW {'PASSED' if ok else 'FAILED'} {sum(checks)}/{len(checks)} in "
          f"{time.monotonic() - T0:.1f} s", flush=True)
    sys.stdout.flush()
    session.shutdown_worker()
    os._exit(0 if ok else 1)


bpy.app.timers.register(tick, first_interval=2.0)
