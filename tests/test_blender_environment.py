"""The managed engine environment: really created from a local wheel folder (no network), kept when a
repair fails, and used by the worker once ready."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
from blender_harness import run_blender

from holopart_blender.blender.environment import EnvironmentManager, requirement_names


def make_wheel(folder: Path, name: str, version: str, source: str) -> Path:
    """A minimal valid pure-Python wheel holding one module ``name``."""
    files = {f"{name}.py": source.encode(),
             f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
                     for path, data in files.items()) + f"{name}-{version}.dist-info/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for file, data in files.items():
            archive.writestr(file, data)
        archive.writestr(f"{name}-{version}.dist-info/RECORD", record)
    return path


def test_install_from_a_wheel_folder_and_a_failed_repair_keeps_it(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "tinypart", "1.0", "VALUE = 42\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# engine packages\ntinypart>=1.0  # the only one\n")
    assert requirement_names(requirements) == ["tinypart"]
    manager = EnvironmentManager(tmp_path / "engine")
    assert manager.state().status == "missing"
    with pytest.raises(PermissionError):
        manager.install_task(requirements, online=False)  # nothing is downloaded while offline
    task = manager.install_task(requirements, wheel_folder=wheels)
    assert task.run(), task.error
    state = manager.state()
    assert state.status == "ready" and state.info["packages"] == {"tinypart": "1.0"}
    assert state.last_install["ok"] and Path(state.last_install["log"]).is_file()
    check = subprocess.run([str(manager.python), "-c", "import tinypart; print(tinypart.VALUE)"], capture_output=True,
                           text=True)
    assert check.stdout.strip() == "42"

    requirements.write_text("tinypart\nmissingpart\n")  # a repair that cannot succeed
    failed = manager.install_task(requirements, wheel_folder=wheels)
    assert not failed.run()
    assert "failed" in failed.error and any("missingpart" in line for line in failed.tail)
    state = manager.state()
    assert state.status == "ready" and state.info["packages"] == {"tinypart": "1.0"}  # the old one is intact
    assert state.last_install["ok"] is False and "exit code" in state.last_install["reason"]
    assert not manager.new_dir.exists()
    check = subprocess.run([str(manager.python), "-c", "import tinypart"], capture_output=True)
    assert check.returncode == 0


def test_broken_environment_is_reported(tmp_path):
    manager = EnvironmentManager(tmp_path / "engine")
    manager.env_dir.mkdir(parents=True)
    state = manager.state()
    assert state.status == "broken" and "incomplete" in state.reason


def test_a_ready_environment_runs_the_worker_and_reports_the_weights(tmp_path):
    """An environment in the 'ready' state (here a venv that sees this project's packages through a .pth
    file, standing in for an installed one) runs the worker, and Check Installation asks it for the weights."""
    out = run_blender("""
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        manager = ready_environment(prefs)
        bpy.ops.mesh.primitive_cube_add()
        bpy.ops.object.mode_set(mode="EDIT")
        bpy.ops.mesh.select_all(action="SELECT")
        assert bpy.ops.holopart.complete_part() == {"FINISHED"}
        python = session.worker_client(prefs).python
        assert bpy.ops.holopart.refresh_status() == {"FINISHED"}
        from holopart_blender.blender import setup_operators
        emit(python=python, env_python=str(manager.python), weights=dict(setup_operators.weights_status))
    """, tmp_path)
    assert out["python"] == out["env_python"]
    assert out["weights"]["found"] is False and out["weights"]["summary"].startswith("not installed")
