"""The ``geometric`` completion engine: closed parts on any CPU, with no weights.

Each visible segment keeps its own faces, in their order and with their corner positions exactly (so the
artist's topology and UVs survive and ``face_source`` maps them back); only added faces have
``face_source = -1``. What is hidden is added in these steps:

1. Corners at bit-identical positions are joined (UV and normal seams), and the segment is made an
   oriented manifold patch (``geometry.patches``): where faces meet badly (an edge
   shared by three faces, neighbours wound in opposite directions, two pieces touching at a corner) they
   get their own copies of the shared vertices, so every segment can be closed, whatever its faces.
2. Every hole (where the part is hidden: a leg's end inside the table top, the patch of the top under each
   leg, spots no ray from outside reached) is spanned by its least-area surface (``geometry.capping``):
   a planar rim gives a flat cut, which is what a contact between two parts is, and a crooked one is
   stitched shut along itself. Two rims around one hidden band (a flanged ring's hidden underside, a
   tube's hidden middle) are joined by a band where that has less area than their two caps.
3. A part whose visible surface lies on one sphere and is seen past its widest circle, the rest of the sphere
   hidden inside the object (a robot's head on its body, a foot in its leg), is completed to the whole sphere
   (``geometry.sphere``): a flat cut across its rim would end it where nothing seen says it ends. Otherwise, a
   part whose visible surface lies on its own convex hull (``convex``: within that share of the hull's width;
   ``geometry.convex``; 0 turns the sphere off too) is completed to the hull instead, so an axle seen at both
   ends of its wheel comes back as one rod rather than two stubs. Where what is seen of it lies on both sides
   of another part, the rod runs through that part, as the benchmark's ground truth does there (its generated
   car's axles lie 67-68% inside their wheels, ours too). Where all its rims lie in one plane, the hull adds
   nothing to their flat caps. Any other part is closed along its hull too, piece by piece, where the whole
   object is solid behind the hull (rays into it meet the visible surface from behind, ``geometry.inside``): a
   plank's flat underside where a wheel runs into it, not a cap following the wheel's curve; an open gap
   between two prongs stays open. Never over caps that are inside out: what is seen is then a bent sheet from
   outside, which a hull would make a box. Such a part keeps its caps when its hull would put over ``OVERLAP``
   (5%) more of its inside into the other parts than the caps do (checked on a coarse grid): the space behind
   it belongs to a neighbour, as a drawer's tray's does to its carcass.
4. A part with thin walls (sheet metal, a casing, a drawer's tray, an open cabinet: the back of its wall is
   seen within four times its thickness over ``TWO_SIDED`` of its surface, and that thickness is at most
   ``THIN`` of its size; ``geometry.shell``) is never closed by anything that strays from its walls: a hull
   or caps of which over ``LID`` lies farther than twice its thickness from them is a lid over the space the
   walls bend around. Without caps it is completed as a shell of that thickness (Solidify-like: its surface
   offset inwards, joined along every rim).
5. Every closure must then do no harm (``_Checks``): be closed with a positive volume, have no more bodies
   than the visible surface has pieces and none without visible faces, add at most ``MAX_ADDED`` x the
   visible area (caps and partial hulls; for a single sheet at most ``SHEET_CAPS``), and enclose at most
   ``ENCLOSED`` of other parts' visible surface. On a closed object (a one-piece mesh, a scan), a hull or a
   sphere may also put at most ``OUTSIDE`` of what it encloses beyond the caps outside the object's surface:
   that space was seen empty. (Visible faces with gaps between them do not tell outside from hidden, so
   there this check is not made.) The first closure that passes is kept; when none does the
   visible faces come back as they are, open (a sheet stays a sheet; the ``thickness`` setting gives a
   sheet a shell of that thickness instead). The notes say what was done, and why each closure tried before
   it was turned down.

Caps never reuse an edge, so a capped part is closed by construction (what a convex completion leaves open
is capped the same way), and ``watertight`` means closed, consistently oriented and of positive volume. A
cap does not look at the other parts: a crooked hole whose least-area surface passes through a neighbour
makes the two overlap where no check above catches it.
With ``keep_visible`` off, every part is rebuilt as a voxel solid instead (``geometry.occupancy``): closed,
but remeshed. Parts are closed on up to ``WORKERS`` processes (Linux) or threads at once, each on its own.
Results are deterministic: the surface samples that measure walls use a fixed seed.
"""

