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
4. Optionally (``insertion`` > 0), where a part plugs into another (``geometry.contacts``: the plug's
   faces run into the contact as side walls, the receiver's lie flat around it), the plug continues
   straight on inside as a prism of its own cross-section, ``insertion`` x the contact's radius deep (never
   through the receiver), and the receiver gets the matching pocket, so the parts still do not overlap.
   A part cut in two (a frame's halves) keeps its flat cut. Off by default: on the benchmark the pockets
   cost the receivers more than the plugs gain (its generated objects overlap their parts instead).

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

import numpy as np

from ...core.errors import InputError
from ..geometry.capping import close_holes, find_holes
from ..geometry.contacts import Patch, plan_insertions
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


def _capped_note(patch: Patch) -> str:
    return f"kept {len(patch.faces)} visible faces, closed {len(patch.holes)} hidden hole(s)"


def _share(coverage: np.ndarray) -> float:
    """The share of a part's inside cells (their coverage by the other parts) that other parts cover."""
    return float((coverage > 0).mean()) if len(coverage) else 0.0


class GeometricCompletion(CompletionEngine):
    name = "geometric"
    description = ("CPU completion: keeps each visible segment and closes its hidden holes, optionally "
                   "continuing parts that plug into others (no weights)")
    settings_spec = (
        Setting("keep_visible", bool, True,
                "keep each segment's own faces (topology, UVs) and add only what is hidden; "
                "off: rebuild every part as a closed voxel solid"),
        Setting("insertion", float, 0.0,
                "how deep a part that plugs into another (a leg into a seat, a bulb into its socket) continues "
                "inside it, as a multiple of the contact's radius; the other part gets the matching pocket, so "
                "they never overlap (0 = flat cuts at every contact)", minimum=0.0, maximum=4.0),
        Setting("convex", float, 0.03,
                "complete a part whose visible surface lies on its convex hull (a wheel, an axle, a knob) to "
                "that hull, and close other parts along their hull where the object is solid behind it: how "
                "far the surface may dip below the hull, as a share of its width (0 = never; every hole gets "
                "its own cap)", minimum=0.0, maximum=0.5),
        Setting("bulge", float, 0.0,
                "close each hole with a dome whose centre is this fraction of the rim's radius above it "
                "(0 = the flattest surface spanning the rim, right for parts that meet flush; "
                "0.5 = domes for rounded parts)", minimum=0.0, maximum=2.0),
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
        # Every labelled part takes part in finding contacts (a part asked for may plug into one that is not).
        context = sorted(set(job.labels) | set(labels))
        patches, indices, seconds = {}, {}, {}
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
            patches[label] = Patch(label, vertices, faces, find_holes(vertices, faces, self.settings["bulge"]))
            indices[label] = face_index
            seconds[label] = time.perf_counter() - t0
        progress(0.8, "finding contacts")
        t0 = time.perf_counter()
        plan = plan_insertions(list(patches.values()), self.settings["insertion"])
        contact_seconds = time.perf_counter() - t0
        offsets = {label: {} for label in patches}
        plugs = {label: [] for label in patches}
        pockets = {label: [] for label in patches}
        for item in plan:
            offsets[item.label][item.hole] = item.offset
            offsets[item.host][item.host_hole] = item.offset
            plugs[item.label].append(item)
            pockets[item.host].append(item)
        solid = None  # the whole object's surface, for telling hidden space from empty space (built on first use)
        closed = {}  # label: (vertices, faces, notes, closed along its hull where the object is solid)
        for label in labels:
            t0 = time.perf_counter()
            patch = patches[label]
            hull = None
            if not plugs[label] and not pockets[label] and len(patch.holes) and self.settings["convex"] > 0:
                if solid is None:
                    progress(0.8, "closing parts along their convex hulls")
                    solid = SurfaceGrid(mesh.vertices, mesh.faces[usable], job.face_labels[usable])
                hull = convex_completion(patch.vertices, patch.faces, patch.holes, self.settings["convex"], solid)
            if hull is None:
                closed[label] = (*self._capped(patch, offsets[label]), [_capped_note(patch)], False)
            elif hull[2]:
                closed[label] = (*hull[:2], [f"kept {len(patch.faces)} visible faces; convex as far as it is seen, "
                                             "completed to its convex hull"], False)
            else:
                closed[label] = (*hull[:2], [f"{_capped_note(patch)}, along its convex hull where the object is "
                                             "solid behind it"], True)
            seconds[label] += time.perf_counter() - t0
        if any(item[3] for item in closed.values()):
            progress(0.9, "checking overlaps")
            t0 = time.perf_counter()
            self._keep_apart(closed, patches, offsets, mesh.vertices[np.unique(mesh.faces[usable])])
            contact_seconds += time.perf_counter() - t0
        out = []
        for label in labels:
            vertices, faces, notes, _ = closed[label]
            face_index, patch = indices[label], patches[label]
            source = np.concatenate([face_index, np.full(len(faces) - len(face_index), -1)]).astype(np.int64)
            split = len(patch.vertices) - len(np.unique(welded[face_index]))
            if split:
                notes.append(f"{split} vertices were given a second copy where faces met non-manifold or with "
                             "opposite windings, so the segment could be closed")
            for item in plugs[label]:
                notes.append(f"continues {item.depth:.4g} into {job.part_name(item.host)}")
            for item in pockets[label]:
                notes.append(f"pocket {item.depth:.4g} deep for {job.part_name(item.label)}")
            part = self._part(vertices, faces, source, len(face_index), notes)
            part.label, part.name = label, job.part_name(label)
            part.material_index = majority_material(mesh, face_index)
            part.timings = {"complete": seconds[label], "contacts": contact_seconds}
            out.append(part)
        progress(1.0, "done")
        return out

    @staticmethod
    def _capped(patch: Patch, offsets: dict) -> tuple[np.ndarray, np.ndarray]:
        return close_holes(patch.vertices, patch.faces, patch.holes, offsets)

    def _keep_apart(self, closed: dict, patches: dict, offsets: dict, points: np.ndarray) -> None:
        """Cap instead each part closed along its hull (``closed[label][3]``, in label order) whose hull puts
        more than ``OVERLAP`` more of its inside into the other parts, as they stand, than its caps would:
        the hidden space behind it belongs to a neighbour (a drawer's tray inside its carcass)."""
        grid = CellGrid(points.min(0), points.max(0), OVERLAP_RESOLUTION)
        insides = {label: grid.inside(*(closed[label][:2] if label in closed else self._capped(patch, offsets[label])))
                   for label, patch in patches.items()}  # parts not asked for count as capped
        coverage = np.bincount(np.concatenate(list(insides.values())), minlength=int(np.prod(grid.shape)))
        for label in sorted(closed):
            if not closed[label][3]:
                continue
            mine = insides[label]
            coverage[mine] -= 1  # the other parts' coverage alone
            capped = self._capped(patches[label], offsets[label])
            capped_inside = grid.inside(*capped)
            share = _share(coverage[mine]) - _share(coverage[capped_inside])
            if share > OVERLAP:
                closed[label] = (*capped, [_capped_note(patches[label]),
                                           f"not closed along its convex hull: that would put {share:.0%} more "
                                           "of it inside other parts"], False)
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
