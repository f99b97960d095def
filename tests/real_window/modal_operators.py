# The modal operators in a real Blender window (issue #21): run by shared/tools/real-blender.sh with the
# repository bind-mounted at /work (see tests/test_real_window.py):
#
#     shared/tools/real-blender.sh run "$PWD" tests/real_window/modal_operators.py
#
# Steps through the scenario with bpy.app.timers, sends real Esc / Ctrl+Z with xdotool, prints one
# `RESULT {json}` line per check and exits non-zero (os._exit) when any check failed. Screenshots go to
# /work/out/real_window/ (the workdir's out/, ignored by git).
import contextlib
import sys
import time

sys.path.insert(0, "/work")
sys.path.insert(0, "/work/tests/real_window")
import addon_utils  # noqa: E402
import bmesh  # noqa: E402
import bpy  # noqa: E402
from window import callback_errors, key, key_clear_of_popups, result, run, shot, view3d, wait_until  # noqa: E402

addon_utils.enable("holopart_blender", default_set=True)
from holopart_blender.blender import job as job_state, reimport, session  # noqa: E402
from holopart_blender.blender.addon import preferences  # noqa: E402

# `-- --remote URL TOKEN_FILE`: the same scenario with the engine on a `holopart serve` server.
ARGS = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if ARGS[:1] == ["--remote"]:
    preferences().engine_location = "REMOTE"
    preferences().server_url = ARGS[1]
    with open(ARGS[2]) as f:
        preferences().server_token = f.read().strip()


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


def ctrl_z(done, timeout):
    """Generator: a real Ctrl+Z, then waits until ``done()`` or ``timeout`` and 1 s more; returns when (seconds
    after the key) Blender ran an undo step, so that a key that never reached the undo fails the check."""
    runs, t = [], time.monotonic()

    def record(*_):
        runs.append(round(time.monotonic() - t, 2))

    bpy.app.handlers.undo_post.append(record)
    try:
        yield from key_clear_of_popups("ctrl+z")
        t = time.monotonic()
        yield from wait_until(done, timeout)
        yield 1.0
    finally:
        bpy.app.handlers.undo_post.remove(record)
    return runs


def watch_progress(job, seen, timeout):
    """Polls the running job, collecting the status texts and fractions the modal timer shows."""
    deadline = time.monotonic() + timeout
    while job_state.current is job and time.monotonic() < deadline:
        seen.add((round(job.fraction, 3), job.status_text()))
        if len(seen) >= 2 and job.job_id is not None and max(f for f, _ in seen) > 0:  # the worker has progressed
            return
        yield 0.05


class StallProbe:
    """A 20 ms timer that records the longest gap between its ticks: how long Blender's main thread (the
    UI) was blocked while it ran."""

    def __init__(self):
        self.last, self.longest, self.running = time.monotonic(), 0.0, True
        self.gaps = []  # (seconds since the probe started, gap) of the gaps over 0.1 s
        self.ticks = 0
        self.start = self.last
        bpy.app.timers.register(self.tick, first_interval=0.02)

    def tick(self):
        now = time.monotonic()
        self.longest = max(self.longest, now - self.last)
        if now - self.last > 0.1:
            self.gaps.append((round(self.last - self.start, 2), round(now - self.last, 3)))
        self.last, self.ticks = now, self.ticks + 1
        return 0.02 if self.running else None


class CallbackClock:
    """Times the product's own main-thread callbacks (the operator's invoke and modal, the listing timer,
    the panels' draw) by wrapping them: Blender looks these up by name at each call, and passes as many
    arguments as the function's signature names, so each wrapper spells its signature out."""

    def __init__(self):
        from holopart_blender.blender import operators, panels

        self.longest, self.where = 0.0, ""
        job_op, clock = operators._EngineJobOperator, self
        invoke, modal, collect = job_op.invoke, job_op.modal, session._collect_listing
        draws = {cls: cls.draw for cls in (panels.VIEW3D_PT_holopart, panels.VIEW3D_PT_holopart_settings)}

        def timed_invoke(self, context, event):
            with clock.timing("invoke"):
                return invoke(self, context, event)

        def timed_modal(self, context, event):
            with clock.timing("modal"):
                return modal(self, context, event)

        def timed_collect():
            with clock.timing("listing timer"):
                return collect()

        def timed_draw(self, context):
            with clock.timing(f"{type(self).__name__}.draw"):
                return draws[type(self)](self, context)

        job_op.invoke, job_op.modal, session._collect_listing = timed_invoke, timed_modal, timed_collect
        for cls in draws:
            cls.draw = timed_draw

    @contextlib.contextmanager
    def timing(self, label):
        t = time.monotonic()
        try:
            yield
        finally:
            if time.monotonic() - t > self.longest:
                self.longest, self.where = time.monotonic() - t, label


