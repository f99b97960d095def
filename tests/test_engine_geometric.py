"""The geometric completion engine: closed parts that keep the visible faces exactly, on real and hard input."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest
import trimesh

from holopart_blender.engine import api, meshfiles
from holopart_blender.wire.request import JobRequest
from holopart_blender.core.errors import Cancelled, EngineError, InputError
from holopart_blender.engine.engines import geometric
from holopart_blender.engine.geometry import capping, convex
from holopart_blender.engine.geometry.capping import close_holes, find_holes
from holopart_blender.engine.geometry.inside import SurfaceGrid
from holopart_blender.engine.geometry.patches import split_manifold
from holopart_blender.engine.geometry import shell
from holopart_blender.engine.geometry.shell import Walls
from holopart_blender.engine.geometry.topology import is_closed, signed_volume, weld
from holopart_blender.core.meshmath import point_triangle_distance
from holopart_blender.core.partjob import Mesh, PartJob
from holopart_blender.core.progress import Progress
from holopart_blender.core.sampling import sample_surface
from devtools.evaluation.metrics import penetration, score_part
from devtools.evaluation.tasks import build_remesh_task, build_task
from meshgen import L_OUTLINE, L_TRIANGLES, U_OUTLINE, U_TRIANGLES, grid, in_polygon, prism, rod, two_boxes


def complete(job, **settings):
    return api.complete_parts(job, "geometric", settings=settings)


def assert_keeps_visible_faces(job: PartJob, result, closed: bool | None = True) -> None:
    """Every part is closed (``closed`` off: open, left as the sheet it is; None: either, an open one with a
    note saying so), starts with its usable input faces in order with bit-identical corners, and marks
    every other face as new."""
    usable = job.mesh.check().usable
    for part in result.parts:
        own = np.flatnonzero((job.face_labels == part.label) & usable)
        n = len(own)
        if closed if closed is not None else part.watertight or "left open" not in part.notes[0]:
            assert part.watertight and is_closed(part.faces), part.name
        else:
            assert not part.watertight and len(part.faces) == n, part.name
        np.testing.assert_array_equal(part.face_source[:n], own)
        assert (part.face_source[n:] == -1).all() and part.source_faces == n
        np.testing.assert_array_equal(part.vertices[part.faces[:n]], job.mesh.vertices[job.mesh.faces[own]])
        assert np.isfinite(part.vertices).all()


@pytest.fixture(scope="module")
def tasks(benchmark_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("tasks")
    return {name: build_task(benchmark_dir / f"{name}.glb", cache) for name in ("bicycle", "square_table", "lamp")}


def test_benchmark_parts_are_closed_keep_their_faces_and_do_not_overlap(tasks):
    for task in tasks.values():
        result = complete(task.job)
        assert_keeps_visible_faces(task.job, result, closed=None)
        # Only the lamp's bulb, seen in pieces through the hood, is left open: its caps would add more
        # surface than is seen of it.
        assert [p.name for p in result.parts if not p.watertight] == (["lamp_bulb"] if task.name == "lamp" else [])
        assert sorted(p.label for p in result.parts) == task.job.labels
        overlap = penetration([(p.vertices, p.faces) for p in result.parts])
        assert np.nanmax(overlap) < 0.01, (task.name, overlap)


def test_results_are_deterministic(tasks):
    job = tasks["lamp"].job
    first, again = complete(job), complete(job)
    for a, b in zip(first.parts, again.parts):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
        np.testing.assert_array_equal(a.face_source, b.face_source)
        assert a.notes == b.notes


@pytest.mark.parametrize("fork", [True, False], ids=["processes", "threads"])
def test_parts_closed_at_once_come_back_as_on_one(tasks, monkeypatch, fork):
    job = tasks["bicycle"].job
    monkeypatch.setattr(geometric, "WORKERS", 1)
    alone = complete(job)
    monkeypatch.setattr(geometric, "WORKERS", 3)
    monkeypatch.setattr(geometric, "FORK", fork)
    together = complete(job)
    assert [p.label for p in together.parts] == [p.label for p in alone.parts] == sorted(job.labels)
    for a, b in zip(alone.parts, together.parts):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
        assert a.notes == b.notes and a.watertight == b.watertight


@pytest.mark.parametrize("fork", [True, False], ids=["processes", "threads"])
def test_a_cancel_stops_the_parts_not_yet_started(monkeypatch, fork):
    vertices, faces = grid(41)
    job = PartJob(Mesh(vertices, faces), (np.arange(len(faces)) // 100).astype(np.int32))  # 32 parts
    started = multiprocessing.get_context("fork").Value("i", 0)  # shared with forked processes
    real = geometric.find_holes

    def counted(*args):
        with started.get_lock():
            started.value += 1
        time.sleep(0.2)  # parts slow enough that the cancel, not the parent's lag, decides how many start
        return real(*args)

    monkeypatch.setattr(geometric, "find_holes", counted)
    monkeypatch.setattr(geometric, "WORKERS", 2)
    monkeypatch.setattr(geometric, "FORK", fork)
    cancel = threading.Event()
    progress = Progress(lambda stage, fraction, message: cancel.set() if "(1/" in message else None, cancel)
    engine = api.EngineSession().engine("completion", "geometric", {})
    with pytest.raises(Cancelled):
        engine.complete(job, job.labels, progress)
    # The first part to end asks for the cancel; a part is handed out only when one ends, so at most one
    # more per worker may have started meanwhile.
    assert 1 <= started.value <= 4, started.value


def test_a_process_that_dies_is_a_clear_error_not_a_hang(monkeypatch):
    vertices, faces = grid(21)
    job = PartJob(Mesh(vertices, faces), (np.arange(len(faces)) // 100).astype(np.int32))  # 8 parts
    parent, real = os.getpid(), geometric.find_holes

    def killed(*args):
        if os.getpid() != parent:  # as the kernel's out-of-memory killer would
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(geometric, "find_holes", killed)
    monkeypatch.setattr(geometric, "WORKERS", 2)
    monkeypatch.setattr(geometric, "FORK", True)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="stopped abruptly"):
        complete(job)
    assert time.monotonic() - t0 < 60
    monkeypatch.setattr(geometric, "find_holes", real)
    assert len(complete(job).parts) == 8  # and the next job runs


def test_hidden_surface_is_recovered_where_the_segment_leaves_it_out(tasks):
    # The bicycle frame's two halves hide each other's inner side: closing each half recovers it.
    task = tasks["bicycle"]
    result = {p.label: p for p in complete(task.job).parts}
    for label, name in enumerate(task.part_names):
        if not name.startswith("frameLink"):
            continue
        segment, truth = task.segment(label), task.parts[label]
        floor = score_part(segment.vertices, segment.faces, truth.vertices, truth.faces, segment.vertices,
                           segment.faces, samples=20_000)
        ours = score_part(result[label].vertices, result[label].faces, truth.vertices, truth.faces,
                          segment.vertices, segment.faces, samples=20_000)
        assert floor["hidden_recall"] == 0.0
        assert ours["hidden_recall"] > 0.9, (name, ours)
        assert ours["iou"] > floor["iou"] - 0.02 and ours["chamfer"] < floor["chamfer"] + 0.002


def test_complete_source_parts_from_a_scene_file(benchmark_dir):
    # The source parts are complete but not all watertight (the bicycle's frame halves and handlebar).
    job = meshfiles.load_job(benchmark_dir / "bicycle.glb")
    result = complete(job)
    assert_keeps_visible_faces(job, result)


def test_a_closed_part_is_returned_as_it_is():
    box = trimesh.creation.box((1.0, 2.0, 3.0))
    job = PartJob(Mesh(box.vertices, box.faces), np.zeros(len(box.faces), np.int32))
    part = complete(job).parts[0]
    assert len(part.faces) == len(box.faces) and part.watertight
    np.testing.assert_array_equal(part.vertices[part.faces], box.vertices[box.faces])


def test_touching_boxes_get_flat_caps_and_keep_apart():
    vertices, faces, labels = two_boxes()
    result = complete(PartJob(Mesh(vertices, faces), labels))
    assert_keeps_visible_faces(PartJob(Mesh(vertices, faces), labels), result)


@pytest.mark.parametrize("count", [1, 2])
def test_a_part_seen_as_one_or_two_triangles(count):
    sphere = trimesh.creation.icosphere(2)
    labels = np.zeros(len(sphere.faces), np.int32)
    labels[sphere.face_adjacency[0][:count]] = 1  # one triangle, or two sharing an edge
    job = PartJob(Mesh(sphere.vertices, sphere.faces), labels)
    small = [p for p in complete(job).parts if p.label == 1][0]
    assert small.source_faces == count
    if count == 1:  # its only cap is its own back: no volume, so it stays the sheet it is
        assert len(small.faces) == 1 and not small.watertight
        assert any("volume would not be positive" in note for note in small.notes), small.notes
    else:  # two triangles at an angle: their hull, a tetrahedron
        assert len(small.faces) == 4 and small.watertight


def test_a_part_hidden_but_for_a_sliver_and_a_thin_slat():
    sphere = trimesh.creation.icosphere(4)
    centre = sphere.triangles_center
    labels = np.where(np.abs(centre[:, 1]) < 0.05, 1, 0).astype(np.int32)  # a thin band around the equator
    slat = trimesh.creation.box((2.0, 0.02, 0.2))
    slat.apply_translation((0.0, 1.5, 0.0))
    vertices = np.concatenate([sphere.vertices, slat.vertices])
    faces = np.concatenate([sphere.faces, slat.faces + len(sphere.vertices)])
    labels = np.concatenate([labels, np.full(len(slat.faces), 2, np.int32)])
    labels[len(sphere.faces) + np.arange(0, len(slat.faces), 3)] = 3  # a third of the slat's faces are another part
    job = PartJob(Mesh(vertices, faces), labels)
    assert_keeps_visible_faces(job, complete(job))


def test_labels_without_faces_and_parts_asked_for(tasks):
    job = tasks["square_table"].job
    named = PartJob(job.mesh, job.face_labels, {**{k: f"p{k}" for k in job.labels}, 99: "never seen"})
    result = complete(named)  # the unused label is not a part
    assert sorted(p.label for p in result.parts) == job.labels
    some = api.EngineSession().run(named, JobRequest("complete", "geometric", parts=job.labels[1:3]))
    assert [p.label for p in some.parts] == job.labels[1:3]
    assert_keeps_visible_faces(job, some)
    with pytest.raises(InputError, match="no faces"):
        api.EngineSession().run(named, JobRequest("complete", "geometric", parts=[99]))


def test_open_and_non_manifold_input_keeps_every_face():
    vertices, faces = grid(12)
    fin = np.array([[0, 1, len(vertices)], [1, 0, len(vertices) + 1]])  # two extra faces on edge (0, 1)
    vertices = np.concatenate([vertices, [[-1.0, -1.0, 0.5], [-0.9, -1.0, -0.5]]])
    faces = np.concatenate([faces, fin])
    faces[5] = faces[5, ::-1]  # one face wound against its neighbours
    faces = np.concatenate([faces, faces[7:8]])  # a duplicated face
    job = PartJob(Mesh(vertices, faces), np.zeros(len(faces), np.int32))
    result = complete(job)
    assert_keeps_visible_faces(job, result, closed=False)  # a sheet: its caps would enclose no volume
    assert any("second copy" in note for note in result.parts[0].notes)
    assert_keeps_visible_faces(job, complete(job, thickness=0.05))  # given a thickness, a closed shell


def test_bow_tie_and_touching_holes():
    # Two squares sharing one corner, each with a hole: still closes.
    a = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    b = a + [1.0, 1.0, 0.0]
    vertices = np.concatenate([a, b[1:]])  # b's first corner is a's corner 2
    faces = np.array([[0, 1, 2], [0, 2, 3], [2, 4, 5], [2, 5, 6]])
    faces2, vertex_of = split_manifold(faces)
    holes = find_holes(vertices[vertex_of], faces2)
    closed_vertices, closed = close_holes(vertices[vertex_of], faces2, holes)
    assert is_closed(closed) and len(holes) == 2
    np.testing.assert_array_equal(closed[:4], faces2)


def test_degenerate_faces_are_skipped_and_an_all_degenerate_part_is_refused():
    box = trimesh.creation.box()
    vertices = np.concatenate([box.vertices, [[5.0, 5.0, 5.0]]])
    faces = np.concatenate([box.faces, [[8, 8, 8], [0, 1, 1]]])
    labels = np.r_[np.zeros(len(box.faces)), [0, 1]].astype(np.int32)
    job = PartJob(Mesh(vertices, faces), labels)
    part = api.EngineSession().run(job, JobRequest("complete", "geometric", parts=[0])).parts[0]
    assert part.watertight and part.source_faces == len(box.faces)
    with pytest.raises(InputError, match="degenerate"):
        api.EngineSession().run(job, JobRequest("complete", "geometric", parts=[1]))


def _without_face(mesh: trimesh.Trimesh, normal, height) -> trimesh.Trimesh:
    """``mesh`` without its faces with the given normal at the given height (along the normal)."""
    keep = ~((mesh.face_normals @ normal > 0.99) & (np.abs(mesh.triangles_center @ normal - height) < 1e-9))
    return mesh.submesh([np.flatnonzero(keep)], append=True)


def peg_in_slab() -> PartJob:
    """A slab (y 0 to 0.4) and a square peg under it (y -0.8 to 0) as seen from outside: the peg's top and the
    slab's underside where the peg touches it are hidden."""
    up = np.array([0.0, 1.0, 0.0])
    slab = _without_face(trimesh.creation.box((1.6, 0.4, 1.6)), -up, 0.2)
    slab.apply_translation((0.0, 0.2, 0.0))
    outer = np.array([[-0.8, 0, -0.8], [0.8, 0, -0.8], [0.8, 0, 0.8], [-0.8, 0, 0.8]])
    inner = outer * [0.1875, 1, 0.1875]  # the peg's cross-section: 0.3 x 0.3
    ring_vertices = np.concatenate([outer, inner])
    ring = np.concatenate([[[k, (k + 1) % 4, 4 + (k + 1) % 4], [k, 4 + (k + 1) % 4, 4 + k]] for k in range(4)])
    ring = trimesh.Trimesh(ring_vertices, ring, process=False)
    if (ring.face_normals @ up).mean() > 0:
        ring.invert()
    peg = _without_face(trimesh.creation.box((0.3, 0.8, 0.3)), up, 0.4)
    peg.apply_translation((0.0, -0.4, 0.0))
    pieces = [slab, ring, peg]
    labels = np.concatenate([np.zeros(len(slab.faces) + len(ring.faces)), np.ones(len(peg.faces))]).astype(np.int32)
    whole = trimesh.util.concatenate(pieces)
    return PartJob(Mesh(whole.vertices, whole.faces), labels, {0: "slab", 1: "peg"})


