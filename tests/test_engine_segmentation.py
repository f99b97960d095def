"""The segmentation engines on real benchmark objects and on hard input: loose parts, materials, spectral."""

from __future__ import annotations

import time

import numpy as np
import pytest
import trimesh
from skimage import measure

from holopart_blender.engine import api, meshfiles
from holopart_blender.core.errors import InputError
from holopart_blender.core.meshmath import face_areas
from holopart_blender.core.partjob import Mesh
from devtools.evaluation.metrics import segmentation_miou
from devtools.evaluation.tasks import build_remesh_task, fibonacci_directions
from meshgen import grid

REMESH_RESOLUTION = 48  # coarse, so building the tasks takes seconds; the benchmark uses 128


@pytest.fixture(scope="module")
def remesh(benchmark_dir):
    """One-piece remeshes of two benchmark objects with nearest-part truth, built once for this module."""
    tasks = {name: build_remesh_task(benchmark_dir / f"{name}.glb", resolution=REMESH_RESOLUTION)
             for name in ("square_table", "lamp")}
    return lambda name: tasks[name].job


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labellings group the faces identically (label numbers aside)."""
    pairs = np.unique(np.stack([a, b], 1), axis=0)
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


def _miou(labels, job) -> float:
    return segmentation_miou(labels, job.face_labels, face_areas(job.mesh.vertices, job.mesh.faces))


# Loose parts -------------------------------------------------------------------------------------------------

def test_loose_parts_recover_the_parts_of_a_real_object(benchmark_dir):
    # The drawer's three part meshes are one connected piece each: loose parts give them back exactly.
    job = meshfiles.load_job(benchmark_dir / "drawer.glb")
    assert len(job.labels) == 3
    labels = api.segment(job.mesh, "loose_parts")
    assert _same_partition(labels, job.face_labels)
    assert (labels >= 0).all()


@pytest.mark.parametrize("name", ["chair.glb", "square_table.glb"])
def test_loose_pieces_never_straddle_two_parts(benchmark_dir, name):
    # Parts modelled as several pieces (the table top's boards) split further, but no piece spans two parts.
    job = meshfiles.load_job(benchmark_dir / name)
    labels = api.segment(job.mesh, "loose_parts")
    pairs = np.unique(np.stack([labels, job.face_labels], 1), axis=0)
    assert len(pairs) == len(np.unique(labels)) >= len(job.labels)


def test_tiny_pieces_join_their_nearest_neighbour():
    left, right = trimesh.creation.box((1, 1, 1)), trimesh.creation.box((1, 1, 1))
    right.apply_translation((3, 0, 0))
    crumb = trimesh.creation.box((0.05, 0.05, 0.05))  # 0.25% of the surface, beside the right box
    crumb.apply_translation((3.6, 0, 0))
    pieces = [left, right, crumb]
    vertices = np.concatenate([p.vertices for p in pieces])
    offsets = np.cumsum([0] + [len(p.vertices) for p in pieces[:-1]])
    faces = np.concatenate([p.faces + o for p, o in zip(pieces, offsets)])
    owner = np.repeat([0, 1, 2], [len(p.faces) for p in pieces])
    labels = api.segment(Mesh(vertices, faces), "loose_parts")
    assert len(np.unique(labels)) == 2
    assert (labels[owner == 2] == labels[owner == 1][0]).all() and labels[owner == 0][0] != labels[owner == 1][0]
    kept = api.segment(Mesh(vertices, faces), "loose_parts", {"min_area": 0.0})
    assert _same_partition(kept, owner)
    # auto takes loose parts as soon as there are two significant pieces.
    assert _same_partition(api.segment(Mesh(vertices, faces), "auto"), labels)


# Materials ---------------------------------------------------------------------------------------------------

def test_material_slots_become_parts_and_unusable_faces_get_minus_one():
    sphere = trimesh.creation.icosphere(2)
    materials = (sphere.triangles_center[:, 2] > 0).astype(np.int32) + 3 * (sphere.triangles_center[:, 0] > 0.5)
    vertices = np.concatenate([sphere.vertices, [[np.nan, 0.0, 0.0]]])
    faces = np.concatenate([sphere.faces, [[0, 0, 1], [0, 1, len(vertices) - 1]]])  # degenerate, non-finite
    labels = api.segment(Mesh(vertices, faces, np.r_[materials, 0, 1]), "materials")
    np.testing.assert_array_equal(labels[:-2], materials)
    np.testing.assert_array_equal(labels[-2:], [-1, -1])
    with pytest.raises(InputError, match="no material indices"):
        api.segment(Mesh(sphere.vertices, sphere.faces), "materials")


# Spectral on one-piece remeshes of real objects ----------------------------------------------------------------

@pytest.mark.parametrize("name, floor", [("square_table", 0.6), ("lamp", 0.55)])
def test_spectral_finds_the_parts_of_a_one_piece_remesh(remesh, name, floor):
    # One segment for everything scores 1 / parts (0.20 for the table, 0.33 for the lamp).
    job = remesh(name)
    labels = api.segment(job.mesh, "spectral")
    assert (labels >= 0).all()
    assert 2 <= len(np.unique(labels)) <= 40
    assert _miou(labels, job) >= floor > _miou(np.zeros(job.mesh.num_faces), job)
    # auto sees one piece and uses the same method.
    np.testing.assert_array_equal(api.segment(job.mesh, "auto"), labels)


def test_spectral_is_deterministic_and_ignores_winding(remesh):
    job = remesh("square_table")
    first = api.segment(job.mesh, "spectral", {"seed": 3})
    np.testing.assert_array_equal(api.segment(job.mesh, "spectral", {"seed": 3}), first)
    # An inside-out copy (every face flipped) is oriented back, so concave and convex stay apart.
    flipped = Mesh(job.mesh.vertices, job.mesh.faces[:, ::-1])
    np.testing.assert_array_equal(api.segment(flipped, "spectral", {"seed": 3}), first)


@pytest.mark.parametrize("num_parts", [2, 5, 8])
def test_spectral_honours_num_parts(remesh, num_parts):
    labels = api.segment(remesh("square_table").mesh, "spectral", {"num_parts": num_parts})
    assert len(np.unique(labels)) == num_parts


def test_the_part_count_has_no_cap():
    # One closed piece: a ball with 16 rods, the union's surface by marching cubes (creases where rods meet it).
    axis = np.linspace(-1.5, 1.5, 97)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)
    distance = np.linalg.norm(grid, axis=-1) - 0.6
    for direction in fibonacci_directions(16):
        along = np.clip(grid @ direction, 0.0, 1.3)
        distance = np.minimum(distance, np.linalg.norm(grid - along[..., None] * direction, axis=-1) - 0.12)
    vertices, faces, _, _ = measure.marching_cubes(distance, 0.0, spacing=(axis[1] - axis[0],) * 3)
    assert len(np.unique(api.segment(Mesh(vertices, faces), "auto"))) == 17  # 12 was the old cap


def test_a_change_of_thickness_at_a_shallow_crease_separates_parts(benchmark_dir):
    # laikago's legs: hip, thigh and calf meet at creases too shallow to cut on their own (24-49% of each
    # boundary on the 128-cell remesh), but the links differ in thickness there. Without the cue each leg's
    # thigh and calf share a segment, and two legs are one segment whole; with it every hip comes apart.
    job = build_remesh_task(benchmark_dir / "laikago.glb", resolution=REMESH_RESOLUTION).job
    with_cue = api.segment(job.mesh, "auto")
    without = api.segment(job.mesh, "auto", {"thickness_jump": 0.0})
    assert _miou(without, job) < 0.36 and _miou(with_cue, job) > 0.40
    assert len(np.unique(with_cue)) > len(np.unique(without))


def test_spectral_respects_max_parts(remesh):
    labels = api.segment(remesh("lamp").mesh, "spectral", {"max_parts": 2})
    assert len(np.unique(labels)) == 2


# Hard input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [trimesh.creation.icosphere(4), trimesh.creation.capsule(2.0, 0.3, count=[32, 32]),
                                   trimesh.creation.box((1, 2, 3))], ids=["sphere", "capsule", "box"])
def test_a_single_closed_part_stays_one_part(shape):
    labels = api.segment(Mesh(shape.vertices, shape.faces), "auto")
    assert (labels == 0).all()


def test_open_meshes_are_segmented():
    sheet = api.segment(Mesh(*grid(120)), "spectral")  # a smooth open height field: nothing to cut along
    assert (sheet == 0).all()
    box = trimesh.creation.box()
    open_box = box.faces[box.face_normals[:, 2] < 0.5]  # no lid
    labels = api.segment(Mesh(box.vertices, open_box), "spectral")
    assert (labels == 0).all()


def test_non_manifold_input_is_segmented():
    # A box with a fin on one edge: three faces share that edge.
    box = trimesh.creation.box()
    edge = next(e for e in box.edges_unique if np.allclose(*box.vertices[e, :2]))  # a vertical edge
    apex = np.r_[3.0 * box.vertices[edge[0], :2], 0.0]  # out from that edge, off its line
    vertices = np.concatenate([box.vertices, [apex]])
    faces = np.concatenate([box.faces, [[edge[0], edge[1], len(box.vertices)]]])
    labels = api.segment(Mesh(vertices, faces), "spectral")
    assert (labels >= 0).all() and len(np.unique(labels)) <= 2


def test_degenerate_and_nan_faces_get_minus_one():
    sphere = trimesh.creation.icosphere(3)
    vertices = np.concatenate([sphere.vertices, [[np.nan, 0.0, 0.0], [np.inf, 1.0, 0.0]]])
    bad = [[0, 0, 1], [5, 6, 5], [0, 1, len(vertices) - 2], [2, len(vertices) - 1, 3]]
    faces = np.concatenate([sphere.faces, bad])
    for engine in ("spectral", "auto", "loose_parts"):
        labels = api.segment(Mesh(vertices, faces), engine)
        np.testing.assert_array_equal(labels[-4:], -1)
        assert (labels[:-4] == 0).all()


def test_a_million_faces_complete_in_seconds():
    spheres = [trimesh.creation.icosphere(7) for _ in range(3)]  # 327,680 faces each
    vertices = np.concatenate([s.vertices + (2.5 * i, 0.0, 0.0) for i, s in enumerate(spheres)])
    faces = np.concatenate([s.faces + i * len(s.vertices) for i, s in enumerate(spheres)])
    owner = np.repeat(np.arange(3), len(spheres[0].faces))
    assert len(faces) > 980_000
    t0 = time.perf_counter()
    labels = api.segment(Mesh(vertices, faces), "spectral")
    assert time.perf_counter() - t0 < 60
    assert _same_partition(labels, owner)  # separate pieces stay apart; a smooth sphere is one part
