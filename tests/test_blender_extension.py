"""The extension as users get it: zips and a repository built with Blender's own tool, then installed, used,
updated and refused by Blender (the bpy module) the way its Preferences do it.

The builds take the bundled wheels from the wheelhouse (``.cache/wheelhouse``), downloading them once; without
a wheelhouse and without a reachable package index these tests are skipped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from blender_harness import ROOT, run_blender

sys.path.insert(0, str(ROOT / ".ci"))
import build_extension  # noqa: E402

VERSION = build_extension.version()
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"
MODULE = "holopart_blender"


def build(*args: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "build_extension.py"), "--wheelhouse", str(WHEELHOUSE),
                           *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def skip_without_wheels(*combos: tuple[str, str]) -> None:
    """Skip when a needed wheelhouse folder is missing and the package index cannot be reached."""
    if all((WHEELHOUSE / p / f"cp{py.replace('.', '')}" / "complete.json").is_file() for p, py in combos):
        return
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "-d", tempfile.mkdtemp(), build_extension.pins()[-1]],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip("no wheelhouse for the extension build and no package index reachable")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A repository of the Linux zips for both Python ABIs (with index.json), and Windows and macOS zips."""
    skip_without_wheels(("linux-x64", "3.11"), ("linux-x64", "3.13"), ("windows-x64", "3.11"), ("macos-arm64", "3.11"))
    folder = tmp_path_factory.mktemp("built")
    build("--platforms", "linux-x64", "--repository", str(folder / "repo"))
    build("--platforms", "windows-x64", "macos-arm64", "--pythons", "3.11", "--out", str(folder / "other"))
    return folder


def test_zips_and_index(built):
    repo = built / "repo"
    zips = {p.name: p for p in repo.glob("*.zip")}
    assert set(zips) == {f"holopart_blender-{VERSION}-py311-linux_x64.zip", f"holopart_blender-{VERSION}-py313-linux_x64.zip"}
    index = json.loads((repo / "index.json").read_text())
    entries = {e["archive_url"].removeprefix("./"): e for e in index["data"]}
    assert set(entries) == set(zips)
    py311, py313 = (entries[f"holopart_blender-{VERSION}-py{abi}-linux_x64.zip"] for abi in ("311", "313"))
    assert (py311["python_versions"], py311["blender_version_min"], py311["blender_version_max"]) == (["3.11"], "4.2.0", "5.1.0")
    assert (py313["python_versions"], py313["blender_version_min"], "blender_version_max" in py313) == (["3.13"], "5.1.0", False)
    for name, entry in entries.items():
        assert entry["id"] == MODULE and entry["version"] == VERSION and entry["platforms"] == ["linux-x64"]
        assert entry["archive_size"] == zips[name].stat().st_size
        assert zips[name].stat().st_size <= build_extension.SIZE_BUDGET_MB * 1e6
        validate = subprocess.run([sys.executable, str(build_extension.blender_ext_script()), "validate", str(zips[name])],
                                  capture_output=True, text=True, timeout=120)
        assert validate.returncode == 0, validate.stdout + validate.stderr
        archive = zipfile.ZipFile(zips[name])
        names = archive.namelist()
        assert f'version = "{VERSION}"' in archive.read("blender_manifest.toml").decode()
        # The package as it is, its licence and the wheels' licences; no developer tooling, no caches.
        assert {n.split("/")[0] for n in names} == {"__init__.py", "blender", "core", "engine", "wire", "wheels",
                                                    "licenses", "LICENSE", "blender_manifest.toml",
                                                    "vendor_requirements.txt"}
        assert not any("__pycache__" in n for n in names)
        wheels = [n.removeprefix("wheels/") for n in names if n.startswith("wheels/")]
        abi = "cp311" if name == py311["archive_url"].removeprefix("./") else "cp313"
        binary = [w for w in wheels if not w.endswith("-none-any.whl")]
        assert binary and all(f"-{abi}-" in w for w in binary)
        # manylinux 2.28 or older (the glibc Blender's own Linux builds need)
        assert all(max(int(v) for v in re.findall(r"manylinux_2_(\d+)", w)) <= 28 for w in binary)
        for wheel in wheels:
            dist = "-".join(wheel.split("-")[:2])
            assert any(n.startswith(f"licenses/{dist}/") for n in names), dist