def test_a_plug_gets_a_flat_cut_at_its_socket_and_the_two_keep_apart():
    job = peg_in_slab()
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    parts = {p.name: p for p in result.parts}
    assert parts["peg"].vertices[:, 1].max() == pytest.approx(0.0)
    assert max(penetration([(p.vertices, p.faces) for p in parts.values()])) < 0.005


def axle_through_a_block() -> PartJob:
    """A rod seen only where it sticks out of both sides of a block (a car's axle and chassis)."""
    axle = rod(length=2.0, radius=0.1)
    seen = np.abs(axle.triangles_center[:, 0]) > 0.6
    block = trimesh.creation.box((1.2, 0.6, 0.6))
    vertices = np.concatenate([block.vertices, axle.vertices])
    faces = np.concatenate([block.faces, axle.faces[seen] + len(block.vertices)])
    labels = np.r_[np.zeros(len(block.faces)), np.ones(seen.sum())].astype(np.int32)
    return PartJob(Mesh(vertices, faces), labels, {0: "block", 1: "axle"})


def test_a_convex_part_seen_in_pieces_is_completed_whole():
    job = axle_through_a_block()
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    whole = {p.name: p for p in result.parts}
    stubs = {p.name: p for p in complete(job, convex=0.0).parts}
    axle = trimesh.Trimesh(whole["axle"].vertices, whole["axle"].faces, process=False)
    cut = trimesh.Trimesh(stubs["axle"].vertices, stubs["axle"].faces, process=False)
    assert axle.volume == pytest.approx(rod().volume, rel=1e-6)  # the rod, end to end
    assert cut.volume == pytest.approx(rod().volume * 0.8 / 2.0, rel=1e-6)  # two stubs 0.4 long, cut flat
    assert any("convex hull" in note for note in whole["axle"].notes)
    assert not any("convex hull" in note for note in whole["block"].notes)  # closed already: nothing to add
    # The rod runs through the block, as what is seen of it says it must; the stubs do not.
    assert penetration([(p.vertices, p.faces) for p in whole.values()])[1] > 0.5
    assert max(penetration([(p.vertices, p.faces) for p in stubs.values()])) < 0.01