from __future__ import annotations

import itertools
import os
import pickle
import select
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ...core.errors import EngineError, InputError
from ..geometry.capping import Holes, close_holes, find_holes
from ..geometry.convex import convex_completion
from ..geometry.inside import SurfaceGrid
from ..geometry.occupancy import CellGrid, face_samples, voxel_solid
from ..geometry.patches import split_manifold
from ..geometry.shell import Walls, solidify
from ..geometry.sphere import sphere_completion
from ..geometry.topology import face_components, is_closed, is_watertight, position_index, signed_volume, weld
from ...core.meshmath import TOL, face_areas
from ...core.sampling import sample_surface
from ...core.partjob import CompletedPart, PartJob, majority_material
from ...core.progress import Progress
from .base import CompletionEngine, Setting


def _workers() -> int:
    """Parts closed at once: OMP_NUM_THREADS where it is set (Ray sets it to a task's CPUs), else one per
    core this process may use, up to 4."""
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    if chosen.isdigit():
        return max(1, int(chosen))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(4, cores)


WORKERS = _workers()
OVERLAP = 0.05  # a hull completion may put at most this share more of a part inside its neighbours than caps
OVERLAP_RESOLUTION = 64  # cells along the object's longest side for that check and the enclosure check
MAX_ADDED = 1.5  # caps (or a partial hull) may add at most this much area per unit of visible area
ENCLOSED = 0.1  # a closure may enclose other parts' visible surface of at most this share of the part's own
THIN = 0.1  # a part's walls are thin when their thickness is at most this share of its size (box diagonal)
TWO_SIDED = 0.4  # ... and at least this share of its surface has the back of its wall within four times that
SHEET = 0.05  # a surface is one sheet when the back of its wall is found for at most this share of it ...
SHEET_CAPS = 0.5  # ... and then its caps or partial hull may add at most this much area per unit of visible area
LID = 0.1  # a closure of a thin part is a lid when more than this share of what it adds lies beyond twice its thickness
OUTSIDE = 0.25  # on a closed object, the share of what a hull or sphere adds beyond its caps that may lie outside it
LID_POINTS = 5_000  # ... measured at this many points spread over what it adds (the share's standard error <= 0.007)


def _share(coverage: np.ndarray) -> float:
    """The share of a part's inside cells (their coverage by the other parts) that other parts cover."""
    return float((coverage > 0).mean()) if len(coverage) else 0.0


@dataclass
class _Candidate:
    """One way of closing a part: its surface (the visible faces first) and what was done, for the notes."""

    kind: str  # "closed" (already), "sphere", "hull", "hull along", "caps", "shell" or "visible"
    vertices: np.ndarray
    faces: np.ndarray
    note: str
    _inside: tuple = field(default=(None, None), repr=False)  # (grid, its cells inside the closure)

    def inside(self, grid: CellGrid) -> np.ndarray:
        """The cells of ``grid`` strictly inside the closure (``CellGrid.inside``), found once per grid: the
        checks and the overlap step both ask."""
        if self._inside[0] != grid:  # a grid equal to it, when the candidate came back from a process
            self._inside = grid, grid.inside(self.vertices, self.faces)
        return self._inside[1]


@dataclass
class _Part:
    """One part on its way through the engine: its manifold patch and holes, then what closes it."""

    label: int
    face_index: np.ndarray  # the input faces of its segment
    vertices: np.ndarray  # the patch (``split_manifold``): visible faces, vertices copied where they met badly
    faces: np.ndarray
    holes: Holes
    seconds: float
    chosen: _Candidate | None = None
    fallback: _Candidate | None = None  # what replaces a hull completion that overlaps its neighbours
    notes: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # the closures turned down, in the order tried, and why
    before: int = 0  # how many of them were tried before the chosen one
    sheet: bool = False  # a single sheet: the back of its wall is seen nowhere

    def explained(self) -> list[str]:
        """What was done, then why each closure tried before it was turned down, then anything else."""
        return [self.chosen.note] + self.rejected[:self.before] + self.notes

    @property
    def closed(self) -> tuple[np.ndarray, np.ndarray]:
        """The surface as it stands: the chosen closure, or the caps while none is chosen."""
        if self.chosen is not None:
            return self.chosen.vertices, self.chosen.faces
        return close_holes(self.vertices, self.faces, self.holes)


