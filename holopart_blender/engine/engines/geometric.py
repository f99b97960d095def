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
   stitched shut along itself.
3. A part whose visible surface lies on its own convex hull (``convex``: within that share of the hull's
   width; ``geometry.convex``) is completed to the hull instead, so an axle seen at both ends of its wheel
   comes back as one rod rather than two stubs. Where what is seen of it lies on both sides of another
   part, the rod runs through that part, as the benchmark's ground truth does there (its generated car's
   axles lie 67-68% inside their wheels, ours too). Where all its rims lie in one plane, the hull adds
   nothing to their flat caps. Any other part is closed along its hull too, piece by piece, where the
   whole object is solid behind the hull (rays into it meet the visible surface from behind,
   ``geometry.inside``): a plank's flat underside where a wheel runs into it, not a cap following the
   wheel's curve; an open gap between two prongs stays open. Such a part keeps its caps instead when its
   hull would put over ``OVERLAP`` (5%) more of its inside into the other parts than the caps do (checked
   on a coarse grid): the space behind it belongs to a neighbour, as a drawer's tray's does to its carcass.

The result is closed by construction (each rim edge gets exactly one new face, and caps never reuse an
edge; what a convex completion leaves open is capped the same way). A cap does not look at the other
parts: a crooked hole whose least-area surface passes through a neighbour makes the two overlap (on the
benchmark, the drawer's carcass, whose one hole spans both drawer slots and the walls behind the drawers,
overlaps both drawers).
With ``keep_visible`` off, every part is rebuilt as a voxel solid instead (``geometry.occupancy``): closed,
but remeshed. Each part's ``notes`` say what was done. Results are deterministic: nothing is random.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...core.errors import InputError
from ..geometry.capping import Holes, close_holes, find_holes
from ..geometry.convex import convex_completion
from ..geometry.inside import SurfaceGrid
from ..geometry.occupancy import CellGrid, voxel_solid
from ..geometry.patches import split_manifold
from ..geometry.topology import is_closed, weld
from ...core.partjob import CompletedPart, PartJob, majority_material
from ...core.progress import Progress
from .base import CompletionEngine, Setting


OVERLAP = 0.05  # a hull completion may put at most this share more of a part inside its neighbours than caps
OVERLAP_RESOLUTION = 64  # cells along the object's longest side for that check


def _share(coverage: np.ndarray) -> float:
    """The share of a part's inside cells (their coverage by the other parts) that other parts cover."""
    return float((coverage > 0).mean()) if len(coverage) else 0.0