def test_a_wheel_seen_on_both_faces_is_joined_by_its_tread():
    wheel = rod(length=0.4, radius=1.0, rings=5, sections=48)
    faces = np.abs(wheel.face_normals[:, 0]) > 0.99  # its two faces; the tread is hidden
    job = PartJob(Mesh(wheel.vertices, wheel.faces[faces]), np.zeros(faces.sum(), np.int32))
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    whole, banded = result.parts[0], complete(job, convex=0.0).parts[0]
    assert trimesh.Trimesh(whole.vertices, whole.faces).volume == pytest.approx(wheel.volume, rel=1e-9)
    # Without the hull, the two rims are joined by their least-area band, which is the tread too: two flat
    # discs, one over each face, would enclose nothing.
    assert banded.watertight and "1 pair(s) of rims joined by a band" in banded.notes[0], banded.notes
    assert trimesh.Trimesh(banded.vertices, banded.faces).volume == pytest.approx(wheel.volume, rel=1e-9)


def test_two_rims_are_joined_by_a_band_only_where_it_spans_hidden_surface():
    # A tube hidden around its middle: the band between the two rims is the missing side (its caps would
    # be two lids across the tube). A short rod hidden at both ends: the least-area band between its rims
    # is its own side again, inside out, so each end gets its cap.
    tube = rod(length=2.0, radius=0.5, rings=21, sections=24)
    side = np.arange(len(tube.faces)) // 48  # the side's bands along the rod, then the two ends
    seen = (side < 9) | (side > 10)
    vertices, faces = tube.vertices, tube.faces[seen]
    holes = find_holes(vertices, faces)
    assert len(holes) == 2 and holes.bands == 1
    assert signed_volume(*close_holes(vertices, faces, holes)) == pytest.approx(tube.volume, rel=1e-9)
    short = rod(length=0.1, radius=0.5, rings=5, sections=24)
    faces = short.faces[:-48]  # its side only
    holes = find_holes(short.vertices, faces)
    assert len(holes) == 2 and holes.bands == 0
    assert signed_volume(*close_holes(short.vertices, faces, holes)) == pytest.approx(short.volume, rel=1e-9)


