"""The operators in real Blender (bpy 5.0.1) with the real worker process and the default engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from blender_harness import ROOT, run_blender

ENGINE = "PREFERENCES"  # the product default: the preferences' "auto"


def test_complete_part_makes_a_new_object_and_leaves_the_source_alone(tmp_path):
    out = run_blender(f"""
        from mathutils import Matrix
        src = cube("Crate", location=(1.0, 2.0, 3.0))
        src.rotation_euler = (0.3, 0.2, 0.1)
        src.scale = (1.0, 2.0, 0.5)
        red, blue = bpy.data.materials.new("Red"), bpy.data.materials.new("Blue")
        src.data.materials.append(red)
        src.data.materials.append(blue)
        src.data.polygons[1].material_index = 1
        bpy.context.view_layer.update()
        before = [tuple(v.co) for v in src.data.vertices]
        select_faces(src, [0, 1, 2])
        state = session.environment_manager(bpy.context.preferences.addons["holopart_blender"].preferences).state()
        assert state.status == "missing", state  # first run: no engine environment
        result = bpy.ops.holopart.complete_part(engine={ENGINE!r})
        assert result == {{"FINISHED"}}, result
        assert session.worker_client(bpy.context.preferences.addons["holopart_blender"].preferences).python == sys.executable
        assert "UNDO" in bpy.types.HOLOPART_OT_complete_part.bl_options
        parts = result_objects("Crate")
        assert [p.name for p in parts] == ["Crate_part"], [p.name for p in parts]
        part = parts[0]
        assert bpy.data.collections["Crate parts"].name in [c.name for c in bpy.context.scene.collection.children]
        assert np.allclose(np.array(part.matrix_world), np.array(src.matrix_world), atol=1e-6)
        assert src.hide_get() and src.mode == "OBJECT"
        assert bpy.context.view_layer.objects.active == part and part.select_get()  # Complete All can go on
        assert [tuple(v.co) for v in src.data.vertices] == before and len(src.data.polygons) == 6
        assert {{m.name for m in part.data.materials}} <= {{"Red", "Blue"}} and len(part.data.materials) >= 1
        assert [m.name for m in part.modifiers] == ["Smooth by Angle"], [m.name for m in part.modifiers]
        # Kept faces carry the source's UVs corner by corner (matched here by world position).
        source_uv = dict()
        for f in (0, 1, 2):
            for li in src.data.polygons[f].loop_indices:
                key = tuple(np.round(src.matrix_world @ src.data.vertices[src.data.loops[li].vertex_index].co, 4))
                source_uv.setdefault(key, set()).add(tuple(np.round(src.data.uv_layers["UVMap"].uv[li].vector, 4)))
        matched = 0
        for li, loop in enumerate(part.data.loops):
            key = tuple(np.round(part.matrix_world @ part.data.vertices[loop.vertex_index].co, 4))
            uv = tuple(np.round(part.data.uv_layers["UVMap"].uv[li].vector, 4))
            if key in source_uv and uv != (0.0, 0.0):
                assert uv in source_uv[key], (key, uv, source_uv[key])
                matched += 1
        # The part, in world space, covers the selected faces (given to the engine in world space).
        world = np.array([tuple(part.matrix_world @ v.co) for v in part.data.vertices])
        sel = np.array([tuple(src.matrix_world @ src.data.vertices[i].co)
                        for f in (0, 1, 2) for i in src.data.polygons[f].vertices])
        diag = np.linalg.norm(sel.max(0) - sel.min(0))
        assert np.all(world.min(0) <= sel.min(0) + 0.05 * diag) and np.all(world.max(0) >= sel.max(0) - 0.05 * diag)
        assert np.all(world.min(0) >= sel.min(0) - 0.5 * diag) and np.all(world.max(0) <= sel.max(0) + 0.5 * diag)
        # An engine that remeshes (the convex hull keeps no face) gets a Data Transfer from the source instead.
        src.hide_set(False)
        select_faces(src, [3, 4])
        assert bpy.ops.holopart.complete_part(engine="hull") == {{"FINISHED"}}
        hull = bpy.data.objects["Crate_part.001"]  # Complete Part adds to the source's collection
        assert sorted(o.name for o in bpy.data.collections["Crate parts"].objects) == ["Crate_part", "Crate_part.001"]
        assert "Crate parts.001" not in bpy.data.collections and bpy.context.view_layer.objects.active == hull
        assert [m.type for m in hull.modifiers] == ["NODES", "DATA_TRANSFER"], [m.type for m in hull.modifiers]
        transfer = hull.modifiers[-1]
        assert transfer.object == src and transfer.vertex_group == "holopart_visible"
        assert {{"UV", "CUSTOM_NORMAL"}} <= set(transfer.data_types_loops) and "UVMap" in hull.data.uv_layers
        group = hull.vertex_groups["holopart_visible"].index
        visible = sum(1 for v in hull.data.vertices if any(g.group == group for g in v.groups))
        emit(visible=visible, matched=matched, info=dict(part["holopart"]))
    """, tmp_path)
    assert out["matched"] >= 18  # 3 quads = 6 triangles = 18 corners kept with their UVs
    assert out["visible"] > 0
    assert out["info"]["source"] == "Crate" and out["info"]["engine"] == "geometric"


def test_empty_selection_all_faces_and_non_mesh(tmp_path):
    out = run_blender(f"""
        src = cube("Box")
        select_faces(src, [])
        try:  # an operator's error report is raised as RuntimeError when called from Python
            bpy.ops.holopart.complete_part(engine={ENGINE!r})
            raise AssertionError("no error for an empty selection")
        except RuntimeError as exc:
            empty_error = str(exc)
        assert result_objects("Box") == [] and not src.hide_get()
        select_faces(src, range(6))  # the whole mesh is one part
        assert bpy.ops.holopart.complete_part(engine={ENGINE!r}) == {{"FINISHED"}}
        assert len(result_objects("Box")) == 1
        bpy.ops.object.empty_add()
        errors = []
        for op in (bpy.ops.holopart.complete_all, bpy.ops.holopart.segment, bpy.ops.holopart.complete_part):
            try:
                op()
            except RuntimeError as exc:
                errors.append(str(exc))
        emit(errors=errors, empty_error=empty_error)
    """, tmp_path)
    assert "no faces are selected" in out["empty_error"]
    assert len(out["errors"]) == 3
    assert "must be a mesh" in out["errors"][0] and "must be a mesh" in out["errors"][1]
    assert "Edit Mode" in out["errors"][2]


def test_segment_then_correct_with_new_and_assign_part(tmp_path):
    out = run_blender(f"""
        from holopart_blender.blender.labels import read_labels
        a = two_cubes_joined("A")
        assert bpy.ops.holopart.segment() == {{"FINISHED"}}
        labels = read_labels(a.data)
        centers = np.array([tuple(p.center) for p in a.data.polygons])
        left = centers[:, 0] < 2
        assert len(set(labels[left])) == 1 and len(set(labels[~left])) == 1 and labels[left][0] != labels[~left][0]
        assert "holopart_part_color" in a.data.color_attributes
        select_faces(a, [0])
        assert bpy.ops.holopart.new_part() == {{"FINISHED"}}
        bpy.ops.object.mode_set(mode="OBJECT")
        after_new = read_labels(a.data)
        select_faces(a, [0])
        assert bpy.ops.holopart.assign_part(part=int(labels[1])) == {{"FINISHED"}}
        bpy.ops.object.mode_set(mode="OBJECT")
        emit(labels=labels.tolist(), after_new=after_new.tolist(), after_assign=read_labels(a.data).tolist())
    """, tmp_path)
    labels, after_new, after_assign = out["labels"], out["after_new"], out["after_assign"]
    assert after_new[0] == max(labels) + 1 and after_new[1:] == labels[1:]
    assert after_assign[0] == labels[1] and after_assign[1:] == labels[1:]


def test_evaluated_mesh_ngons_shape_keys_and_modifiers(tmp_path):
    out = run_blender("""
        bpy.ops.mesh.primitive_circle_add(vertices=12, fill_type="NGON", location=(0, 0, 5))
        disc = bpy.context.active_object
        disc.shape_key_add(name="Basis")
        key = disc.shape_key_add(name="Lift")
        for point in key.data:
            point.co.z += 1.0
        key.value = 1.0
        array = disc.modifiers.new("Array", "ARRAY")
        array.count = 2
        disc.data.polygons[0].select = True
        source = export.read_source(disc, bpy.context.evaluated_depsgraph_get(), "selection")
        job = source.job
        emit(faces=job.mesh.num_faces, polygons=source.num_polygons, z=job.mesh.vertices[:, 2].tolist(),
             labelled=int((job.face_labels == 0).sum()), polygon_of=source.tri_polygon.tolist())
    """, tmp_path)
    assert out["polygons"] == 2  # the array's copy is a face of the evaluated mesh
    assert out["faces"] == 2 * 10  # each 12-gon becomes 10 triangles
    assert out["labelled"] == 20  # the selection is carried onto the copy and onto every triangle
    assert all(abs(z - 6.0) < 1e-5 for z in out["z"])  # shape key (+1) and object location (+5), world space
    assert sorted(set(out["polygon_of"])) == [0, 1]


def test_complete_all_on_a_benchmark_asset(tmp_path, benchmark_dir):
    asset = benchmark_dir / "drawer.glb"
    out = run_blender(f"""
        bpy.ops.import_scene.gltf(filepath={str(asset)!r}, merge_vertices=True)
        objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
        with bpy.context.temp_override(active_object=objs[0], selected_editable_objects=objs):
            bpy.ops.object.join()
        src = bpy.context.view_layer.objects.active = objs[0]
        src.name = "drawer"
        faces = len(src.data.polygons)
        assert bpy.ops.holopart.complete_all(engine={ENGINE!r}) == {{"FINISHED"}}
        parts = result_objects("drawer")
        low = np.array([tuple(src.matrix_world @ v.co) for v in src.data.vertices])
        lo, hi = low.min(0), low.max(0)
        pad = 0.1 * np.linalg.norm(hi - lo)
        for p in parts:
            w = np.array([tuple(p.matrix_world @ v.co) for v in p.data.vertices])
            assert np.all(w.min(0) >= lo - pad) and np.all(w.max(0) <= hi + pad), p.name
        assert src.hide_get() and "holopart_part" not in src.data.attributes and len(src.data.polygons) == faces
        emit(names=[p.name for p in parts], engines=sorted({{p["holopart"]["engine"] for p in parts}}))
    """, tmp_path, timeout=400)
    assert len(out["names"]) >= 2 and all(n.startswith("drawer_") for n in out["names"])
    assert "Info: HoloPart:" in out["_stdout"] and "(auto)" in out["_stdout"]  # auto says which engine ran


def test_cancel_and_a_killed_worker(tmp_path, benchmark_dir):
    asset = benchmark_dir / "lamp.glb"
    out = run_blender(f"""
        import os, signal, time
        bpy.ops.import_scene.gltf(filepath={str(asset)!r}, merge_vertices=True)
        objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
        with bpy.context.temp_override(active_object=objs[0], selected_editable_objects=objs):
            bpy.ops.object.join()
        src = objs[0]
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences

        def start():  # what the modal operator does on invoke
            source = export.read_source(src, bpy.context.evaluated_depsgraph_get(), "none")
            request = operators.make_request(prefs, bpy.context.scene.holopart, "amodal")
            job = Job(session.worker_client(prefs), source, request)
            job.start()
            return job

        def wait(job, until):  # what the modal timer does
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                final = job.drain()
                if final is not None or until(job):
                    return final
                time.sleep(0.05)
            raise AssertionError("no answer from the worker")

        job = start()
        wait(job, lambda j: j.fraction > 0 or j.stage)
        job.cancel()
        cancelled = wait(job, lambda j: False)
        job.finish()
        job = start()
        wait(job, lambda j: j.job_id is not None and j.stage)
        os.kill(job.client.pid, signal.SIGKILL)
        killed = wait(job, lambda j: False)
        job.finish()
        assert bpy.ops.holopart.complete_all(engine={ENGINE!r}) == {{"FINISHED"}}  # a fresh worker takes over
        emit(cancelled=cancelled["type"], killed=killed["type"], kind=killed.get("kind"), parts=len(result_objects(src.name)))
    """, tmp_path, timeout=400)
    assert out["cancelled"] == "cancelled"
    assert out["killed"] == "error" and out["kind"] == "worker_crashed"
    assert out["parts"] >= 2


def test_online_access_off_refuses_downloads(tmp_path):
    out = run_blender("""
        assert not bpy.app.online_access
        messages = []
        for op in (bpy.ops.holopart.install_environment, bpy.ops.holopart.download_weights):
            try:
                op()
            except RuntimeError as exc:  # the operator's error report
                messages.append(str(exc))
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        manager = session.environment_manager(prefs)
        emit(messages=messages, env_exists=manager.env_dir.exists(), new_exists=manager.new_dir.exists())
    """, tmp_path)
    assert len(out["messages"]) == 2 and all("online access is off" in m for m in out["messages"])
    assert not out["env_exists"] and not out["new_exists"]


def test_engine_choices_and_settings_come_from_the_engines(tmp_path):
    out = run_blender("""
        from holopart_blender.blender import properties
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        settings = bpy.context.scene.holopart
        assert prefs.engine == "auto" and settings.segmentation_engine == "auto"
        prefs.engine = "geometric"
        assert prefs.engine == "geometric"
        completion = [item[0] for item in properties.completion_items(prefs, bpy.context)]
        segmentation = [item[0] for item in properties.segmentation_items(settings, bpy.context)]
        settings["holopart.guidance"] = 4  # set by a script before the panel made the setting: kept, as a float
        properties.ensure_settings(settings, session.engines(prefs))
        assert settings["holopart.guidance"] == 4.0 and isinstance(settings["holopart.guidance"], float)
        settings["holopart.guidance"] = 3.5
        steps = settings.id_properties_ui("holopart.steps").as_dict()
        guidance = settings.id_properties_ui("holopart.guidance").as_dict()
        settings["holopart.steps"] = 25
        settings["geometric.resolution"] = 64
        prefs.engine = "holopart"
        holopart = operators.make_request(prefs, settings, "complete")
        geometric = operators.make_request(prefs, settings, "complete", "geometric")
        emit(completion=completion, segmentation=segmentation, steps=steps, guidance=guidance,
             holopart=holopart.settings, geometric=geometric.settings, keys=sorted(properties.stored_settings(settings)))
    """, tmp_path)
    assert out["completion"][0] == "auto" and {"holopart", "geometric", "hull", "visible"} <= set(out["completion"])
    assert "spectral" in out["segmentation"] and "seeded" not in out["segmentation"]
    assert (out["steps"]["min"], out["steps"]["max"], out["steps"]["default"]) == (1, 1000, 50)
    assert (out["guidance"]["max"], out["guidance"]["default"]) == (50.0, 3.5) and out["steps"]["description"]
    assert out["holopart"]["steps"] == 25 and "resolution" not in out["holopart"]
    assert out["geometric"] == {"resolution": 64}
    assert "holopart.weights" not in out["keys"] and "holopart.device" not in out["keys"]


def test_grow_parts_from_seeds_is_one_undo_step(tmp_path):
    out = run_blender("""
        from holopart_blender.blender.labels import read_labels
        a = two_cubes_joined("A")
        try:
            bpy.ops.holopart.grow_parts()
            raise AssertionError("no error without seeds")
        except RuntimeError as exc:
            no_seeds = str(exc)
        centers = np.array([tuple(p.center) for p in a.data.polygons])
        left = np.flatnonzero(centers[:, 0] < 2)
        right = np.flatnonzero(centers[:, 0] >= 2)
        select_faces(a, [int(left[0])])
        assert bpy.ops.holopart.new_part() == {"FINISHED"}
        select_faces(a, [int(right[0])])
        assert bpy.ops.holopart.new_part() == {"FINISHED"}
        bpy.ops.object.mode_set(mode="OBJECT")
        seeds = read_labels(a.data)
        bpy.ops.object.mode_set(mode="EDIT")

        def edit_labels():  # the part attribute as Edit Mode holds it
            bm = bmesh.from_edit_mesh(a.data)
            layer = bm.faces.layers.int["holopart_part"]
            return [f[layer] for f in bm.faces]

        bpy.ops.ed.undo_push(message="start")  # background mode: undo starts with a first push,
        bpy.ops.ed.undo_push(message="seeds")  # and this step (the state to come back to) is in Edit Mode
        assert bpy.ops.holopart.grow_parts() == {"FINISHED"}
        assert a.mode == "EDIT"
        grown = edit_labels()
        bpy.ops.ed.undo()
        undone = edit_labels()
        bpy.ops.object.mode_set(mode="OBJECT")
        assert read_labels(a.data).tolist() == undone
        emit(no_seeds=no_seeds, seeds=seeds.tolist(), grown=grown, undone=undone, left=left.tolist(),
             right=right.tolist(), colors=len(a.data.color_attributes["holopart_part_color"].data),
             loops=len(a.data.loops))
    """, tmp_path)
    assert "no face is marked as a part" in out["no_seeds"]
    grown = out["grown"]
    assert {grown[i] for i in out["left"]} == {0} and {grown[i] for i in out["right"]} == {1}
    assert out["colors"] == out["loops"]
    assert out["undone"] == out["seeds"]  # one undo brings back the seeds


def test_complete_all_again_replaces_a_failed_build_changes_nothing_and_no_smoothing_asset(tmp_path):
    out = run_blender("""
        from holopart_blender.blender import reimport
        from holopart_blender.core.errors import InputError
        a = two_cubes_joined("A")
        assert bpy.ops.holopart.complete_all(engine="visible") == {"FINISHED"}
        first = sorted(o.name for o in result_objects("A"))
        a.hide_set(False)
        bpy.context.view_layer.objects.active = a
        assert bpy.ops.holopart.complete_all(engine="visible") == {"FINISHED"}
        again = sorted(o.name for o in result_objects("A"))
        collections = sorted(c.name for c in bpy.data.collections)
        # A build that fails half way leaves the scene as it was.
        a.hide_set(False)
        bpy.context.view_layer.objects.active = a
        counts = {name: len(getattr(bpy.data, name)) for name in ("objects", "meshes", "collections")}
        build, calls = reimport._build_part, []
        def failing(*args):
            calls.append(1)
            if len(calls) == 2:
                raise InputError("the second part failed")
            return build(*args)
        reimport._build_part = failing
        try:
            bpy.ops.holopart.complete_all(engine="visible")
            raise AssertionError("no error")
        except RuntimeError as exc:
            error = str(exc)
        reimport._build_part = build
        assert {name: len(getattr(bpy.data, name)) for name in counts} == counts
        assert not a.hide_get() and sorted(o.name for o in result_objects("A")) == again
        # Without the essentials asset, parts are shaded smooth with sharp edges by angle in the mesh itself.
        # A build without the essentials assets names no assets folder ("", as Debian's does), and the current
        # folder holds a .blend this Blender cannot read: the lookup must open neither.
        Path("stray.blend").write_bytes(b"not a blend file")
        bpy.utils.system_resource = lambda kind, path=None: ""
        bpy.data.node_groups.remove(bpy.data.node_groups["Smooth by Angle"])
        assert bpy.ops.holopart.complete_all(engine="visible") == {"FINISHED"}
        part = result_objects("A")[0]
        sharp = part.data.attributes.get("sharp_edge")
        emit(first=first, again=again, collections=collections, error=error, modifiers=[m.name for m in part.modifiers],
             smooth=all(p.use_smooth for p in part.data.polygons),
             sharp=sum(1 for v in sharp.data if v.value) if sharp else 0, edges=len(part.data.edges))
    """, tmp_path)
    assert out["first"] == out["again"] and len(out["first"]) == 2  # replaced, not added
    assert out["collections"] == ["A parts"]
    assert "the second part failed" in out["error"]
    assert out["modifiers"] == [] and out["smooth"]
    assert 0 < out["sharp"] < out["edges"]  # the cube's edges between its sides, not the split quads' diagonals


def test_the_ui_never_waits_for_the_engine_listing(tmp_path):
    # The panel and the engine menus draw with engines_if_ready: while the worker starts, it asks and returns
    # at once; the answer is collected later (a timer in the UI, called by hand here), or by a job's drain.
    out = run_blender("""
        import time
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        session.shutdown_worker()
        t0 = time.perf_counter()
        first = session.engines_if_ready(prefs, wait=False)
        asked_in = time.perf_counter() - t0
        again = session.engines_if_ready(prefs, wait=False)  # still starting: no second request, no wait
        deadline = time.monotonic() + 120
        while session._collect_listing() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        found = session.engines_if_ready(prefs, wait=False)
        emit(first=first is None, again=again is None, asked_in=asked_in,
             geometric="geometric" in found["completion"], seeded=found["segmentation"]["seeded"]["uses_seeds"])
    """, tmp_path)
    assert out["first"] and out["again"] and out["asked_in"] < 0.3
    assert out["geometric"] and out["seeded"] is True


def test_without_numpy_the_extension_says_why_and_offers_the_environment(tmp_path):
    # A distribution build of Blender whose Python has no numpy (Debian's): numpy is hidden before enabling.
    script = tmp_path / "no_numpy.py"
    script.write_text(f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
import bpy, addon_utils
sys.modules["numpy"] = None  # 'import numpy' now fails, as on a build without it
bpy.ops.wm.read_factory_settings(use_empty=True)
addon_utils.enable("holopart_blender", default_set=True)
prefs = bpy.context.preferences.addons["holopart_blender"].preferences
from holopart_blender.blender import numpy_fallback
print("EMIT " + json.dumps(dict(prefs=type(prefs).__name__, panel=hasattr(bpy.types, "VIEW3D_PT_holopart"),
      operator="complete_part" in dir(bpy.ops.holopart), install="install_environment" in dir(bpy.ops.holopart),
      start="use_environment_numpy" in dir(bpy.ops.holopart), message=numpy_fallback.MESSAGE)))
addon_utils.disable("holopart_blender")
print("EMIT " + json.dumps(dict(after=hasattr(bpy.types, "VIEW3D_PT_holopart"))))
""")
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=environ,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith("EMIT "):
            out.update(json.loads(line[5:]))
    assert out["prefs"] == "HoloPartPreferences" and out["panel"] and not out["operator"]
    assert out["install"] and out["start"]  # the way out: install the engine environment, then use its numpy
    assert "has no numpy" in out["message"] and "HoloPart: " + out["message"] in proc.stdout
    assert out["after"] is False
