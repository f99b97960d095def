"""The ``geometric`` completion engine: closed parts on any CPU, with no weights.

Each visible segment keeps its own faces, vertices and order (so the artist's topology and UVs survive and
``face_source`` maps them back), and every hole where the part is hidden (a leg's end inside the table top,
the patch of the top under each leg) is closed by a cap spanning the hole's rim (``geometry.capping``). A
planar rim gives a flat cut, which is what a contact between two parts is; coincident contacts give
coincident caps, so neighbouring parts touch without overlapping. Only added faces have ``face_source = -1``.

A segment whose own faces cannot be closed (non-manifold edges, flipped faces, a triangle soup) and every
segment when ``keep_visible`` is off is rebuilt as a voxel solid instead (``geometry.occupancy``): closed,
but remeshed. Each part's ``notes`` say which path it took. Results are deterministic: nothing is random.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..geometry.capping import cap_holes
from ..geometry.occupancy import voxel_solid
from ..geometry.topology import is_closed, weld
from ..partjob import CompletedPart, PartJob, majority_material
from ..progress import Progress
from .base import CompletionEngine, Setting


class GeometricCompletion(CompletionEngine):
    name = "geometric"
    description = "CPU completion: keeps each visible segment and closes its hidden holes (no weights)"
    settings_spec = (
        Setting("keep_visible", bool, True,
                "keep each segment's own faces (topology, UVs) and add only caps over its hidden holes; "
                "off: rebuild every part as a closed voxel solid"),
        Setting("bulge", float, 0.0,
                "height of each cap's centre above its rim, as a fraction of the rim's radius "
                "(0 = flat cuts, right for parts that meet flush; 0.5 = domes for rounded parts)",
                minimum=0.0, maximum=2.0),
        Setting("resolution", int, 128,
                "voxels along a part's longest side when it is rebuilt as a voxel solid "
                "(keep_visible off, or a segment whose faces cannot be closed)", minimum=8, maximum=512),
    )

    def complete(self, job: PartJob, labels, progress: Progress) -> list[CompletedPart]:
        mesh = job.mesh
        usable = mesh.check().usable
        progress(0.0, "welding seams")
        welded = weld(mesh.vertices, mesh.faces)
        out = []
        for i, label in enumerate(labels):
            progress(i / max(len(labels), 1), f"{job.part_name(label)} ({i + 1}/{len(labels)})")
            t0 = time.perf_counter()
            face_index = np.flatnonzero((job.face_labels == label) & usable)
            part = self._complete_segment(mesh.vertices, welded[face_index], face_index)
            part.label, part.name = label, job.part_name(label)
            part.material_index = majority_material(mesh, face_index)
            part.timings = {"complete": time.perf_counter() - t0}
            out.append(part)
        progress(1.0, "done")
        return out

    def _complete_segment(self, vertices, faces, face_index) -> CompletedPart:
        notes = []
        if len(faces) == 0:
            raise InputError("a part's faces are all degenerate (zero area or non-finite)",
                             "fix the geometry (Mesh > Clean Up) or leave that part out")
        if self.settings["keep_visible"]:
            all_vertices, all_faces, holes = cap_holes(vertices, faces, self.settings["bulge"])
            if is_closed(all_faces):
                used, compact = np.unique(all_faces.reshape(-1), return_inverse=True)
                source = np.concatenate([face_index, np.full(len(all_faces) - len(faces), -1)]).astype(np.int64)
                notes.append(f"kept {len(faces)} visible faces, closed {holes} hidden hole(s)")
                return self._part(all_vertices[used], compact.reshape(-1, 3), source, len(faces), notes)
            notes.append("the segment's faces are not a consistently oriented manifold patch, so it was "
                         "rebuilt as a voxel solid")
        solid_vertices, solid_faces = voxel_solid(vertices, faces, self.settings["resolution"])
        notes.append(f"voxel solid at resolution {self.settings['resolution']}")
        return self._part(solid_vertices, solid_faces, np.full(len(solid_faces), -1, np.int64), len(faces), notes)

    def _part(self, vertices, faces, face_source, source_faces, notes) -> CompletedPart:
        return CompletedPart(label=-1, name="", vertices=vertices, faces=faces, face_source=face_source,
                             source_faces=int(source_faces), material_index=-1, engine=self.name,
                             settings=dict(self.settings), watertight=is_closed(faces), notes=notes)