def test_a_half_seen_ball_is_closed_along_its_hull_and_other_shapes_keep_their_caps(tasks):
    sphere = trimesh.creation.icosphere(3)
    seen = sphere.triangles_center[:, 2] > 0  # its rim zigzags about the equator
    job = PartJob(Mesh(sphere.vertices, sphere.faces[seen]), np.zeros(seen.sum(), np.int32))
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    part = result.parts[0]
    hull = trimesh.Trimesh(sphere.vertices[np.unique(sphere.faces[seen])]).convex_hull
    assert trimesh.Trimesh(part.vertices, part.faces).volume == pytest.approx(hull.volume, rel=1e-9)
    # The table's legs and top, the lamp's hood (a shell) and the bicycle's wheels (rings) are not convex.
    for task in tasks.values():
        for part in complete(task.job).parts:
            assert not any("completed to its convex hull" in note for note in part.notes), (task.name, part.name)


def assemble(*parts: tuple[trimesh.Trimesh, np.ndarray, str]) -> PartJob:
    """One mesh of the seen faces (mask) of each part, labelled in order."""
    offsets = np.cumsum([0] + [len(mesh.vertices) for mesh, _, _ in parts])
    vertices = np.concatenate([mesh.vertices for mesh, _, _ in parts])
    faces = np.concatenate([mesh.faces[seen] + offset for (mesh, seen, _), offset in zip(parts, offsets)])
    labels = np.concatenate([np.full(seen.sum(), i, np.int32) for i, (_, seen, _) in enumerate(parts)])
    return PartJob(Mesh(vertices, faces), labels, {i: name for i, (_, _, name) in enumerate(parts)})


def fine(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    return trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, 0.2), process=False)


def ball_on_a_block(height: float) -> PartJob:
    """A unit ball whose centre is ``height`` above a block's top face, seen where it is outside the block,
    and the block seen where it is outside the ball (a robot's head on its body)."""
    ball = trimesh.creation.icosphere(4)
    ball.apply_translation([0.0, 0.0, height])
    block = fine(trimesh.creation.box((4.0, 4.0, 2.0), trimesh.transformations.translation_matrix([0, 0, -1])))
    return assemble((ball, ball.triangles_center[:, 2] > 0, "ball"),
                    (block, np.linalg.norm(block.triangles_center - [0, 0, height], axis=1) > 1.0, "block"))


def test_a_ball_seen_past_its_widest_circle_is_completed_to_the_whole_ball():
    # Seen down to 0.3 below its centre, the rest inside the block: the whole ball, not a dome with a lid.
    job = ball_on_a_block(0.3)
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    ball = {p.name: p for p in result.parts}["ball"]
    assert "completed to the whole sphere" in ball.notes[0], ball.notes
    volume = trimesh.Trimesh(ball.vertices, ball.faces).volume
    assert volume == pytest.approx(trimesh.creation.icosphere(4).volume, rel=0.01)
    assert ball.vertices[:, 2].min() == pytest.approx(0.3 - 1.0, abs=0.01)


@pytest.mark.parametrize("height", [0.0, -0.3])
def test_a_dome_seen_down_to_its_widest_circle_or_less_keeps_its_flat_base(height):
    # A hemisphere, or less, seen: nothing seen says the ball goes on inside the block.
    job = ball_on_a_block(height)
    ball = {p.name: p for p in complete(job).parts}["ball"]
    assert not any("sphere" in note for note in ball.notes), ball.notes
    assert ball.watertight and ball.vertices[:, 2].min() > -0.05


