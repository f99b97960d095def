"""The command line on real benchmark assets, as a pipeline user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from holopart_blender.engine import meshfiles
from holopart_blender.wire.client import PACKAGE_PARENT
from meshgen import two_boxes


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


@pytest.fixture
def boxes(tmp_path):
    """A two-box PLY with its labels, and a few bad label files, in a folder of their own."""
    vertices, faces, labels = two_boxes()
    folder = tmp_path / "in"
    folder.mkdir()
    trimesh.Trimesh(vertices, faces, process=False).export(folder / "boxes.ply")
    np.save(folder / "labels.npy", labels)
    np.save(folder / "strings.npy", np.array(["a"] * len(faces)))
    np.save(folder / "huge_labels.npy", labels.astype(np.int64) + 2**32)  # 2**32 and 2**32 + 1 wrap to 0 and 1
    (folder / "empty.npy").write_bytes(b"")
    (folder / "folder.npy").mkdir()
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.int64))
    with open(folder / "claims.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {**header, "shape": (2**40,)})
        f.write(bytes(64))
    with open(folder / "far.obj", "w") as f:
        f.writelines("v %r %r %r\n" % tuple(v * 1e300) for v in vertices)
        f.writelines("f %d %d %d\n" % tuple(t + 1) for t in faces)
    (folder / "a file").write_text("")
    return folder


@pytest.mark.parametrize("args, words", [
    (["--parts", "a"], "--parts takes comma-separated integer labels"),
    (["--parts", "0,,1"], "--parts takes comma-separated integer labels"),
    (["--labels", "strings.npy"], "not numbers"),
    (["--labels", "empty.npy"], "cannot read labels"),
    (["--labels", "claims.npy"], "cannot read labels"),
    (["--labels", "folder.npy"], "not a file"),
    (["--labels", "huge_labels.npy"], "beyond 32-bit integers"),
    (["--labels", "labels.npy", "--out", "a file/x.glb"], "is a file, not a folder"),
    (["--labels", "labels.npy", "--out", "/proc/self/x.glb"], "no permission"),
    (["--labels", "labels.npy", "--out", "x" * 250 + ".glb"], "longer than"),
    (["--labels", "labels.npy", "--out", "boxes.ply"], "also an input"),
])
def test_bad_arguments_fail_in_one_line_and_write_nothing(boxes, args, words):
    before = sorted(boxes.rglob("*"))
    out = cli("complete", "boxes.ply", "--engine", "geometric", *args, cwd=boxes)
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert words in out.stderr and "error (bad_input)" in out.stderr.splitlines()[0], out.stderr
    assert "complete [" not in out.stderr  # failed before the engine started (no progress line)
    assert sorted(boxes.rglob("*")) == before


def test_segment_refuses_to_overwrite_its_inputs(boxes):
    trimesh.load(boxes / "boxes.ply").export(boxes / "boxes.glb")
    before = sorted(boxes.rglob("*"))
    for args in (["boxes.ply", "--labels", "labels.npy", "--out", "labels.npy"], ["boxes.glb", "--out", "boxes.npy"]):
        out = cli("segment", *args, cwd=boxes)
        assert out.returncode == 1 and "also an input; it would be overwritten" in out.stderr, out.stderr
    assert sorted(boxes.rglob("*")) == before


def test_far_coordinates_and_a_long_default_name_fail_clearly(boxes):
    out = cli("complete", "far.obj", "--labels", "labels.npy", "--engine", "hull", cwd=boxes)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "scale the mesh down" in out.stderr
    long = boxes / ("n" * 240 + ".ply")
    shutil.copy(boxes / "boxes.ply", long)
    before = sorted(boxes.iterdir())
    out = cli("complete", long.name, "--labels", "labels.npy", "--engine", "hull", cwd=boxes)
    assert out.returncode == 1 and "longer than the 255 bytes" in out.stderr
    assert sorted(boxes.iterdir()) == before


def test_a_per_part_format_prints_every_file_written(boxes):
    out = cli("complete", "boxes.ply", "--labels", "labels.npy", "--engine", "hull", "--out", "res/x.ply",
              "--quiet", cwd=boxes)
    assert out.returncode == 0, out.stderr
    written = sorted(p.name for p in (boxes / "res").iterdir())
    assert written == ["x.parts.json", "x_part_000.ply", "x_part_001.ply"]
    assert out.stdout.strip().endswith("-> res/x_part_000.ply, res/x_part_001.ply, res/x.parts.json")
