"""Reference engines that every real engine must beat on the benchmark.

``visible`` returns each surface segment unchanged (the benchmark's floor: it recovers no hidden surface);
``hull`` returns the convex hull of each segment (closed, but it loses concavities). Both are real,
deterministic and fast, so the worker, the command line and the Blender side can be exercised end to end
without weights.
"""

from __future__ import annotations

import time

import numpy as np
import trimesh

from ...core.partjob import CompletedPart, PartJob, majority_material
from ...core.progress import Progress
from ..geometry.topology import is_watertight, weld
from .base import CompletionEngine


class _PerSegment(CompletionEngine):
    """Completes each segment on its own from its faces."""

    def complete(self, job: PartJob, labels, progress: Progress) -> list[CompletedPart]:
        usable = job.mesh.check().usable
        out = []
        for i, label in enumerate(labels):
            progress(i / max(len(labels), 1), f"{job.part_name(label)} ({i + 1}/{len(labels)})")
            t0 = time.perf_counter()
            vertices, faces, face_index = job.mesh.submesh((job.face_labels == label) & usable)
            part = self.complete_segment(vertices, faces, face_index)
            part.label, part.name = label, job.part_name(label)
            part.source_faces = int(len(face_index))
            part.material_index = majority_material(job.mesh, face_index)
            part.timings = {"complete": time.perf_counter() - t0}
            out.append(part)
        progress(1.0, "done")
        return out

    def complete_segment(self, vertices, faces, face_index) -> CompletedPart:
        raise NotImplementedError

    def _part(self, vertices, faces, face_source, watertight, notes=()) -> CompletedPart:
        return CompletedPart(label=-1, name="", vertices=vertices, faces=faces, face_source=face_source,
                             source_faces=0, material_index=-1, engine=self.name, settings=dict(self.settings),
                             watertight=watertight, notes=list(notes))


class VisibleSegment(_PerSegment):
    name = "visible"
    description = "returns each visible segment unchanged (benchmark floor; adds no hidden geometry)"

    def complete_segment(self, vertices, faces, face_index):
        closed = is_watertight(vertices, weld(vertices, faces, tolerance=0))  # seams split its corners
        return self._part(vertices, faces, face_index.astype(np.int64), closed)


class ConvexHull(_PerSegment):
    name = "hull"
    description = "convex hull of each visible segment (closed, loses concavities; benchmark baseline)"

    def complete_segment(self, vertices, faces, face_index):
        unique = np.unique(vertices, axis=0)
        if len(unique) >= 4:
            try:
                hull = trimesh.convex.convex_hull(unique)
                if len(hull.faces):
                    return self._part(hull.vertices, hull.faces, np.full(len(hull.faces), -1, np.int64),
                                      is_watertight(hull.vertices, hull.faces))
            except Exception:  # noqa: BLE001 - qhull fails on flat or collinear input; fall back below
                pass
        return self._part(vertices, faces, face_index.astype(np.int64), False,
                          ["segment is flat or too small for a hull; returned unchanged"])