class _Checks:
    """The tests every closure must pass before it is returned (``fault``), against the whole object:
    its visible surface sampled on a coarse grid, by part."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, closed: bool):
        used = vertices[np.unique(faces)]
        self.grid = CellGrid(used.min(0), used.max(0), OVERLAP_RESOLUTION)
        # A closed object (a one-piece mesh, a scan) is known to be empty outside its surface: that was seen.
        self.solid = ndimage.binary_fill_holes(self.grid.touched(vertices, faces)).reshape(-1) if closed else None
        points, owner = face_samples(vertices, faces, self.grid.size / 2)
        area = face_areas(vertices, faces)
        self.cells = np.ravel_multi_index(self.grid.index(points).T, self.grid.shape)
        self.weight = (area / np.maximum(np.bincount(owner, minlength=len(faces)), 1))[owner]
        self.label = labels[owner]

    def fault(self, part: _Part, candidate: _Candidate, visible_area: float, pieces: int) -> str | None:
        """Why the closure may not be returned, or None: it must be closed with a positive volume, have no
        more bodies than the visible surface has pieces and none without visible faces, add at most
        ``MAX_ADDED`` x the visible area (a whole hull, a sphere and a shell are exempt: their shape
        justifies them), and enclose at most ``ENCLOSED`` x that area of other parts' visible surface.
        ``visible_area`` and ``pieces`` (the visible surface's connected pieces) are the part's."""
        vertices, faces = candidate.vertices, candidate.faces
        if not is_closed(faces):
            return "it would not be closed"
        volume = signed_volume(vertices, faces)
        if volume <= 0:
            return f"its volume would not be positive ({volume:.3g}: inside out, or flat)"
        body = _bodies(vertices, faces)
        seen = np.unique(body[: len(part.faces)])
        if len(seen) < body.max() + 1:
            return f"{body.max() + 1 - len(seen)} of its bodies would hold no visible face"
        if len(seen) > pieces:
            return f"it would have {len(seen)} bodies for {pieces} visible piece(s)"
        new = faces[len(part.faces):]
        added = float(face_areas(vertices, new).sum()) / max(visible_area, TOL.tiny)
        if candidate.kind in ("caps", "hull along") and added > MAX_ADDED:
            return f"it would add {added:.1f} x the visible area"
        if candidate.kind in ("caps", "hull along") and part.sheet and added > SHEET_CAPS:
            return (f"the part is a single sheet (the back of it is seen nowhere) and it would add "
                    f"{added:.1f} x its area")
        other = (self.label != part.label) & np.isin(self.cells, candidate.inside(self.grid))
        enclosed = float(self.weight[other].sum()) / max(visible_area, TOL.tiny)
        if enclosed > ENCLOSED:
            return f"it would enclose other parts' visible surface ({enclosed:.0%} of its own area)"
        return None

    def outside(self, candidate: _Candidate, capped: _Candidate) -> str | None:
        """On a closed object, why a hull or sphere may not be returned, or None: over ``OUTSIDE`` of the cells
        it encloses beyond its caps lie outside the object's surface (open input: never)."""
        if self.solid is None or candidate.kind not in ("sphere", "hull", "hull along"):
            return None
        added = np.setdiff1d(candidate.inside(self.grid), capped.inside(self.grid), assume_unique=True)
        share = float((~self.solid[added]).mean()) if len(added) else 0.0
        if share > OUTSIDE:
            return f"{share:.0%} of what it encloses beyond its caps would lie outside the object, which is closed"
        return None


def _away(walls: Walls, candidate: _Candidate, visible_faces: int, thickness: float) -> float:
    """The share of what ``candidate`` adds to the visible faces that lies farther than twice ``thickness``
    from them (``walls``: the visible surface's)."""
    added = candidate.faces[visible_faces:]
    if not face_areas(candidate.vertices, added).sum() > 0:
        return 0.0
    points, _ = sample_surface(candidate.vertices, added, LID_POINTS, np.random.default_rng(0))
    return walls.away(points, 2 * thickness)


FORK = sys.platform.startswith("linux")  # parts go to forked processes (elsewhere fork is unsafe or absent: threads)


def _forking(labels) -> bool:
    """Whether ``_each`` closes these parts in forked processes."""
    return FORK and min(WORKERS, len(labels)) > 1


def _in_forks(work, order: list, count: int, done) -> None:
    """``work(label)`` for each label of ``order``, each in a process forked for it, at most ``count`` at once;
    ``done(label, result)`` in this process as each ends (in the order they end).

    The process runs only ``work`` and sends back ``(ok, result or exception)`` pickled through a pipe, then
    leaves with ``os._exit``: it never touches the streams, locks or handlers it inherited, which other
    threads of this process (a worker's stdin reader, say) may have held when it was forked. A process that
    dies without an answer (the out-of-memory killer) is an ``EngineError``; when ``done`` or anything else
    raises, the processes still running are killed at once, so a cancel does not wait for them."""
    running = {}  # pipe's read end -> (pid, label, chunks read so far)
    waiting = iter(order)

    def fork(label) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:  # the forked process
            try:
                os.close(read)
                try:
                    data = pickle.dumps((True, work(label)), pickle.HIGHEST_PROTOCOL)
                except BaseException as exc:  # noqa: BLE001 - every failure goes back to be raised there
                    try:
                        data = pickle.dumps((False, exc), pickle.HIGHEST_PROTOCOL)
                    except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
                        data = pickle.dumps((False, EngineError(f"{type(exc).__name__}: {exc}")))
                view = memoryview(data)
                while view:
                    view = view[os.write(write, view):]
            finally:
                os._exit(0)
        os.close(write)
        running[read] = (pid, label, [])

    try:
        for label in itertools.islice(waiting, count):
            fork(label)
        while running:
            for read in select.select(list(running), [], [])[0]:
                pid, label, chunks = running[read]
                chunk = os.read(read, 1 << 20)
                if chunk:
                    chunks.append(chunk)
                    continue
                del running[read]
                os.close(read)
                _, status = os.waitpid(pid, 0)
                if status != 0 or not chunks:
                    raise EngineError("a process closing the parts stopped abruptly (killed: on Linux most "
                                      "often by the out-of-memory killer)", "free memory and run again; with "
                                      "OMP_NUM_THREADS=1 the parts are closed one at a time in the calling process")
                ok, value = pickle.loads(b"".join(chunks))
                if not ok:
                    raise value
                done(label, value)
                following = next(waiting, None)
                if following is not None:
                    fork(following)
    finally:
        for read, (pid, _, _) in running.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read)


