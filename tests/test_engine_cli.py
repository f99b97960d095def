"""The command line on real benchmark assets, as a pipeline user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import trimesh

from holopart_blender.engine import meshfiles
from holopart_blender.wire.client import PACKAGE_PARENT


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "holopart_blender.engine.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(PACKAGE_PARENT), "PATH": "/usr/bin:/bin"})


def test_help_lists_every_engine_setting():
    out = cli("complete", "--help")
    assert out.returncode == 0
    for text in ("--engine", "--set NAME=VALUE", "--seed", "--labels", "completion:hull", "completion:visible"):
        assert text in out.stdout


def test_complete_one_file_with_spaces_and_accents(benchmark_dir, tmp_path):
    source = tmp_path / "mes modèles" / "table carrée.glb"
    source.parent.mkdir()
    shutil.copy(benchmark_dir / "square_table.glb", source)
    out = cli("complete", source, "--engine", "hull", "--out", tmp_path / "résultats" / "table.glb")
    assert out.returncode == 0, out.stderr
    result = trimesh.load(tmp_path / "résultats" / "table.glb")
    assert sorted(result.geometry) == sorted(trimesh.load(source).geometry)
    meta = json.loads((tmp_path / "résultats" / "table.parts.json").read_text())
    assert meta["engine"] == "hull" and len(meta["parts"]) == 5
    assert all(p["watertight"] and p["engine"] == "hull" for p in meta["parts"])
    assert "100.0%" in out.stderr  # the progress bar


def test_folder_mode_with_npy_labels_and_a_bad_file(benchmark_dir, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    shutil.copy(benchmark_dir / "lamp.glb", data / "lamp.glb")
    whole = meshfiles.load_job(benchmark_dir / "drawer.glb")
    trimesh.Trimesh(whole.mesh.vertices, whole.mesh.faces, process=False).export(data / "drawer.ply")
    np.save(data / "drawer.npy", whole.face_labels)
    (data / "broken.obj").write_text("v 0 0 0\nf 1 2 3\n")
    out = cli("complete", data, "--engine", "visible", "--out", tmp_path / "out", "--quiet")
    assert out.returncode == 1  # one input failed, the others were written
    assert "broken.obj: error" in out.stderr
    assert len(trimesh.load(tmp_path / "out" / "lamp_complete.glb").geometry) == 3
    assert len(trimesh.load(tmp_path / "out" / "drawer_complete.glb").geometry) == 3


def test_unknown_setting_and_missing_input_fail_clearly(benchmark_dir, tmp_path):
    out = cli("complete", benchmark_dir / "lamp.glb", "--engine", "hull", "--set", "stepz=3", "--out", tmp_path / "x.glb")
    assert out.returncode == 1 and "no setting stepz" in out.stderr and "hint" in out.stderr
    out = cli("complete", tmp_path / "nothing.glb")
    assert out.returncode == 2 and "no such file" in out.stderr
