"""The seeded segmentation engine on one-piece remeshes of real benchmark objects: the API, the command line."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import trimesh

from holopart_blender.core.errors import InputError
from holopart_blender.core.partjob import Mesh, PartJob
from holopart_blender.engine import api
from holopart_blender.engine.geometry.topology import face_areas
from holopart_blender.wire.request import JobRequest
from devtools.evaluation.metrics import segmentation_miou
from devtools.evaluation.seeds import seed_faces
from devtools.evaluation.tasks import build_remesh_task

from conftest import ROOT

REMESH_RESOLUTION = 48  # coarse, so building the tasks takes seconds


@pytest.fixture(scope="module")
def remesh(benchmark_dir):
    tasks = {name: build_remesh_task(benchmark_dir / f"{name}.glb", resolution=REMESH_RESOLUTION)
             for name in ("square_table", "lamp", "chair")}
    return lambda name: tasks[name].job


def _miou(labels, job) -> float:
    return segmentation_miou(labels, job.face_labels, face_areas(job.mesh.vertices, job.mesh.faces))


def test_seeds_are_kept_every_face_is_labelled_and_runs_repeat(remesh):
    job = remesh("square_table")  # a top and four legs
    seeds = seed_faces(job.mesh, job.face_labels, 3)
    assert (seeds >= 0).sum() == 15
    labels = api.segment(job.mesh, "seeded", seeds=seeds)
    marked = seeds >= 0
    np.testing.assert_array_equal(labels[marked], seeds[marked])
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    np.testing.assert_array_equal(api.segment(job.mesh, "seeded", seeds=seeds), labels)
    # Growth follows the creases: far better than one segment for everything (0.20 here).
    assert _miou(labels, job) >= 0.85  # measured 0.871


def test_growth_stops_where_thickness_changes(remesh):
    job = remesh("chair")  # thin legs and back on a seat, nuts on the legs: joins that are barely creased
    seeds = seed_faces(job.mesh, job.face_labels, 1)
    creases_only = _miou(api.segment(job.mesh, "seeded", {"thickness": 0.0}, seeds=seeds), job)
    assert _miou(api.segment(job.mesh, "seeded", seeds=seeds), job) >= creases_only + 0.05  # measured 0.667, 0.570


def test_seeds_for_only_some_parts_share_the_mesh_between_them(remesh):
    job = remesh("lamp")
    seeds = seed_faces(job.mesh, job.face_labels, 1)
    seeds[seeds == 2] = -1  # the artist marked two of the three parts, under labels of their own choosing
    seeds[seeds == 1] = 9
    labels = api.segment(job.mesh, "seeded", seeds=seeds)
    assert set(np.unique(labels)) == {0, 9}
    np.testing.assert_array_equal(labels[seeds >= 0], seeds[seeds >= 0])


def test_one_seed_makes_the_whole_mesh_one_part(remesh):
    job = remesh("lamp")
    seeds = np.full(job.mesh.num_faces, -1, np.int32)
    seeds[1234] = 6
    assert (api.segment(job.mesh, "seeded", seeds=seeds) == 6).all()


def test_disconnected_pieces_keep_their_own_seeds_and_a_seedless_piece_takes_the_nearest(remesh):
    table, lamp = remesh("square_table"), remesh("lamp")
    ball = trimesh.creation.icosphere(3, radius=0.1)
    offsets = [np.zeros(3), np.array([3.0, 0.0, 0.0]), np.array([4.5, 0.0, 0.0])]  # the ball beside the lamp
    meshes = [(table.mesh.vertices, table.mesh.faces), (lamp.mesh.vertices, lamp.mesh.faces), (ball.vertices, ball.faces)]
    vertices = np.concatenate([v + o for (v, _), o in zip(meshes, offsets)])
    starts = np.cumsum([0] + [len(v) for v, _ in meshes])
    faces = np.concatenate([f + s for (_, f), s in zip(meshes, starts)])
    piece = np.repeat([0, 1, 2], [len(f) for _, f in meshes])
    lamp_seeds = seed_faces(lamp.mesh, lamp.face_labels, 1)
    lamp_seeds[lamp_seeds >= 0] += 10  # the lamp's parts under labels of their own
    seeds = np.r_[seed_faces(table.mesh, table.face_labels, 1), lamp_seeds, np.full(len(ball.faces), -1)].astype(np.int32)
    labels = api.segment(Mesh(vertices, faces), "seeded", seeds=seeds)
    assert set(np.unique(labels[piece == 0])) == {0, 1, 2, 3, 4}
    assert set(np.unique(labels[piece == 1])) == {10, 11, 12}
    # The ball is reached by no walk: it takes, whole, the label of the seed face closest to it.
    centre = vertices[faces].mean(1)
    seeded = np.flatnonzero(seeds >= 0)
    gap = np.linalg.norm(centre[piece == 2][:, None] - centre[seeded][None], axis=2)
    expected = seeds[seeded[np.unravel_index(np.argmin(gap), gap.shape)[1]]]
    assert expected >= 10 and (labels[piece == 2] == expected).all()


def test_no_seed_is_an_error_and_unusable_faces_get_minus_one(remesh):
    job = remesh("lamp")
    with pytest.raises(InputError, match="no seed faces"):
        api.segment(job.mesh, "seeded")
    request = JobRequest("segment", segmentation_engine="seeded")
    with pytest.raises(InputError, match="no seed faces"):
        api.EngineSession().run(PartJob(job.mesh, np.full(job.mesh.num_faces, -1)), request)
    # A degenerate face (a repeated corner) cannot be used; the job's labels are the seeds.
    faces = np.concatenate([job.mesh.faces, [[0, 0, 1]]])
    seeds = np.r_[seed_faces(job.mesh, job.face_labels, 1), 2].astype(np.int32)
    result = api.EngineSession().run(PartJob(Mesh(job.mesh.vertices, faces), seeds), request)
    assert result.face_labels[-1] == -1 and (result.face_labels[:-1] >= 0).all()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "holopart_blender.engine.cli", "segment", *map(str, args), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_command_line_grows_seeds_and_refuses_bad_ones(remesh, tmp_path):
    job = remesh("square_table")
    mesh_file = tmp_path / "table.ply"
    trimesh.Trimesh(job.mesh.vertices, job.mesh.faces, process=False).export(mesh_file)
    seeds = seed_faces(job.mesh, job.face_labels, 1)
    np.save(tmp_path / "seeds.npy", seeds)
    out = tmp_path / "labels.npy"
    done = _cli(mesh_file, "--seeds", tmp_path / "seeds.npy", "--out", out)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(out), api.segment(job.mesh, "seeded", seeds=seeds))

    bad = {"below.npy": np.where(seeds >= 0, seeds, -2), "long.npy": np.r_[seeds, 0], "short.npy": seeds[:-1],
           "float.npy": seeds.astype(np.float64), "none.npy": np.full_like(seeds, -1)}
    for name, array in bad.items():
        np.save(tmp_path / name, array)
    np.save(tmp_path / "object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    (tmp_path / "seeds.txt").write_text(" ".join(map(str, seeds)))
    expected = {"below.npy": "labels below -1", "long.npy": f"has {len(seeds) + 1} values but table.ply has",
                "short.npy": f"has {len(seeds) - 1} values but table.ply has", "float.npy": "float64, not integers",
                "none.npy": "no seed faces", "object.npy": "cannot read seeds from object.npy",
                "seeds.txt": "is not a .npy file"}
    for name, message in expected.items():
        target = tmp_path / f"out_{name}.npy"
        done = _cli(mesh_file, "--seeds", tmp_path / name, "--out", target)
        assert done.returncode != 0 and message in done.stderr, (name, done.stderr)
        assert not target.exists() and not target.with_suffix(".glb").exists()


def test_a_million_face_remesh_is_grown_in_seconds(remesh):
    job = remesh("lamp")
    vertices, faces = job.mesh.vertices, job.mesh.faces
    truth = job.face_labels
    for _ in range(3):  # each face into four: 20k -> 1.3M faces, the parent's truth label carried down
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
        truth = np.repeat(truth, 4)
    assert len(faces) > 1_000_000
    big = Mesh(vertices, faces)
    seeds = seed_faces(big, truth, 1)
    t0 = time.perf_counter()
    labels = api.segment(big, "seeded", seeds=seeds)
    assert time.perf_counter() - t0 < 60
    np.testing.assert_array_equal(labels[seeds >= 0], seeds[seeds >= 0])
    assert set(np.unique(labels)) == {0, 1, 2}
    # Walked on patches of a few faces: well above one segment for everything (0.33 for the lamp).
    assert segmentation_miou(labels, truth, face_areas(vertices, faces)) >= 0.5