def _each(work, labels, sizes: dict, progress: Progress, start: float, end: float, doing: str, job: PartJob) -> list:
    """``work(label)`` for every label, on up to ``WORKERS`` processes forked from this one where ``FORK``
    (``_in_forks``), else threads. Most of the work is Python between small numpy arrays, which holds the
    interpreter lock: on two cores threads were 10-20% faster than one, processes another 10-25%
    (docs/performance.md). The largest parts (``sizes``: faces per label) are started first, and a part only
    when one ends. Results in label order; progress is reported as each ends. A cancel or an error stops
    the rest: forked processes at once, threads once their part ends."""
    progress.check()
    labels = list(labels)
    order = sorted(labels, key=lambda label: -sizes[label])  # stable: equal sizes stay in label order
    count = max(1, min(WORKERS, len(labels)))
    results = {}

    def done(label, result) -> None:
        results[label] = result
        progress(start + (end - start) * len(results) / len(labels),
                 f"{doing} {job.part_name(label)} ({len(results)}/{len(labels)})")

    if _forking(labels):
        _in_forks(work, order, count, done)
        return [results[label] for label in labels]

    def run(label):
        progress.check()
        return label, work(label)

    pool = ThreadPoolExecutor(max_workers=count)  # takes the parts in the order given, each as a thread frees
    try:
        for future in as_completed([pool.submit(run, label) for label in order]):
            done(*future.result())
        return [results[label] for label in labels]
    finally:
        pool.shutdown(cancel_futures=True)