def test_a_ball_in_the_open_is_not_completed_to_a_sphere():
    # The same ball seen past its equator with nothing below it: what is not seen is empty space, not
    # hidden, and the ball is closed along its hull (a flat cut).
    ball = trimesh.creation.icosphere(4)
    seen = ball.triangles_center[:, 2] > -0.3
    job = PartJob(Mesh(ball.vertices, ball.faces[seen]), np.zeros(seen.sum(), np.int32))
    part = complete(job).parts[0]
    assert not any("sphere" in note for note in part.notes), part.notes
    assert part.vertices[:, 2].min() > -0.35


def test_a_bracket_hidden_where_a_wheel_runs_into_it_is_closed_along_its_hull():
    # An L-shaped bracket (not convex) with a wheel pressed into the underside of its arm: the bottom and
    # both sides of the arm are hidden there, and the rim climbs the sides along the wheel's curve.
    bracket = prism(L_OUTLINE, L_TRIANGLES, edge=0.2)
    wheel = trimesh.creation.cylinder(radius=1.2, height=1.6, sections=64)
    wheel.apply_translation((2.75, -1.0, 0.5))
    wheel = fine(wheel)
    centre = bracket.triangles_center
    in_wheel = (centre[:, 0] - 2.75) ** 2 + (centre[:, 1] + 1.0) ** 2 < 1.2 ** 2
    job = assemble((bracket, ~in_wheel, "bracket"), (wheel, ~in_polygon(wheel.triangles_center, L_OUTLINE), "wheel"))
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    ours, caps = result.parts[0], complete(job, convex=0.0).parts[0]
    assert any("along its convex hull where the object is solid" in note for note in ours.notes), ours.notes
    # The arm's flat bottom and sides come back exactly; least-area caps follow the wheel's curve instead.
    assert trimesh.Trimesh(ours.vertices, ours.faces).volume == pytest.approx(bracket.volume, rel=1e-9)
    assert trimesh.Trimesh(caps.vertices, caps.faces).volume < bracket.volume - 0.1


def test_on_a_closed_object_a_hull_that_encloses_space_outside_it_is_turned_down():
    # A one-piece U-shaped block: its hull encloses, beyond the block, the gap between its prongs, which a
    # closed surface shows to be empty. A box inside the block's base adds nothing outside it.
    block = prism(U_OUTLINE, U_TRIANGLES, edge=0.25)
    labels = np.zeros(len(block.faces), np.int32)
    candidate = lambda kind, mesh: geometric._Candidate(kind, mesh.vertices, np.asarray(mesh.faces), "")  # noqa: E731
    base = trimesh.creation.box((2.8, 0.8, 0.8))
    base.apply_translation((1.5, 0.5, 0.5))
    core = trimesh.creation.box((1.0, 0.4, 0.4))
    core.apply_translation((1.5, 0.5, 0.5))
    closed = geometric._Checks(block.vertices, np.asarray(block.faces), labels, closed=True)
    reason = closed.outside(candidate("hull", block.convex_hull), candidate("caps", block))
    assert reason is not None and "beyond its caps would lie outside the object" in reason, reason
    assert int(reason.split("%")[0]) >= 80, reason  # the gap's cells, but for those its walls pass through
    assert closed.outside(candidate("hull along", base), candidate("caps", core)) is None
    assert closed.outside(candidate("caps", block.convex_hull), candidate("caps", block)) is None  # caps: exempt
    # Seen surface with gaps in it (the benchmark's visible faces) says nothing about what lies outside.
    seen = geometric._Checks(block.vertices, np.asarray(block.faces), labels, closed=False)
    assert seen.outside(candidate("hull", block.convex_hull), candidate("caps", block)) is None


def test_a_one_piece_remesh_keeps_its_parts_inside_its_surface(benchmark_dir, tmp_path):
    # The husky remeshed into one closed surface (the benchmark's own remesh), labelled by its true parts: the
    # top plate's hull would reach out over the open space above it; the wheels' hulls stay inside.
    task = build_remesh_task(benchmark_dir / "husky.glb", tmp_path, 128)
    result = {p.name: p for p in complete(task.job).parts}
    plate = result["top_plate_link"]
    assert any("would lie outside the object, which is closed" in note for note in plate.notes), plate.notes
    assert "convex hull" not in plate.notes[0] and plate.watertight
    for wheel in ("front_left_wheel_link", "rear_right_wheel_link"):
        assert "along its convex hull" in result[wheel].notes[0], result[wheel].notes


def winding_numbers(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The winding number of a closed mesh around each point (1 inside, 0 outside)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=2) for v in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la \
        + np.einsum("pfi,pfi->pf", c, a) * lb
    return np.arctan2(det, den).sum(axis=1) / (2 * np.pi)


