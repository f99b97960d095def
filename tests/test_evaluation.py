"""The benchmark: metric cross-checks on cases with known answers, the task builder on real assets, and a
quick run of the runner (completion and amodal) on two real assets."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from holopart_blender.core.errors import InputError
from holopart_blender.engine import meshfiles
from devtools.evaluation import metrics, run
from devtools.evaluation.sampling import seeded_samples
from devtools.evaluation.tasks import _load_object, build_remesh_task, build_task


def _sphere(radius=0.5, centre=(0.0, 0.0, 0.0)):
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=radius)
    return mesh.vertices + np.asarray(centre), mesh.faces


def _box(low, high):
    mesh = trimesh.creation.box(bounds=[low, high])
    return mesh.vertices, mesh.faces


def _submesh(v, f, keep):
    used, inverse = np.unique(f[keep], return_inverse=True)
    return v[used], inverse.reshape(-1, 3)


def test_identical_meshes_score_perfectly():
    v, f = _sphere()
    s = metrics.score_part(v, f, v, f, v, f, samples=20000)
    assert s["success"] and s["chamfer"] == 0.0 and s["iou"] == 1.0 and s["fscore"] == 1.0
    assert s["part_chamfer"] == 0.0 and s["part_iou"] == 1.0


def test_a_shifted_sheet_scores_its_shift():
    grid = trimesh.creation.box(extents=[1.6, 1.6, 1e-9])  # a flat square, both sides
    shifted = grid.vertices + [0.0, 0.0, 0.05]
    scores = metrics.surface_scores(seeded_samples(shifted, grid.faces, 50000, 0)[0],
                                    seeded_samples(grid.vertices, grid.faces, 50000, 0)[0])
    assert scores["chamfer"] == pytest.approx(0.05, rel=0.05)
    # 0.05 is 1.6 voxels of the 64^3 grid: the occupied layers barely overlap.
    assert scores["iou"] < 0.5


def test_a_scaled_sphere_scores_the_radius_difference():
    v, f = _sphere(0.5)
    s = metrics.score_part(v * 1.1, f, v, f, v, f, samples=50000)
    assert s["chamfer"] == pytest.approx(0.05, rel=0.05)
    assert s["part_chamfer"] == pytest.approx(0.05 * 2.0, rel=0.05)  # the part frame doubles a 1-wide sphere
    assert s["iou"] < 0.2 and s["fscore"] < 0.3  # 0.05 is 1.6 voxels: the shells hardly share a voxel
    close = metrics.score_part(v * 1.01, f, v, f, v, f, samples=50000)  # 0.16 voxels apart: mostly shared
    assert close["chamfer"] == pytest.approx(0.005, rel=0.1) and close["iou"] > 0.6


def test_hidden_recall_counts_only_the_hidden_surface():
    v, f = _sphere(0.5)
    half_v, half_f = _submesh(v, f, v[f].mean(axis=1)[:, 1] > 0.0)  # the visible half
    whole = metrics.score_part(v, f, v, f, half_v, half_f, samples=20000)
    assert whole["hidden_recall"] == 1.0 and whole["hidden_precision"] == 1.0
    assert 0.35 < whole["hidden_share"] < 0.5
    unchanged = metrics.score_part(half_v, half_f, v, f, half_v, half_f, samples=20000)
    assert unchanged["hidden_recall"] == 0.0 and np.isnan(unchanged["hidden_precision"])
    astray_v, astray_f = _sphere(0.5, (0.0, -0.3, 0.0))
    astray = metrics.score_part(astray_v, astray_f, v, f, half_v, half_f, samples=20000)
    assert astray["hidden_recall"] < 0.2 and astray["hidden_stray"] > 0.05


def test_overlap_scores_split_the_hidden_surface_at_other_parts():
    # Truth: a sphere seen from above; a second truth part (a slab) holds its bottom (y < -0.25).
    v, f = _sphere(0.5)
    centres_y = v[f].mean(axis=1)[:, 1]
    half_v, half_f = _submesh(v, f, centres_y > 0.0)
    slab = metrics.solid_voxels(*_box([-0.9, -0.9, -0.9], [0.9, -0.25, 0.9]))
    # A result that stops where the slab starts: everything clear of the slab, nothing inside it.
    cut_v, cut_f = _submesh(v, f, centres_y > -0.25)
    s = metrics.score_part(cut_v, cut_f, v, f, half_v, half_f, samples=20000, others=slab)
    # Of the hidden band 0.02 below the equator to the pole, the part below -0.25 (less the slab's
    # surface cells, 2/128 thick) is inside the slab: about (0.25 - 0.016) / 0.48.
    assert s["hidden_overlap"] == pytest.approx(0.234 / 0.48, abs=0.03)
    # Recovered: all but a thin band at the slab (its surface cells count as clear), next to nothing inside it.
    assert s["clear_hidden_recall"] > 0.9
    assert s["hidden_recall"] == pytest.approx(s["clear_hidden_recall"] * (1 - s["hidden_overlap"]), abs=0.02)
    assert np.isnan(metrics.score_part(v, f, v, f, half_v, half_f, samples=20000)["hidden_overlap"])


def test_an_empty_result_is_a_failure_not_a_crash():
    v, f = _sphere()
    s = metrics.score_part(np.zeros((0, 3)), np.zeros((0, 3), np.int64), v, f, v, f, samples=1000)
    assert s["success"] is False and np.isnan(s["iou"])


def test_penetration_of_overlapping_and_touching_boxes():
    a = _box([-0.5, -0.5, -0.5], [0.5, 0.5, 0.5])
    b = _box([0.0, -0.5, -0.5], [1.0, 0.5, 0.5])  # overlaps half of a
    c = _box([0.5, -0.5, -0.5], [0.9, 0.5, 0.5])  # touches a
    overlap = metrics.penetration([a, b])
    assert overlap[0] == pytest.approx(0.5, abs=0.05) and overlap[1] == pytest.approx(0.5, abs=0.05)
    assert metrics.penetration([a, c]) == [0.0, 0.0]


def test_segmentation_miou_known_values():
    truth = np.array([0, 0, 1, 1, -1])
    area = np.ones(5)
    assert metrics.segmentation_miou(truth, truth, area) == 1.0
    assert metrics.segmentation_miou(np.zeros(5), truth, area) == pytest.approx(0.5)  # one segment: IoU 1/2 each
    assert metrics.segmentation_miou(np.array([0, 1, 2, 2, 0]), truth, area) == pytest.approx((0.5 + 1.0) / 2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("tasks")


def test_task_builder_keeps_a_strict_subset_labelled_by_owner(benchmark_dir, cache):
    task = build_task(benchmark_dir / "lamp.glb", cache)
    whole, parts = _load_object(benchmark_dir / "lamp.glb")[:2]
    mesh = task.job.mesh
    assert 0 < mesh.num_faces < whole.mesh.num_faces
    # Every kept face is a face of the merged object (same corners), and keeps the label of the part it came from.
    tree = cKDTree(whole.mesh.vertices[whole.mesh.faces].reshape(-1, 9))
    distance, source = tree.query(mesh.vertices[mesh.faces].reshape(-1, 9))
    assert distance.max() < 1e-9
    np.testing.assert_array_equal(task.job.face_labels, whole.face_labels[source])
    # The bulb sits inside the hood: most of it is hidden; all three parts keep visible faces.
    bulb = task.part_names.index("lamp_bulb")
    kept = np.bincount(task.job.face_labels, minlength=3)
    assert kept[bulb] < 0.6 * parts[bulb].num_faces and (kept > 0).all()
    # In the object frame: longest axis spans [-1, 1].
    extent = np.ptp(whole.mesh.vertices, axis=0)
    assert extent.max() == pytest.approx(2.0)


def test_task_builder_is_deterministic_and_cached(benchmark_dir, cache):
    first = build_task(benchmark_dir / "bicycle.glb", cache)
    again = build_task(benchmark_dir / "bicycle.glb", cache)
    assert again.folder == first.folder and (first.folder / "task.npz").is_file()
    np.testing.assert_array_equal(first.job.face_labels, again.job.face_labels)
    np.testing.assert_array_equal(first.job.mesh.faces, again.job.mesh.faces)
    fresh = build_task(benchmark_dir / "bicycle.glb")  # no cache: recomputed, the same
    np.testing.assert_array_equal(first.job.face_labels, fresh.job.face_labels)
    # The official input format on disk: one mesh per visible segment, named after its part.
    written = meshfiles.load_job(first.folder / "input.glb")
    assert sorted(written.part_names.values()) == sorted(first.part_names)
    assert written.mesh.num_faces == first.job.mesh.num_faces


def test_remesh_task_is_one_piece_with_nearest_part_labels(benchmark_dir, cache):
    task = build_remesh_task(benchmark_dir / "lamp.glb", cache, resolution=48)
    mesh = trimesh.Trimesh(task.job.mesh.vertices, task.job.mesh.faces)
    assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1
    assert mesh.volume > 0  # wound outwards
    assert set(task.job.labels) <= {0, 1, 2} and len(task.job.labels) >= 2


def test_remesh_variants_offset_and_smooth_the_surface(benchmark_dir, cache):
    plain = build_remesh_task(benchmark_dir / "lamp.glb", cache, resolution=48)
    variant = build_remesh_task(benchmark_dir / "lamp.glb", cache, resolution=48, offset=1.0, smoothing=5)
    mesh = trimesh.Trimesh(variant.job.mesh.vertices, variant.job.mesh.faces)
    assert mesh.is_watertight and len(mesh.split(only_watertight=False)) == 1
    assert mesh.volume > trimesh.Trimesh(plain.job.mesh.vertices, plain.job.mesh.faces).volume  # moved out
    assert variant.params["offset"] == 1.0 and "offset" not in plain.params  # a cache key of its own
    with pytest.raises(InputError, match="offset must be between 0 and 1"):
        build_remesh_task(benchmark_dir / "lamp.glb", cache, resolution=48, offset=1.5)


def test_runner_on_two_assets(benchmark_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("bicycle.glb", "lamp.glb"):
        (data / name).write_bytes((benchmark_dir / name).read_bytes())
    out = tmp_path / "out"
    assert run.main([str(data), "--engine", "geometric", "--samples", "5000", "--cache", str(tmp_path / "c"),
                     "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "parts.csv", encoding="utf-8")))
    assert len(rows) == 2 * (5 + 3) and {r["engine"] for r in rows} == {"visible", "geometric"}
    floor = [r for r in rows if r["engine"] == "visible"]
    assert all(float(r["hidden_recall"]) == 0.0 for r in floor)
    results = json.loads((out / "results.json").read_text())
    assert results["overall"]["geometric"]["hidden_recall"] > 0.1
    assert results["overall"]["geometric"]["watertight"] == 7 / 8  # the lamp's bulb is left open
    summary = (out / "summary.md").read_text()
    assert "| visible | 8 |" in summary and "| geometric | 8 |" in summary
    for name in ("bicycle", "lamp"):
        assert (out / "objects" / f"{name}.md").is_file()
        assert (out / "pictures" / f"{name}.png").stat().st_size > 10_000


def test_runner_amodal_scores_segmentation_and_completion(benchmark_dir, tmp_path):
    out = tmp_path / "out"
    assert run.main([str(benchmark_dir / "bicycle.glb"), "--amodal", "--engine", "geometric", "--samples", "3000",
                     "--cache", str(tmp_path / "c"), "--out", str(out), "--no-pictures"]) == 0
    results = json.loads((out / "results.json").read_text())
    geometric = results["overall"]["geometric"]
    # The bicycle's visible surface falls apart into pieces: loose parts recover most of its parts.
    assert geometric["segmentation_miou"] > 0.6 and geometric["success"] == 1.0
    assert geometric["parts"] == 5 and results["overall"]["visible"]["hidden_recall"] == 0.0