def _bodies(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per face, its body: connected pieces of surface, corners at one position counting as one vertex."""
    return face_components(position_index(vertices)[faces], len(vertices))


class GeometricCompletion(CompletionEngine):
    name = "geometric"
    description = "CPU completion: keeps each visible segment and closes its hidden holes (no weights)"
    settings_spec = (
        Setting("keep_visible", bool, True,
                "keep each segment's own faces (topology, UVs) and add only what is hidden; "
                "off: rebuild every part as a closed voxel solid"),
        Setting("convex", float, 0.03,
                "complete a part whose visible surface lies on its convex hull (a wheel, an axle, a knob) to "
                "that hull, and close other parts along their hull where the object is solid behind it: how "
                "far the surface may dip below the hull, as a share of its width (0 = never, and no part is "
                "completed to a whole sphere either; every hole gets its own cap)", minimum=0.0, maximum=0.5),
        Setting("thickness", float, 0.0,
                "wall thickness (object units) given to a part that is a single sheet with no thickness of "
                "its own, which caps cannot close (0 = it stays a sheet)", minimum=0.0),
        Setting("resolution", int, 128,
                "voxels along a part's longest side when it is rebuilt as a voxel solid (keep_visible off)",
                minimum=8, maximum=512),
    )

    def complete(self, job: PartJob, labels, progress: Progress) -> list[CompletedPart]:
        mesh = job.mesh
        usable = mesh.check().usable
        labels = list(labels)
        if not self.settings["keep_visible"]:
            return [self._rebuilt(job, label, usable, i, len(labels), progress) for i, label in enumerate(labels)]
        progress(0.0, "joining seams")
        welded = weld(mesh.vertices, mesh.faces, tolerance=0)  # bit-identical seams only
        # Every labelled part is built: the overlap check weighs a part's hull against all its neighbours.
        own = {label: np.flatnonzero((job.face_labels == label) & usable)
               for label in sorted(set(job.labels) | set(labels))}
        for label in labels:
            if len(own[label]) == 0:
                raise InputError(f"part {job.part_name(label)}'s faces are all degenerate (zero area or "
                                 "non-finite)", "fix the geometry (Mesh > Clean Up) or leave that part out")

        def patch(label: int) -> _Part:
            t0 = time.perf_counter()
            faces, vertex_of = split_manifold(welded[own[label]])
            vertices = mesh.vertices[vertex_of]
            return _Part(label, own[label], vertices, faces, find_holes(vertices, faces), time.perf_counter() - t0)

        context = [label for label, face_index in own.items() if len(face_index)]
        sizes = {label: len(face_index) for label, face_index in own.items()}
        parts = {part.label: part for part in _each(patch, context, sizes, progress, 0.0, 0.6, "closing", job)}
        progress(0.6, "checking closures against the object")
        checks = _Checks(mesh.vertices, mesh.faces[usable], job.face_labels[usable], is_closed(welded[usable]))
        # The whole object's surface, for telling hidden space from empty space (built on first use).
        solid = (SurfaceGrid(mesh.vertices, mesh.faces[usable], job.face_labels[usable])
                 if self.settings["convex"] > 0 else None)

        if solid is not None and _forking(labels):
            solid.build()  # once here, not once in every forked process

        def choose(label: int) -> _Part:
            t0 = time.perf_counter()
            part = parts[label]
            self._choose(part, checks, solid)
            part.seconds += time.perf_counter() - t0
            return part

        parts.update((part.label, part) for part in _each(choose, labels, sizes, progress, 0.6, 0.9,
                                                            "choosing the closure of", job))
        overlap_seconds = 0.0
        if any(part.chosen is not None and part.chosen.kind == "hull along" for part in parts.values()):
            progress(0.9, "checking overlaps")
            t0 = time.perf_counter()
            self._keep_apart(parts, checks.grid)
            overlap_seconds = time.perf_counter() - t0
        out = []
        for label in labels:
            part = parts[label]
            vertices, faces = part.closed
            source = np.concatenate([part.face_index, np.full(len(faces) - len(part.face_index), -1)]).astype(np.int64)
            split = len(part.vertices) - len(np.unique(welded[part.face_index]))
            notes = part.explained()
            if split:
                notes.append(f"{split} vertices were given a second copy where faces met non-manifold or "
                             "with opposite windings, so the segment could be closed")
            result = self._part(vertices, faces, source, len(part.face_index), notes)
            result.label, result.name = label, job.part_name(label)
            result.material_index = majority_material(mesh, part.face_index)
            result.timings = {"complete": part.seconds, "overlap": overlap_seconds}
            out.append(result)
        progress(1.0, "done")
        return out

    def _choose(self, part: _Part, checks: _Checks, solid: SurfaceGrid | None) -> None:
        """Try the part's closures in order (its convex hull, its caps; for a part with thin walls only those
        that stay near them, and a shell when its caps do not; for any other part then a shell of the
        ``thickness`` setting) and keep the first that passes ``_Checks.fault``; the visible faces alone, left
        open, when none does. Every closure turned down is named in the notes with the reason."""
        visible_area = float(face_areas(part.vertices, part.faces).sum())
        kept = f"kept {len(part.faces)} visible faces"
        candidates = []
        if len(part.holes) == 0:
            part.chosen = _Candidate("closed", part.vertices, part.faces, f"{kept}; the segment is closed already")
            return
        bands = f" ({part.holes.bands} pair(s) of rims joined by a band)" if part.holes.bands else ""
        capped = _Candidate("caps", *close_holes(part.vertices, part.faces, part.holes),
                            f"{kept}, closed {len(part.holes)} hidden hole(s) with caps{bands}")
        walls = Walls(part.vertices, part.faces)
        thickness = walls.thickness()
        thin = 0 < thickness <= THIN * walls.size and walls.two_sided(thickness) >= TWO_SIDED
        part.sheet = float(np.mean(np.isfinite(walls.depth))) <= SHEET
        if self.settings["convex"] > 0:
            sphere = sphere_completion(part.vertices, part.faces, part.holes, solid)
            if sphere is not None:
                candidates.append(_Candidate("sphere", sphere[0], sphere[1], f"{kept}; part of a sphere (radius "
                                             f"{sphere[2]:.3g}) seen past its widest circle, completed to the "
                                             "whole sphere"))
            hull = convex_completion(part.vertices, part.faces, part.holes, self.settings["convex"], solid)
            if hull is not None and hull[2]:
                candidates.append(_Candidate("hull", hull[0], hull[1], f"{kept}; convex as far as it is seen, "
                                             "completed to its convex hull"))
            elif hull is not None and signed_volume(capped.vertices, capped.faces) <= 0:
                # Caps inside out: the visible surface is seen from the side that a closure over its rims
                # would fill (a bent sheet seen from outside), so a hull along it would make it a box.
                part.rejected.append("not closed by its hull along: its caps are inside out, so what is seen "
                                     "is a sheet from the side a closure would fill, not the outside of a solid")
            elif hull is not None:
                candidates.append(_Candidate("hull along", hull[0], hull[1], f"{capped.note}, along its convex "
                                             "hull where the object is solid behind it"))
        candidates.append(capped)
        if thin:
            # A thin wall's hidden surface continues its walls: a closure that strays from them is a lid over
            # the space they bend around. Without caps, it is completed as a shell.
            for candidate in list(candidates):
                away = _away(walls, candidate, len(part.faces), thickness)
                if away > LID:
                    candidates.remove(candidate)
                    part.rejected.append(f"not closed by its {candidate.kind}: a thin wall ({thickness:.3g} "
                                         f"thick), and {away:.0%} of what it adds would lie farther than twice "
                                         "that from it (a lid)")
            if capped not in candidates:
                candidates.append(_Candidate("shell", *solidify(part.vertices, part.faces, thickness, walls),
                                             f"{kept}; a thin wall, completed as a shell {thickness:.3g} thick "
                                             "(its rims' thickness), not closed over"))
        elif self.settings["thickness"] > 0:
            candidates.append(_Candidate("shell", *solidify(part.vertices, part.faces, self.settings["thickness"]),
                                         f"{kept}; a sheet, given the thickness setting "
                                         f"({self.settings['thickness']:.3g}) as a shell"))
        pieces = len(np.unique(_bodies(part.vertices, part.faces)))
        for candidate in candidates:
            fault = checks.fault(part, candidate, visible_area, pieces) or checks.outside(candidate, capped)
            if fault is not None:
                part.rejected.append(f"not closed by its {candidate.kind}: {fault}")
            elif part.chosen is None:
                part.chosen, part.before = candidate, len(part.rejected)
                if candidate.kind != "hull along":
                    break
            else:
                part.fallback = candidate
                break
        visible = _Candidate("visible", part.vertices, part.faces, f"{kept}, left open: no closure passed the "
                             "checks")
        if part.chosen is None:
            part.chosen, part.before = visible, len(part.rejected)
        elif part.fallback is None:
            part.fallback = visible

    def _keep_apart(self, parts: dict[int, _Part], grid: CellGrid) -> None:
        """Replace each part closed along its hull (in label order) whose hull puts more than ``OVERLAP``
        more of its inside into the other parts, as they stand, than its fallback closure would: the hidden
        space behind it belongs to a neighbour (a drawer's tray inside its carcass). Parts not asked for
        count as capped."""
        insides = {label: part.chosen.inside(grid) if part.chosen is not None else grid.inside(*part.closed)
                   for label, part in parts.items()}
        coverage = np.bincount(np.concatenate(list(insides.values())), minlength=int(np.prod(grid.shape)))
        for label in sorted(parts):
            part = parts[label]
            if part.chosen is None or part.chosen.kind != "hull along":
                continue
            mine = insides[label]
            coverage[mine] -= 1  # the other parts' coverage alone
            fallback = part.fallback
            fallback_inside = fallback.inside(grid) if fallback.kind != "visible" else mine[:0]
            share = _share(coverage[mine]) - _share(coverage[fallback_inside])
            if share > OVERLAP:
                part.chosen, part.before = fallback, len(part.rejected)
                part.notes.append(f"not closed along its convex hull: that would put {share:.0%} more of it "
                                  "inside other parts")
                mine = insides[label] = fallback_inside
            coverage[mine] += 1

    def _rebuilt(self, job, label, usable, i, count, progress) -> CompletedPart:
        progress(i / max(count, 1), f"{job.part_name(label)} ({i + 1}/{count})")
        t0 = time.perf_counter()
        face_index = np.flatnonzero((job.face_labels == label) & usable)
        if len(face_index) == 0:
            raise InputError(f"part {job.part_name(label)}'s faces are all degenerate (zero area or non-finite)",
                             "fix the geometry (Mesh > Clean Up) or leave that part out")
        resolution = self.settings["resolution"]
        vertices, faces = voxel_solid(job.mesh.vertices, job.mesh.faces[face_index], resolution)
        part = self._part(vertices, faces, np.full(len(faces), -1, np.int64), len(face_index),
                          [f"rebuilt as a voxel solid at resolution {resolution}"])
        part.label, part.name = label, job.part_name(label)
        part.material_index = majority_material(job.mesh, face_index)
        part.timings = {"complete": time.perf_counter() - t0}
        return part

    def _part(self, vertices, faces, face_source, source_faces, notes) -> CompletedPart:
        return CompletedPart(label=-1, name="", vertices=vertices, faces=faces, face_source=face_source,
                             source_faces=int(source_faces), material_index=-1, engine=self.name,
                             settings=dict(self.settings), watertight=is_watertight(vertices, faces),
                             notes=notes)
