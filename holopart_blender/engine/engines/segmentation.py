"""Segmentation engines: one part label per face, with no weights and no GPU.

- ``loose_parts``: the mesh's connected pieces of surface (after welding the split vertices of UV and
  normal seams); pieces under ``min_area`` of the surface join the nearest larger piece. Artist meshes are
  usually modelled part by part, so this recovers the real parts exactly.
- ``materials``: one part per material slot (the mesh's per-face material index).
- ``spectral``: spectral cuts along concave creases, shallow ones counted where the thickness changes, for
  one-piece meshes (scans, generated models, remeshes): see ``geometry/spectral.py`` for the method.
  Deterministic for a given ``seed``.
- ``auto``: loose parts when the mesh has two or more significant pieces, else spectral.
- ``seeded``: grows the labels the artist marked on a few faces (the job's face labels, -1 = unmarked) over
  the whole mesh along concave creases and changes of thickness: a random walker on the face graph, see
  ``geometry/seeded.py``.

Labels already stored on the mesh (a Blender integer face attribute) need no engine: the Blender side sends
them as the job's labels. Faces that no engine can use (zero area, non-finite coordinates) get -1.
"""

from __future__ import annotations

import numpy as np

from ...core.errors import InputError
from ..geometry.seeded import grow_seeds
from ..geometry.spectral import segment_parts
from ..geometry.topology import loose_parts
from ...core.partjob import Mesh
from ...core.progress import Progress
from .base import SegmentationEngine, Setting

MIN_AREA = Setting("min_area", float, 0.01,
                   "pieces smaller than this fraction of the surface area join the nearest larger piece",
                   minimum=0.0, maximum=0.5)
SPECTRAL_SETTINGS = (
    Setting("num_parts", int, 0, "number of parts for one-piece meshes; 0 lets the shape decide (cuts along concave creases until none is left)",
            minimum=0, maximum=64),
    Setting("max_parts", int, 0, "the most parts the automatic choice may return; 0: no limit (the creases decide)",
            minimum=0, maximum=256),
    Setting("seed", int, 0, "seed of the eigensolver's start vector (same seed, same labels)", minimum=0),
    Setting("thickness_jump", float, 0.3, "a concave edge between pieces whose thickness differs by more than this "
            "(in log: 0.3 = 35%) counts as a crease; 0 ignores thickness", minimum=0.0, maximum=5.0),
)


def _on_usable_faces(mesh: Mesh, run) -> np.ndarray:
    """Run ``run(vertices, faces)`` on the usable faces; the rest get -1."""
    usable = mesh.check().usable
    labels = np.full(mesh.num_faces, -1, np.int32)
    vertices, faces, face_index = mesh.submesh(usable)
    labels[face_index] = run(vertices, faces)
    return labels


class LooseParts(SegmentationEngine):
    name = "loose_parts"
    description = "one part per connected piece of the mesh; tiny pieces join their nearest neighbour"
    settings_spec = (MIN_AREA,)

    def segment(self, mesh: Mesh, progress: Progress) -> np.ndarray:
        progress(0.0, "finding connected pieces")
        labels = _on_usable_faces(mesh, lambda v, f: loose_parts(v, f, self.settings["min_area"]))
        progress(1.0, f"{labels.max() + 1} pieces")
        return labels


class MaterialSlots(SegmentationEngine):
    name = "materials"
    description = "one part per material slot"

    def segment(self, mesh: Mesh, progress: Progress) -> np.ndarray:
        if mesh.face_materials is None:
            raise InputError(f"mesh '{mesh.name}' has no material indices",
                             "assign materials to the parts, or use the loose_parts or spectral segmenter")
        progress(1.0, "material slots")
        return np.where(mesh.check().usable, mesh.face_materials, -1).astype(np.int32)


class SpectralSegmentation(SegmentationEngine):
    name = "spectral"
    description = "spectral cuts along concave creases for one-piece meshes (part count automatic or given)"
    settings_spec = SPECTRAL_SETTINGS

    def segment(self, mesh: Mesh, progress: Progress) -> np.ndarray:
        s = self.settings
        return _on_usable_faces(mesh, lambda v, f: segment_parts(
            v, f, num_parts=s["num_parts"], max_parts=s["max_parts"], seed=s["seed"],
            thickness_jump=s["thickness_jump"], progress=progress))


class AutoSegmentation(SegmentationEngine):
    name = "auto"
    description = "loose parts when the mesh has 2+ significant pieces, else spectral cuts"
    settings_spec = (MIN_AREA, *SPECTRAL_SETTINGS)

    def segment(self, mesh: Mesh, progress: Progress) -> np.ndarray:
        s = self.settings
        progress(0.0, "finding connected pieces")
        labels = _on_usable_faces(mesh, lambda v, f: loose_parts(v, f, s["min_area"]))
        if labels.max() >= 1:
            progress(1.0, f"{labels.max() + 1} loose parts")
            return labels
        return SpectralSegmentation({x.name: s[x.name] for x in SPECTRAL_SETTINGS}).segment(
            mesh, progress.span(0.1, 1.0))


class SeededSegmentation(SegmentationEngine):
    name = "seeded"
    description = "grows the part labels marked on a few faces over the mesh, stopping at concave creases"
    uses_seeds = True
    settings_spec = (
        Setting("sigma", float, 0.01, "how strongly creases stop the growth: smaller stops at gentler creases",
                minimum=1e-3, maximum=10.0),
        Setting("convex_weight", float, 0.05, "how much convex edges count against growth, relative to concave ones",
                minimum=0.0, maximum=1.0),
        Setting("smooth", int, 6, "rings of neighbours each face normal is averaged over (remesh staircases cancel)",
                minimum=0, maximum=20),
        Setting("thickness", float, 0.3, "how strongly a change of thickness stops the growth: smaller stops at "
                "smaller changes; 0 ignores thickness", minimum=0.0, maximum=10.0),
    )

    def segment(self, mesh: Mesh, progress: Progress, seeds: np.ndarray | None = None) -> np.ndarray:
        usable = mesh.check().usable
        seeds = np.full(mesh.num_faces, -1, np.int32) if seeds is None else np.asarray(seeds)
        if seeds.shape != (mesh.num_faces,):
            raise InputError(f"the seed array has shape {seeds.shape} but the mesh has {mesh.num_faces} faces",
                             "give one integer per face: a part label on marked faces, -1 elsewhere")
        if seeds.size and seeds.min() < -1:
            raise InputError("seed labels below -1 are not allowed", "use -1 for faces that are not marked")
        if not (usable & (seeds >= 0)).any():
            raise InputError("no seed faces", "mark a few faces of each part with its label, then segment")
        s = self.settings
        progress(0.0, f"growing {len(np.unique(seeds[seeds >= 0]))} seeded parts")
        labels = _on_usable_faces(mesh, lambda v, f: grow_seeds(
            v, f, seeds[usable], sigma=s["sigma"], convex_weight=s["convex_weight"], smooth=s["smooth"],
            thickness=s["thickness"]))
        progress(1.0, "grown")
        return labels
