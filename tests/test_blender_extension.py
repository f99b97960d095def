"""The extension zip: built and validated with Blender's own tool, installed, used, unregistered."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from blender_harness import ROOT, run_blender


def test_build_validate_install_use_and_unregister(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, str(ROOT / ".ci" / "build_extension.py"), "--platforms", "linux-x64",
                            "--out", str(dist)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (zip_path,) = dist.glob("holopart_blender-*-linux_x64.zip")
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "vendor_requirements.txt" in names
    assert any(n.startswith("wheels/scipy-") and "cp311" in n for n in names)
    assert any(n.startswith("wheels/scipy-") and "cp313" in n for n in names)  # Blender 5.1+
    assert not any("__pycache__" in n for n in names)
    # The zip is the package as it is: no developer tooling (demo, benchmark, build script) inside.
    assert {n.split("/")[0] for n in names} == {"__init__.py", "blender", "core", "engine", "wire", "wheels",
                                                "blender_manifest.toml", "vendor_requirements.txt"}
    out = run_blender(f"""
        import addon_utils
        result = bpy.ops.extensions.package_install_files(filepath={str(zip_path)!r}, repo="user_default",
                                                          enable_on_install=True)
        assert result == {{"FINISHED"}}, result
        module = "bl_ext.user_default.holopart_blender"
        assert module in bpy.context.preferences.addons
        import bl_ext.user_default.holopart_blender.blender.session as installed_session
        bpy.ops.mesh.primitive_cube_add()
        src = bpy.context.active_object
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        assert bpy.ops.holopart.complete_part() == {{"FINISHED"}}  # the default engine, on Blender's own Python
        prefs = bpy.context.preferences.addons[module].preferences
        client = installed_session.worker_client(prefs)
        emit(python=client.python, paths=client.pythonpath, parts=len(bpy.data.collections["Cube parts"].objects),
             user=str(installed_session.environment_manager(prefs).root))
        # Blender's own Python brings numpy; the zip's wheels must bring the rest. Run the worker on a bare
        # interpreter that sees only numpy and the site-packages Blender extracted the wheels into.
        import os
        from bl_ext.user_default.holopart_blender.wire.request import JobRequest
        from bl_ext.user_default.holopart_blender.wire.client import WorkerClient
        from bl_ext.user_default.holopart_blender.wire.jobfolder import read_result, write_job
        from bl_ext.user_default.holopart_blender.core.partjob import Mesh, PartJob
        wheels_site = os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib",
                                   f"python{{sys.version_info[0]}}.{{sys.version_info[1]}}", "site-packages")
        assert all(os.path.isdir(os.path.join(wheels_site, m)) for m in ("scipy", "trimesh", "skimage")), wheels_site
        numpy_only = os.path.abspath("numpy_only")
        os.makedirs(numpy_only)
        numpy_dir = os.path.dirname(np.__file__)
        for name in ("numpy", "numpy.libs"):
            if os.path.exists(os.path.join(os.path.dirname(numpy_dir), name)):
                os.symlink(os.path.join(os.path.dirname(numpy_dir), name), os.path.join(numpy_only, name))
        a, b = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float) + off for off in (0, 3))
        tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
        job = PartJob(Mesh(np.vstack([a, b]), np.vstack([tet, tet + 4])), np.full(8, -1, np.int32))
        write_job("bare_job", job, JobRequest("amodal"))
        bare = WorkerClient(python=sys._base_executable, pythonpath=[numpy_only, wheels_site])
        final = bare.run("bare_job", timeout=300)
        bare.close()
        assert final["type"] == "done", final
        bare_result = read_result("bare_job")
        emit(bare_engine=bare_result.engine, bare_parts=len(bare_result.parts))
        addon_utils.disable(module, default_set=True)
        assert not hasattr(bpy.types, "HOLOPART_OT_complete_part") and not hasattr(bpy.types.Scene, "holopart")
        assert installed_session._client is None  # the worker was stopped
        addon_utils.enable(module, default_set=True)
        assert hasattr(bpy.types, "HOLOPART_OT_complete_part")
    """, tmp_path, checkout_addon=False, timeout=400)
    assert out["python"] == sys.executable and out["parts"] == 1
    assert out["bare_engine"] == "geometric" and out["bare_parts"] == 2
    # The engine environment goes to the extension's user folder (which survives upgrades).
    assert out["user"] == str(tmp_path / "blender_user" / "extensions" / ".user" / "user_default" / "holopart_blender"
                              / "engine")