def test_macos_wheels_for_the_oldest_macos(built):
    """Blender 4.2 runs on macOS 11: each wheel is the oldest macOS build its package publishes (SciPy's arm64
    wheels start at macOS 12; the others at 11)."""
    archive = zipfile.ZipFile(built / "other" / f"holopart_blender-{VERSION}-py311-macos_arm64.zip")
    binary = [n for n in archive.namelist() if n.startswith("wheels/") and not n.endswith("-none-any.whl")]
    versions = {n.split("/")[1].split("-")[0]: int(re.search(r"macosx_(\d+)_\d+_arm64", n).group(1)) for n in binary}
    assert versions == {"scipy": 12, "scikit_image": 11, "pillow": 11}, versions
    assert 'platforms = ["macos-arm64"]' in archive.read("blender_manifest.toml").decode()


INSTALL_USE_UPDATE = """
    import os, shutil, subprocess, threading, http.server, functools
    REPO, SOURCE = {repo!r}, {source!r}
    served = None
    if {over_http!r}:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=REPO)
        handler.log_message = lambda *args: None
        served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=served.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{{served.server_port}}/index.json"
    else:
        url = "file://" + REPO + "/index.json"
    # Blender installs from a repository only with online access on, even from file:// (which reads the disk).
    bpy.context.preferences.system.use_online_access = True
    repos = bpy.context.preferences.extensions.repos
    assert bpy.ops.preferences.extension_repo_add(name="HoloPart", remote_url=url, type="REMOTE") == {{"FINISHED"}}
    index = len(repos) - 1
    module = f"bl_ext.{{repos[index].module}}.holopart_blender"
    assert bpy.ops.extensions.repo_sync(repo_index=index) == {{"FINISHED"}}
    assert bpy.ops.extensions.package_install(repo_index=index, pkg_id="holopart_blender",
                                              enable_on_install=True) == {{"FINISHED"}}
    installed = sys.modules[module]
    manifest = open(os.path.join(repos[index].directory, "holopart_blender", "blender_manifest.toml")).read()
    emit(first=installed.__version__, first_wheels=sorted(line.strip() for line in manifest.splitlines()
                                                          if line.strip().startswith('"./wheels/')))

    def complete_a_cube(name):
        bpy.ops.mesh.primitive_cube_add()
        obj = bpy.context.active_object
        obj.name = name
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        assert bpy.ops.holopart.complete_part() == {{"FINISHED"}}
        bpy.ops.object.mode_set(mode="OBJECT")
        return len(bpy.data.collections[name + " parts"].objects)

    emit(parts_before=complete_a_cube("Before"))
    session = sys.modules[module + ".blender.session"]
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.device, prefs.weights_revision = "cpu", "r1"
    weights = session.weights_download_folder(prefs)
    weights.mkdir(parents=True)
    (weights / "marker.txt").write_text("weights")
    environment = session.environment_manager(prefs).root
    (environment / "marker.txt").write_text("environment")

    # Version 0.1.1 of the same source, built into the same folder; then Blender's "Check for Updates" and
    # "Install Available Updates".
    subprocess.run([sys.executable, os.path.join(SOURCE, ".ci", "build_extension.py"), "--platforms", "linux-x64",
                    "--pythons", "3.11", "--wheelhouse", {wheelhouse!r}, "--repository", REPO], check=True)
    assert bpy.ops.extensions.repo_sync(repo_index=index) == {{"FINISHED"}}
    assert bpy.ops.extensions.package_upgrade_all() == {{"FINISHED"}}
    prefs = bpy.context.preferences.addons[module].preferences
    session = sys.modules[module + ".blender.session"]
    emit(second=sys.modules[module].__version__, reloaded=sys.modules[module] is not installed,
         prefs=[prefs.device, prefs.weights_revision],
         weights=(session.weights_download_folder(prefs) / "marker.txt").read_text(),
         environment=(session.environment_manager(prefs).root / "marker.txt").read_text(),
         environment_root=str(session.environment_manager(prefs).root),
         parts_after=complete_a_cube("After"))
    if served:
        served.shutdown()
"""