def test_the_open_gap_of_a_fork_is_not_closed_over():
    # A fork whose two prongs end in two blocks at different heights: its rims lie on its hull, and the
    # hull facets between them span the open gap between the prongs, where nothing is solid.
    fork = prism(U_OUTLINE, U_TRIANGLES, edge=0.2)
    low, high = ((-0.25, 2.5, -0.25), (1.25, 3.5, 1.25)), ((1.75, 2.0, -0.25), (3.25, 3.5, 1.25))
    blocks = [fine(trimesh.creation.box(bounds=np.array(box))) for box in (low, high)]
    hidden = np.zeros(len(fork.faces), bool)
    for lo, hi in (low, high):
        hidden |= np.all((fork.triangles_center > lo) & (fork.triangles_center < hi), axis=1)
    job = assemble((fork, ~hidden, "fork"), *[(block, ~in_polygon(block.triangles_center, U_OUTLINE), name)
                                              for block, name in zip(blocks, ("low", "high"))])
    result = complete(job)
    assert_keeps_visible_faces(job, result)
    part = result.parts[0]
    gap = np.stack(np.meshgrid(np.linspace(1.1, 1.9, 5), np.linspace(1.2, 2.45, 6), [0.5]), -1).reshape(-1, 3)
    assert np.all(np.abs(winding_numbers(part.vertices, part.faces, gap)) < 0.5)
    # Without the object's surface to look at, the same hull facets would close the gap.
    faces, vertex_of = split_manifold(fork.faces[~hidden])
    vertices = fork.vertices[vertex_of]
    holes = find_holes(vertices, faces)
    hull = convex._Hull(vertices[np.unique(faces)])
    ring = np.unique(holes.rim)
    solid = SurfaceGrid(job.mesh.vertices, job.mesh.faces, job.face_labels)
    centres = [vertices[convex.hidden_facets(vertices, faces, ring, hull, 0.03, surface)].mean(axis=1)
               for surface in (None, solid)]
    in_gap = [((c[:, 0] > 1.0) & (c[:, 0] < 2.0)).sum() for c in centres]
    assert in_gap[0] > 0 and in_gap[1] == 0, in_gap


def test_a_hull_that_would_push_into_its_neighbours_is_not_used(benchmark_dir, tmp_path):
    # The generated character's geometry_1 is seen in pieces between its neighbours: the space behind it is
    # solid only because they are there. Its hull would put far more of it inside them than its caps do, so
    # it keeps its caps.
    task = build_task(benchmark_dir / "holopart_output_005.glb", tmp_path)
    result = {p.name: p for p in complete(task.job).parts}
    part = result["geometry_1"]
    assert any(note.startswith("not closed along its convex hull: that would put") for note in part.notes), part.notes
    label = task.part_names.index("geometry_1")
    faces, vertex_of = split_manifold(weld(task.job.mesh.vertices, task.job.mesh.faces[task.job.face_labels == label],
                                           tolerance=0))
    vertices = task.job.mesh.vertices[vertex_of]
    np.testing.assert_array_equal(part.faces, close_holes(vertices, faces, find_holes(vertices, faces))[1])


def test_holes_found_again_reuse_the_triangulations_that_did_not_change(benchmark_dir, tmp_path, monkeypatch):
    # The hull step closes a patch a second time with facets added; rims it did not touch keep their caps
    # without being triangulated again, and the caps are the same as those found afresh.
    task = build_task(benchmark_dir / "square_table.glb", tmp_path)
    label = int(np.argmax(np.bincount(task.job.face_labels[task.job.face_labels >= 0])))
    faces, vertex_of = split_manifold(weld(task.job.mesh.vertices, task.job.mesh.faces[task.job.face_labels == label],
                                           tolerance=0))
    vertices = task.job.mesh.vertices[vertex_of]
    calls = []
    least_area = capping._min_area_triangles
    monkeypatch.setattr(capping, "_min_area_triangles", lambda *a: calls.append(1) or least_area(*a))
    first = find_holes(vertices, faces)
    made = len(calls)
    assert made > 0
    again = find_holes(vertices, faces, reuse=first)
    assert len(calls) == made  # nothing triangulated twice
    fresh = find_holes(vertices, faces)
    assert len(calls) == 2 * made
    for holes in (again, fresh):
        np.testing.assert_array_equal(holes.cap, first.cap)
        np.testing.assert_array_equal(holes.cap_start, first.cap_start)


def test_rays_tell_inside_from_outside():
    box = fine(trimesh.creation.box((1.0, 1.0, 1.0)))
    flipped = box.faces[:, ::-1]  # an inside-out copy beside it counts the same
    vertices = np.concatenate([box.vertices, box.vertices + (3.0, 0.0, 0.0)])
    faces = np.concatenate([box.faces, flipped + len(box.vertices)])
    boxes = SurfaceGrid(vertices, faces, np.repeat([0, 1], len(box.faces)))
    axes = np.concatenate([np.eye(3), -np.eye(3)])
    for centre in ((0.0, 0.0, 0.0), (3.0, 0.0, 0.0)):
        assert boxes.inside(np.tile(centre, (6, 1)), axes).all()
    # From outside: towards a box the first face met faces the ray; away from it nothing is met.
    outside = np.array([[-1.0, 0.0, 0.0], [1.5, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 2.0, 0.0]])
    directions = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert not boxes.inside(outside, directions).any()
    # An open sheet seen from either side is met from the front both ways.
    sheet = SurfaceGrid(*grid(20), np.zeros(2 * 19 ** 2, np.int32))
    assert not sheet.inside(np.array([[0.0, 0.0, 0.5], [0.0, 0.0, -0.5]]), np.array([[0, 0, -1.0], [0, 0, 1.0]])).any()


