"""The job model, mesh files and bad input: clear errors, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from holopart_blender.engine import api, meshfiles
from holopart_blender.wire import jobfolder
from holopart_blender.wire.request import JobRequest
from holopart_blender.core.errors import InputError
from holopart_blender.core.partjob import Mesh, PartJob
from meshgen import grid, two_boxes


def test_segment_scene_round_trip(benchmark_dir, tmp_path):
    job = meshfiles.load_job(benchmark_dir / "chair.glb")
    scene = trimesh.load(benchmark_dir / "chair.glb")
    assert [job.part_name(i) for i in job.labels] == list(scene.geometry)
    assert job.mesh.num_faces == sum(len(g.faces) for g in scene.geometry.values())
    result = api.complete_parts(job, engine="visible")
    out = tmp_path / "dossier à espaces" / "chaise résultat.glb"
    meshfiles.write_parts(out, result.parts)
    again = meshfiles.load_job(out)
    assert again.part_names == job.part_names
    assert again.mesh.num_faces == job.mesh.num_faces
    np.testing.assert_allclose(again.mesh.vertices, job.mesh.vertices, atol=1e-6)
    sidecar = out.with_name(out.stem + ".parts.json").read_text()
    assert '"engine": "visible"' in sidecar


def test_mesh_plus_npy_labels(tmp_path):
    vertices, faces, labels = two_boxes()
    trimesh.Trimesh(vertices, faces, process=False).export(tmp_path / "boxes.ply")
    np.save(tmp_path / "boxes.npy", labels.astype(np.int64))
    job = meshfiles.load_job(tmp_path / "boxes.ply", tmp_path / "boxes.npy")
    assert job.labels == [0, 1]
    np.testing.assert_array_equal(job.face_labels, labels)
    with pytest.raises(InputError, match="shape"):
        meshfiles.load_job(tmp_path / "boxes.ply", labels[:-1])


def test_job_folder_round_trip_is_binary_and_exact(tmp_path):
    vertices, faces, labels = two_boxes()
    job = PartJob(Mesh(vertices, faces, np.arange(len(faces)) % 3, name="boîtes"), labels, {0: "a", 1: "b/../c"})
    jobfolder.write_job(tmp_path, job, JobRequest("complete", "hull", parts=[1]))
    again, request = jobfolder.read_job(tmp_path)
    np.testing.assert_array_equal(again.mesh.vertices, vertices)
    np.testing.assert_array_equal(again.mesh.faces, faces)
    np.testing.assert_array_equal(again.face_labels, labels)
    assert again.part_names == {0: "a", 1: "b/../c"} and request.parts == [1] and request.engine == "hull"
    assert "vertices" not in (tmp_path / "job.json").read_text()  # arrays never travel as text
    result = api.EngineSession().run(again, request)
    jobfolder.write_result(tmp_path, result)
    back = jobfolder.read_result(tmp_path)
    assert [p.name for p in back.parts] == ["b/../c"]
    assert back.parts[0].material_index in (0, 1, 2)
    np.testing.assert_array_equal(back.parts[0].faces, result.parts[0].faces)


def test_names_from_files_are_data_not_paths(tmp_path):
    vertices, faces, labels = two_boxes()
    job = PartJob(Mesh(vertices, faces), labels, {0: "../../escape", 1: "x/y\\z"})
    result = api.complete_parts(job, engine="visible")
    written = meshfiles.write_parts(tmp_path / "out.ply", result.parts)
    assert all(p.parent == tmp_path for p in written)


def test_per_part_files_get_names_that_fit_and_differ(tmp_path):
    vertices, faces, labels = two_boxes()
    job = PartJob(Mesh(vertices, faces), labels, {0: "é" * 200, 1: "é" * 201})  # the same once cut to fit
    result = api.complete_parts(job, engine="visible")
    written = meshfiles.write_parts(tmp_path / ("x" * 100 + ".ply"), result.parts)
    assert len(written) == 3 and len(set(written)) == 3 and sorted(tmp_path.iterdir()) == sorted(written)
    assert all(len(p.name.encode()) <= 255 for p in written)
    assert [len(trimesh.load(p).faces) for p in written[:2]] == [len(p.faces) for p in result.parts]


@pytest.mark.parametrize("vertices, faces, match", [
    (np.zeros((0, 3)), np.zeros((0, 3), int), "empty"),
    (np.eye(3), np.array([[0, 1, 5]]), "outside"),
    (np.full((3, 3), np.nan), np.array([[0, 1, 2]]), "no usable face"),
    (np.zeros((3, 3)), np.array([[0, 1, 2]]), "no usable face"),
])
def test_bad_meshes_are_refused_clearly(vertices, faces, match):
    job = PartJob(Mesh(vertices, faces), np.zeros(len(faces), np.int32))
    with pytest.raises(InputError, match=match) as info:
        api.complete_parts(job, engine="visible")
    assert info.value.hint


def test_nan_and_degenerate_faces_are_skipped_with_a_warning():
    vertices, faces, labels = two_boxes()
    vertices = np.concatenate([vertices, [[np.nan, 0, 0], [np.inf, 1, 1], [0, 0, 0], [0, 0, 0]]])
    n = len(vertices)
    faces = np.concatenate([faces, [[n - 4, n - 3, 0], [n - 2, n - 1, 0], [0, 0, 1]]])
    labels = np.concatenate([labels, [0, 0, 1]])
    result = api.complete_parts(PartJob(Mesh(vertices, faces), labels), engine="hull")
    assert len(result.parts) == 2 and all(np.isfinite(p.vertices).all() for p in result.parts)
    assert any("NaN" in w for w in result.warnings) and any("degenerate" in w for w in result.warnings)


def test_bad_labels_and_requests():
    vertices, faces, labels = two_boxes()
    mesh = Mesh(vertices, faces)
    with pytest.raises(InputError, match="has shape"):
        PartJob(mesh, labels[:5])
    with pytest.raises(InputError, match="integers"):
        PartJob(mesh, labels + 0.5)
    with pytest.raises(InputError, match="nothing to complete"):
        api.complete_parts(PartJob(mesh, np.full(len(faces), -1)), engine="visible")
    with pytest.raises(InputError, match="have no faces"):
        api.complete_parts(PartJob(mesh, labels), engine="visible", parts=[7])
    with pytest.raises(InputError, match="unknown completion engine"):
        api.complete_parts(PartJob(mesh, labels), engine="nope")
    with pytest.raises(InputError, match="no setting"):
        api.complete_parts(PartJob(mesh, labels), engine="visible", settings={"stepz": 3})


def test_all_faces_in_one_part():
    vertices, faces, _ = two_boxes()
    result = api.complete_parts(PartJob(Mesh(vertices, faces), np.zeros(len(faces), np.int32)), engine="hull")
    assert len(result.parts) == 1 and result.parts[0].watertight
    assert result.parts[0].source_faces == len(faces)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "broken mesh ü.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(InputError, match="cannot read"):
        meshfiles.load_job(bad)
    with pytest.raises(InputError, match="no such file"):
        meshfiles.load_job(tmp_path / "missing.obj")
    (tmp_path / "notes.txt").write_text("not a mesh")
    with pytest.raises(InputError, match="unsupported"):
        meshfiles.load_job(tmp_path / "notes.txt")
    (tmp_path / "obj.npy").write_bytes(b"\x93NUMPY not really")
    with pytest.raises(InputError, match="cannot read labels"):
        meshfiles.load_labels(tmp_path / "obj.npy")


def test_two_million_faces_work():
    vertices, faces = grid(1001)
    assert len(faces) == 2_000_000
    labels = (vertices[faces[:, 0], 0] > 0).astype(np.int32)
    result = api.complete_parts(PartJob(Mesh(vertices, faces), labels), engine="visible")
    assert sum(p.source_faces for p in result.parts) == 2_000_000
    assert {len(p.faces) for p in result.parts} == {p.source_faces for p in result.parts}


def test_out_of_memory_halves_the_batch_then_fails_clearly():
    from holopart_blender.core.batching import run_batched
    from holopart_blender.core.errors import OutOfMemory

    sizes = []

    def run(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            np.empty((len(batch), 2**62 // 8), np.uint8)  # a real allocation failure (MemoryError)
        return [x * 2 for x in batch]

    assert run_batched(list(range(7)), 8, run) == [x * 2 for x in range(7)]
    assert sizes[:3] == [7, 4, 2] and max(sizes[3:]) <= 2

    def always(batch):
        np.empty((len(batch), 2**62 // 8), np.uint8)

    with pytest.raises(OutOfMemory):
        run_batched([1, 2, 3], 4, always)