def first_job():
    """The first job of the session, clicked before the worker has listed its engines (it was started at
    registration and takes seconds): the click must not block the UI (issue #21: under 0.3 s)."""
    cube = bpy.data.objects["Cube"]
    select_faces(cube, lambda f: f.calc_center_median().z > 0.4)
    yield 1.5  # Edit Mode's first draw (shaders compiled on the CPU here) is Blender's, not the job's
    session.shutdown_worker()  # as at the session's start: no worker yet, no listing (registration's warm-up
    #                           may have been quicker than this script)
    listed_before = session._engines is not None
    idle = StallProbe()  # the same window with nothing running: Blender's own redraws
    yield 2.0
    idle.running = False
    clock = CallbackClock()
    probe = StallProbe()
    t = time.monotonic()
    answer = invoke("complete_part")  # the preferences' engine: the operator lists no engine names yet
    invoke_seconds = time.monotonic() - t
    # The operator waits for the listing, then runs the job; a job on one cube face may start and end
    # between two polls, so its result (the parts collection) counts as having seen it.
    yield from wait_until(lambda: job_state.current is not None or "Cube parts" in bpy.data.collections, 60)
    job = job_state.current
    job_start = time.monotonic() - t
    yield from wait_until(lambda: job_state.current is None, 120)
    probe.running = False
    final = (job.final if job else None) or {}
    parts = bpy.data.collections.get("Cube parts")
    done = parts is not None and len(parts.objects) == 1 and final.get("type") in (None, "done")
    # The product's callbacks must stay under 0.3 s. The probe's longest gap also counts Blender's own
    # drawing, which on this software-OpenGL build with busy cores takes up to about a second per redraw.
    result("first_job_ui", answer == {"RUNNING_MODAL"} and done and clock.longest < 0.3,
           longest_product_callback=round(clock.longest, 3), slowest=clock.where, ticks=probe.ticks,
           idle_longest_gap=round(idle.longest, 3),
           listed_before=listed_before, invoke_seconds=round(invoke_seconds, 3),
           longest_ui_block=round(probe.longest, 3), job_seconds=round(time.monotonic() - t, 1),
           final=final.get("type"), message=final.get("message"), job_started=round(job_start, 2),
           job_ended=round(time.monotonic() - t, 2), gaps=probe.gaps)
    set_mode(cube, "OBJECT")
    for name in [n for n in bpy.data.objects.keys() if n != "Cube" and n.startswith("Cube")]:
        bpy.data.objects.remove(bpy.data.objects[name])


def scenario():
    key("Escape")  # the splash screen
    yield 0.3
    yield from first_job()
    prefs = preferences()
    # The worker was started at registration; wait for its engine listing (a timer collects it).
    yield from wait_until(lambda: session.engines_if_ready(prefs) is not None, 120)
    listing = session.engines_if_ready(prefs)
    completion = (listing or {}).get("completion", {})
    engine = next((e for e in ("geometric", "hull", "visible") if completion.get(e, {}).get("available")), None)
    client = session.worker_client(prefs)
    result("worker_listing", engine is not None, engine=engine, worker=getattr(client, "python", None) or client.url,
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
    undos = yield from ctrl_z(lambda: "Toy parts" not in bpy.data.collections, 10)
    after = scene_state()
    toy = bpy.data.objects.get("Toy")
    result("complete_all_undo", ok and len(undos) == 1 and after == before and toy is not None and not toy.hide_get(),
           left_over=sorted(set(after["objects"]) - set(before["objects"])),
           missing=sorted(set(before["objects"]) - set(after["objects"])),
           collections=after["collections"], source_visible=toy is not None and not toy.hide_get(),
           undo_steps_at=undos)
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
    # The failed run recorded no step: this goes back past the selection step.
    undos = yield from ctrl_z(lambda: False, 1.5)
    mode_after_undo = bpy.data.objects["Flat"].mode if "Flat" in bpy.data.objects else None
    for o in bpy.data.objects:
        if o.mode == "EDIT":
            set_mode(o, "OBJECT")
    yield 0.5
    after = scene_state()
    result("failure_undo", len(undos) == 1 and after == before and "Flat parts" not in bpy.data.collections,
           objects=after["objects"], expected=before["objects"], meshes=after["meshes"].get("Flat"),
           expected_mesh=before["meshes"].get("Flat"), mode_after_undo=mode_after_undo, undo_steps_at=undos)

    # 6. The sidebar's HoloPart tab draws (with a last-run summary to show), and no callback raised.
    from holopart_blender.blender import panels

    draws = {"n": 0}
    panel_draw = panels.VIEW3D_PT_holopart.draw

    def counted_draw(self, context):
        draws["n"] += 1
        return panel_draw(self, context)

    # The sidebar's tab cannot be chosen from Python (read-only): show the panel under the tab it opens on.
    bpy.utils.unregister_class(panels.VIEW3D_PT_holopart_settings)
    bpy.utils.unregister_class(panels.VIEW3D_PT_holopart)
    panels.VIEW3D_PT_holopart.draw = counted_draw
    panels.VIEW3D_PT_holopart.bl_category = "Item"
    bpy.utils.register_class(panels.VIEW3D_PT_holopart)
    bpy.utils.register_class(panels.VIEW3D_PT_holopart_settings)
    c = view3d()
    c["area"].spaces.active.show_region_ui = True
    c["area"].tag_redraw()
    yield 2.0
    shot("06_sidebar")
    result("no_callback_errors", draws["n"] > 0 and not callback_errors and bool(session.last_summary),
           sidebar_drawn=draws["n"], errors=callback_errors[:5], last_summary=session.last_summary)


run(scenario, cleanup=session.shutdown_worker)