def test_the_generated_car_gets_its_axles_whole_and_its_planks_closed_underneath(benchmark_dir, tmp_path):
    task = build_task(benchmark_dir / "holopart_output_002.glb", tmp_path)
    first, again = complete(task.job), complete(task.job)
    assert_keeps_visible_faces(task.job, first)
    for a, b in zip(first.parts, again.parts):  # qhull is deterministic too
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
    result = {p.label: p for p in first.parts}
    convex = sorted(task.part_names[label] for label, part in result.items()
                    if any("convex hull" in note for note in part.notes))
    assert {"geometry_7", "geometry_8"} <= set(convex), convex
    for label in (task.part_names.index("geometry_7"), task.part_names.index("geometry_8")):
        segment, truth = task.segment(label), task.parts[label]
        ours = score_part(result[label].vertices, result[label].faces, truth.vertices, truth.faces,
                          segment.vertices, segment.faces, samples=20_000)
        floor = score_part(segment.vertices, segment.faces, truth.vertices, truth.faces, segment.vertices,
                           segment.faces, samples=20_000)
        assert ours["hidden_recall"] > 0.95 and ours["iou"] > floor["iou"] + 0.5, ours
    # The two planks lying on the wheels are hidden underneath where the wheels run into them: closed
    # along their hulls there, they recover far more of it than least-area caps do.
    caps = {p.label: p for p in complete(task.job, convex=0.0).parts}
    for name in ("geometry_1", "geometry_6"):
        label = task.part_names.index(name)
        segment, truth = task.segment(label), task.parts[label]
        assert any("where the object is solid behind it" in note for note in result[label].notes), name
        ours, capped = (score_part(part.vertices, part.faces, truth.vertices, truth.faces, segment.vertices,
                                   segment.faces, samples=20_000) for part in (result[label], caps[label]))
        assert ours["hidden_recall"] > capped["hidden_recall"] + 0.15, (name, ours, capped)
        assert ours["iou"] > capped["iou"] - 0.005, (name, ours, capped)


def test_voxel_rebuild_closes_boxes_and_sheets():
    vertices, faces, labels = two_boxes()
    job = PartJob(Mesh(vertices, faces), labels)
    rebuilt = complete(job, keep_visible=False, resolution=24)
    assert all(p.watertight and (p.face_source == -1).all() for p in rebuilt.parts)
    open_job = PartJob(Mesh(*grid(10)), np.zeros(2 * 81, np.int32))
    assert complete(open_job, keep_visible=False, resolution=24).parts[0].watertight


def test_a_million_faces():
    vertices, faces = grid(708)  # 999,698 faces, one open sheet
    job = PartJob(Mesh(vertices, faces), np.zeros(len(faces), np.int32))
    t0 = time.perf_counter()
    part = complete(job, thickness=0.01).parts[0]  # a sheet, given a thickness
    seconds = time.perf_counter() - t0
    assert part.watertight and part.source_faces == len(faces) and len(part.faces) > 2 * len(faces)
    np.testing.assert_array_equal(part.face_source[:len(faces)], np.arange(len(faces)))
    assert seconds < 60


# Doing no harm, and thin parts completed as shells (issue 15), on the development set's own parts.