@pytest.mark.parametrize("over_http", [True, False], ids=["http-loopback", "file-url"])
def test_repository_install_use_update(built, tmp_path, over_http):
    repo = tmp_path / "repo"
    shutil.copytree(built / "repo", repo)
    # The next version: the same source with the one version number bumped.
    source = tmp_path / "source"
    for name in ("holopart_blender", ".ci", "blender_manifest.toml", "vendor_requirements.txt", "LICENSE"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    init = source / "holopart_blender" / "__init__.py"
    major, minor, patch = map(int, VERSION.split("."))
    next_version = f"{major}.{minor}.{patch + 1}"
    init.write_text(init.read_text().replace(f'__version__ = "{VERSION}"', f'__version__ = "{next_version}"'))
    out = run_blender(INSTALL_USE_UPDATE.format(repo=str(repo), source=str(source), over_http=over_http,
                                                wheelhouse=str(WHEELHOUSE)), tmp_path, checkout_addon=False, timeout=600)
    # Blender 5.0 (Python 3.11) picked the 3.11 zip from the index, which also lists the 3.13 one.
    assert out["first"] == VERSION and out["first_wheels"] and all("cp313" not in w for w in out["first_wheels"])
    assert out["parts_before"] == 1 and out["parts_after"] == 1
    assert out["second"] == next_version and out["reloaded"]
    assert out["prefs"] == ["cpu", "r1"] and out["weights"] == "weights" and out["environment"] == "environment"
    assert "/extensions/.user/" in out["environment_root"]  # the user folder Blender keeps across updates
    index = json.loads((repo / "index.json").read_text())
    assert sorted(e["version"] for e in index["data"]) == sorted([next_version, VERSION])  # 3.11 updated, 3.13 not


def test_install_from_disk_offline_use_and_unregister(built, tmp_path):
    zip_path = built / "repo" / f"holopart_blender-{VERSION}-py311-linux_x64.zip"
    wrong = [built / "repo" / f"holopart_blender-{VERSION}-py313-linux_x64.zip",
             built / "other" / f"holopart_blender-{VERSION}-py311-windows_x64.zip"]
    out = run_blender(f"""
        import addon_utils
        assert not bpy.app.online_access  # the bpy module's default: offline
        module = "bl_ext.user_default.holopart_blender"
        # Zips for another Python (Blender 5.1+) or platform: Blender refuses them, with its own reason.
        for wrong in {[str(p) for p in wrong]!r}:
            bpy.ops.extensions.package_install_files(filepath=wrong, repo="user_default", enable_on_install=True)
            assert module not in bpy.context.preferences.addons
        result = bpy.ops.extensions.package_install_files(filepath={str(zip_path)!r}, repo="user_default",
                                                          enable_on_install=True)
        assert result == {{"FINISHED"}}, result
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
    # Blender's own messages for the wrong zips (printed in background mode; a dialog in the interface).
    assert re.search(r"This Blender version \(5\.0\.\d+\) doesn't meet the minimum supported version \(5\.1\.0\)",
                     out["_stdout"])
    assert "This platform (linux-x64) isn't one of (windows-x64)" in out["_stdout"]
    assert out["python"] == sys.executable and out["parts"] == 1
    assert out["bare_engine"] == "geometric" and out["bare_parts"] == 2
    # The engine environment goes to the extension's user folder (which survives upgrades).
    assert out["user"] == str(tmp_path / "blender_user" / "extensions" / ".user" / "user_default" / "holopart_blender"
                              / "engine")