@dataclass
class _Part:
    """One part on its way through the engine: its manifold patch and holes, then what closes it."""

    label: int
    face_index: np.ndarray  # the input faces of its segment
    vertices: np.ndarray  # the patch (``split_manifold``): visible faces, vertices copied where they met badly
    faces: np.ndarray
    holes: Holes
    seconds: float
    closed: tuple[np.ndarray, np.ndarray] | None = None  # (vertices, faces) once closed
    notes: list[str] = field(default_factory=list)
    along_hull: bool = False  # closed along its hull where the object is solid (subject to the overlap check)

    def capped(self) -> tuple[np.ndarray, np.ndarray]:
        return close_holes(self.vertices, self.faces, self.holes)

    def capped_note(self) -> str:
        return f"kept {len(self.faces)} visible faces, closed {len(self.holes)} hidden hole(s)"


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
                "far the surface may dip below the hull, as a share of its width (0 = never; every hole gets "
                "its own cap)", minimum=0.0, maximum=0.5),
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
        context = sorted(set(job.labels) | set(labels))
        parts: dict[int, _Part] = {}
        for i, label in enumerate(context):
            progress(0.8 * i / max(len(context), 1), f"closing {job.part_name(label)} ({i + 1}/{len(context)})")
            t0 = time.perf_counter()
            face_index = np.flatnonzero((job.face_labels == label) & usable)
            if len(face_index) == 0:
                if label in labels:
                    raise InputError(f"part {job.part_name(label)}'s faces are all degenerate (zero area or "
                                     "non-finite)", "fix the geometry (Mesh > Clean Up) or leave that part out")
                continue
            faces, vertex_of = split_manifold(welded[face_index])
            vertices = mesh.vertices[vertex_of]
            parts[label] = _Part(label, face_index, vertices, faces, find_holes(vertices, faces),
                                 time.perf_counter() - t0)
        solid = None  # the whole object's surface, for telling hidden space from empty space (built on first use)
        for label in labels:
            t0 = time.perf_counter()
            part = parts[label]
            hull = None
            if len(part.holes) and self.settings["convex"] > 0:
                if solid is None:
                    progress(0.8, "closing parts along their convex hulls")
                    solid = SurfaceGrid(mesh.vertices, mesh.faces[usable], job.face_labels[usable])
                hull = convex_completion(part.vertices, part.faces, part.holes, self.settings["convex"], solid)
            if hull is None:
                part.closed, part.notes = part.capped(), [part.capped_note()]
            elif hull[2]:
                part.closed = hull[:2]
                part.notes = [f"kept {len(part.faces)} visible faces; convex as far as it is seen, completed to its "
                              "convex hull"]
            else:
                part.closed, part.along_hull = hull[:2], True
                part.notes = [f"{part.capped_note()}, along its convex hull where the object is solid behind it"]
            part.seconds += time.perf_counter() - t0
        overlap_seconds = 0.0
        if any(part.along_hull for part in parts.values()):
            progress(0.9, "checking overlaps")
            t0 = time.perf_counter()
            self._keep_apart(parts, mesh.vertices[np.unique(mesh.faces[usable])])
            overlap_seconds = time.perf_counter() - t0
        out = []
        for label in labels:
            part = parts[label]
            vertices, faces = part.closed
            source = np.concatenate([part.face_index, np.full(len(faces) - len(part.face_index), -1)]).astype(np.int64)
            split = len(part.vertices) - len(np.unique(welded[part.face_index]))
            if split:
                part.notes.append(f"{split} vertices were given a second copy where faces met non-manifold or "
                                  "with opposite windings, so the segment could be closed")
            result = self._part(vertices, faces, source, len(part.face_index), part.notes)
            result.label, result.name = label, job.part_name(label)
            result.material_index = majority_material(mesh, part.face_index)
            result.timings = {"complete": part.seconds, "overlap": overlap_seconds}
            out.append(result)
        progress(1.0, "done")
        return out

    def _keep_apart(self, parts: dict[int, _Part], points: np.ndarray) -> None:
        """Cap instead each part closed along its hull (in label order) whose hull puts more than ``OVERLAP``
        more of its inside into the other parts, as they stand, than its caps would: the hidden space behind
        it belongs to a neighbour (a drawer's tray inside its carcass). Parts not asked for count as capped."""
        grid = CellGrid(points.min(0), points.max(0), OVERLAP_RESOLUTION)
        insides = {label: grid.inside(*(part.closed if part.closed is not None else part.capped()))
                   for label, part in parts.items()}
        coverage = np.bincount(np.concatenate(list(insides.values())), minlength=int(np.prod(grid.shape)))
        for label in sorted(parts):
            part = parts[label]
            if not part.along_hull:
                continue
            mine = insides[label]
            coverage[mine] -= 1  # the other parts' coverage alone
            capped = part.capped()
            capped_inside = grid.inside(*capped)
            share = _share(coverage[mine]) - _share(coverage[capped_inside])
            if share > OVERLAP:
                part.closed, part.along_hull = capped, False
                part.notes = [part.capped_note(), f"not closed along its convex hull: that would put {share:.0%} "
                              "more of it inside other parts"]
                mine = insides[label] = capped_inside
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
                             settings=dict(self.settings), watertight=is_closed(faces), notes=notes)