@pytest.fixture(scope="module")
def thin_tasks(benchmark_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("thin_tasks")
    return {name: build_task(benchmark_dir / f"{name}.glb", cache) for name in ("husky", "drawer", "mini_cheetah")}


def _chamfer(part, task, name) -> tuple[float, float]:
    """The result's Chamfer distance to the truth part, and the visible segment's."""
    label = task.part_names.index(name)
    segment, truth = task.segment(label), task.parts[label]
    scores = [score_part(v, f, truth.vertices, truth.faces, segment.vertices, segment.faces, samples=20_000)
              for v, f in ((part.vertices, part.faces), (segment.vertices, segment.faces))]
    return scores[0]["chamfer"], scores[1]["chamfer"]


@pytest.mark.parametrize("views", [64, 128])
def test_a_bent_open_sheet_never_becomes_a_box(views, thin_tasks, benchmark_dir, tmp_path):
    # The husky's top plate is bent sheet metal seen from above: its caps would be inside out (negative
    # volume) and its hull a lidded box. Both are turned down with a note, and it stays the sheet it is.
    # Seen from 128 directions its hull along the caps has a positive volume (a box 0.0216 from the truth
    # against the sheet's 0.0058): it is not tried over caps that are inside out.
    task = thin_tasks["husky"] if views == 64 else build_task(benchmark_dir / "husky.glb", tmp_path, views)
    plate = {p.name: p for p in complete(task.job).parts}["top_plate_link"]
    assert any("not closed by its caps: its volume would not be positive" in note for note in plate.notes), plate.notes
    assert any("not closed by its hull along: its caps are inside out" in note for note in plate.notes), plate.notes
    assert "left open" in plate.notes[0] and not plate.watertight
    label = task.part_names.index("top_plate_link")
    assert len(plate.faces) == plate.source_faces == int((task.job.face_labels == label).sum())
    ours, selection = _chamfer(plate, task, "top_plate_link")
    assert ours == selection


def test_a_single_sheet_stays_a_sheet_unless_given_a_thickness(thin_tasks):
    # The plate's upward faces alone: one sheet with no back anywhere.
    task = thin_tasks["husky"]
    label = task.part_names.index("top_plate_link")
    vertices, faces, _ = task.job.mesh.submesh(task.job.face_labels == label)
    up = trimesh.Trimesh(vertices, faces, process=False).face_normals[:, 1] > 0.9
    sheet = PartJob(Mesh(vertices, faces[up]), np.zeros(int(up.sum()), np.int32))
    part = complete(sheet).parts[0]
    assert not part.watertight and len(part.faces) == up.sum()
    thick = complete(sheet, thickness=0.01).parts[0]
    assert thick.watertight and "thickness setting" in thick.notes[0]
    area = float(trimesh.Trimesh(vertices, faces[up]).area)
    assert signed_volume(thick.vertices, thick.faces) == pytest.approx(0.01 * area, rel=0.05)


def test_an_open_cabinet_is_completed_as_a_shell_of_its_rims_thickness(thin_tasks):
    # The drawer's carcass is an open box whose inner walls are hidden behind the drawers: least-area caps
    # cut across it (and through the drawers). It comes back as a shell as thick as the walls it shows.
    task = thin_tasks["drawer"]
    box = {p.name: p for p in complete(task.job).parts}["drawer_box"]
    assert "completed as a shell" in box.notes[0] and box.watertight, box.notes
    truth = task.parts[task.part_names.index("drawer_box")]
    measured = float(box.notes[0].split("shell ")[1].split(" thick")[0])
    assert measured == pytest.approx(Walls(truth.vertices, truth.faces).thickness(), rel=0.25)
    label = task.part_names.index("drawer_box")
    faces, vertex_of = split_manifold(task.job.mesh.faces[task.job.face_labels == label])
    vertices = task.job.mesh.vertices[vertex_of]
    capped = close_holes(vertices, faces, find_holes(vertices, faces))
    assert signed_volume(box.vertices, box.faces) < 0.5 * signed_volume(*capped)
    ours, selection = _chamfer(box, task, "drawer_box")
    assert ours < selection


def test_a_flanged_ring_hidden_underneath_is_closed_by_a_band(benchmark_dir, tmp_path):
    # The differential's carrier is a thin flanged ring whose underside, an annulus between its outer and
    # inner rims, is hidden. Capped one rim at a time, it got two lids across its opening (turned down) and
    # then a shell (CD 0.0114 against its selection's 0.0062); the band between the rims is that annulus.
    task = build_task(benchmark_dir / "differential.glb", tmp_path)
    label = task.part_names.index("diff_ring_diff_carrier")
    carrier = api.EngineSession().run(task.job, JobRequest("complete", "geometric", parts=[label])).parts[0]
    assert carrier.watertight and "joined by a band" in carrier.notes[0], carrier.notes
    ours, selection = _chamfer(carrier, task, "diff_ring_diff_carrier")
    assert ours < selection


@pytest.mark.parametrize("obj, name", [("drawer", "drawer_container_bottom"), ("husky", "base_link"),
                                       ("lamp", "lamp_bulb")])
def test_parts_that_used_to_come_back_worse_than_their_selection(obj, name, thin_tasks, tasks):
    # Before the checks: the tray 0.0865 against its selection's 0.0765 (its hull), the husky's chassis
    # 0.0095 against 0.0069 (its hull), the bulb 0.0407 against 0.0342 (caps). Now within the issue's
    # margin of 0.002 (the tray and the chassis keep caps that add 0.0006-0.0008); the bulb is left open.
    task = {**thin_tasks, **tasks}[obj]
    part = {p.name: p for p in complete(task.job).parts}[name]
    ours, selection = _chamfer(part, task, name)
    assert ours <= selection + 0.002, (ours, selection, part.notes)


def test_round_parts_sunk_in_their_neighbours_come_back_whole(benchmark_dir, tmp_path):
    # r2d2's head is a ball seen to just below its equator, the rest inside its body: closed along its hull
    # (a flat base) it was 0.0576 from the truth, against its selection's 0.0476; mini_cheetah's toes are
    # balls sunk in their legs. Completed to their spheres they come back closer than their selections.
    for obj, names in (("r2d2", ["head"]), ("mini_cheetah", ["toe_fr", "toe_hl"])):
        task = build_task(benchmark_dir / f"{obj}.glb", tmp_path)
        labels = [task.part_names.index(name) for name in names]
        result = api.EngineSession().run(task.job, JobRequest("complete", "geometric", parts=labels))
        for part, name in zip(result.parts, names):
            assert part.watertight and "completed to the whole sphere" in part.notes[0], (name, part.notes)
            ours, selection = _chamfer(part, task, name)
            assert ours < selection - 0.0005, (name, ours, selection)


def test_point_triangle_distance_matches_trimesh_on_a_real_part(thin_tasks):
    # Points scattered around the drawer carcass's own triangles (above them, beyond their edges and
    # corners), against trimesh's closest points.
    task = thin_tasks["drawer"]
    vertices, faces, _ = task.job.mesh.submesh(task.job.face_labels == task.part_names.index("drawer_box"))
    corners = vertices[faces]
    rng = np.random.default_rng(1)
    pick = rng.integers(len(faces), size=5000)
    points = corners[pick].mean(axis=1) + rng.normal(scale=0.02, size=(5000, 3))
    expected = np.linalg.norm(trimesh.triangles.closest_point(corners[pick], points) - points, axis=1)
    np.testing.assert_allclose(point_triangle_distance(points, corners[pick]), expected, rtol=1e-9, atol=1e-12)


def test_a_lid_is_measured_on_the_walls_not_on_their_samples(thin_tasks, monkeypatch):
    # mini_cheetah's body is a casing 0.0067 thick: its caps are a lid. The share of them that lies beyond
    # twice that from its walls is the same whether the walls are sampled at 8,000 points or 50,000, and it
    # is the share measured against every face. (Measured from the samples, with two sample spacings as
    # the floor, it grew from 13% to 23% with the samples, across the 10% that tells a lid.)
    task = thin_tasks["mini_cheetah"]
    label = task.part_names.index("body")
    faces, vertex_of = split_manifold(task.job.mesh.faces[task.job.face_labels == label])
    vertices = task.job.mesh.vertices[vertex_of]
    capped_vertices, capped_faces = close_holes(vertices, faces, find_holes(vertices, faces))
    points, _ = sample_surface(capped_vertices, capped_faces[len(faces):], 20_000, np.random.default_rng(0))
    shares = []
    for samples in (8_000, 50_000):
        monkeypatch.setattr(shell, "SAMPLES", samples)
        walls = Walls(vertices, faces)
        shares.append(walls.away(points, 2 * walls.thickness()))
    assert shares[1] == pytest.approx(shares[0], abs=0.01), shares
    every = [point_triangle_distance(np.repeat(p[None], len(faces), 0), vertices[faces]).min() for p in points[:200]]
    assert walls.away(points[:200], 2 * walls.thickness()) == np.mean(np.array(every) > 2 * walls.thickness())
    assert walls.away(walls.points[:100], 2 * walls.thickness()) == 0.0  # on the walls: nothing left to measure
