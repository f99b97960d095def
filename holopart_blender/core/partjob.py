"""The data model of a part job: a whole mesh, per-face part labels, and the completed parts.

Everything is plain numpy arrays (trimesh-style ``vertices (V,3)``, ``faces (F,3)``) so the same objects
serve the worker, the command line, the Python API, the benchmark and the tests.

Label convention: ``face_labels[f]`` is the part of face ``f``; ``-1`` means unassigned (the face belongs to
the whole shape, which every engine sees as context, but to no part).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

UNASSIGNED = -1
MAX_COORDINATE = 1e30  # results are 32-bit floats (Blender, GLB); this also keeps squared extents finite


@dataclass
class Mesh:
    """A triangle mesh with an optional material index per face."""

    vertices: np.ndarray
    faces: np.ndarray
    face_materials: np.ndarray | None = None
    name: str = "mesh"
    _report: "MeshReport | None" = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64).reshape(-1, 3)
        if self.face_materials is not None:
            self.face_materials = np.ascontiguousarray(self.face_materials, dtype=np.int32).reshape(-1)
            if len(self.face_materials) != len(self.faces):
                raise InputError(
                    f"{len(self.face_materials)} material indices for {len(self.faces)} faces",
                    "give one material index per face, or none",
                )

    @property
    def num_faces(self) -> int:
        return len(self.faces)

    def check(self) -> "MeshReport":
        """Validate the mesh; raise InputError for what cannot be used, report what is skipped.

        The report is computed once and cached: meshes are treated as immutable once built.
        """
        if self._report is None:
            self._report = self._check()
        return self._report

    def _check(self) -> "MeshReport":
        if len(self.vertices) == 0 or len(self.faces) == 0:
            raise InputError(f"mesh '{self.name}' is empty ({len(self.vertices)} vertices, {len(self.faces)} faces)",
                             "select a mesh object that has faces")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise InputError(f"mesh '{self.name}' has face indices outside its {len(self.vertices)} vertices",
                             "the file is corrupt; re-export it")
        finite_vertex = np.isfinite(self.vertices).all(axis=1)
        largest = float(np.abs(self.vertices[finite_vertex]).max(initial=0.0))
        if largest > MAX_COORDINATE:
            raise InputError(f"mesh '{self.name}' has a coordinate of {largest:.3g}, beyond the {MAX_COORDINATE:.0e} "
                             "the engines and 32-bit mesh formats can handle", "scale the mesh down (apply a smaller scale)")
        a, b, c = self.faces[:, 0], self.faces[:, 1], self.faces[:, 2]
        finite = finite_vertex[a] & finite_vertex[b] & finite_vertex[c]
        v = np.where(finite_vertex[:, None], self.vertices, 0.0)
        e1, e2 = v[b] - v[a], v[c] - v[a]
        cross = (e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1]) ** 2
        cross += (e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2]) ** 2
        cross += (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) ** 2
        scale = float(np.abs(v).max()) or 1.0
        usable = finite & (cross > (scale**2 * 1e-14) ** 2)  # zero area, repeated corners included
        if not usable.any():
            raise InputError(f"mesh '{self.name}' has no usable face: every face is degenerate or has a NaN or "
                             "infinite coordinate", "fix the geometry (Mesh > Clean Up) and try again")
        return MeshReport(usable=usable, nonfinite_faces=int((~finite).sum()),
                          degenerate_faces=int((finite & ~usable).sum()))

    def submesh(self, face_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices and faces of the faces in ``face_mask``, compacted; plus the selected face indices."""
        face_index = np.flatnonzero(face_mask)
        faces = self.faces[face_index]
        used, inverse = np.unique(faces.reshape(-1), return_inverse=True)
        return self.vertices[used], inverse.reshape(-1, 3).astype(np.int64), face_index


@dataclass
class MeshReport:
    """What ``Mesh.check`` found: the usable faces and counts of what was skipped."""

    usable: np.ndarray
    nonfinite_faces: int = 0
    degenerate_faces: int = 0

    def warnings(self) -> list[str]:
        out = []
        if self.nonfinite_faces:
            out.append(f"{self.nonfinite_faces} faces with NaN or infinite coordinates were ignored")
        if self.degenerate_faces:
            out.append(f"{self.degenerate_faces} degenerate (zero-area) faces were ignored")
        return out


@dataclass
class PartJob:
    """A whole mesh plus one part label per face (-1 = unassigned)."""

    mesh: Mesh
    face_labels: np.ndarray
    part_names: dict[int, str] = field(default_factory=dict)

    def __post_init__(self):
        labels = np.asarray(self.face_labels)
        if labels.ndim != 1 or len(labels) != self.mesh.num_faces:
            raise InputError(
                f"the label array has shape {labels.shape} but the mesh has {self.mesh.num_faces} faces",
                "give exactly one integer label per face (-1 for none)",
            )
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
                raise InputError("face labels must be integers", "save the labels as an integer .npy array")
        info = np.iinfo(np.int32)
        if labels.size and (labels.max() > info.max or labels.min() < info.min):
            raise InputError(f"face labels run from {labels.min()} to {labels.max()}, beyond 32-bit integers",
                             f"renumber the labels (0 to {info.max}, -1 for none)")
        self.face_labels = np.ascontiguousarray(labels, dtype=np.int32)
        if self.face_labels.size and self.face_labels.min() < UNASSIGNED:
            raise InputError("face labels below -1 are not allowed", "use -1 for faces that belong to no part")
        self.part_names = {int(k): str(v) for k, v in self.part_names.items()}

    @functools.cached_property
    def labels(self) -> list[int]:
        """The part labels present, sorted (computed once: a job's labels are not changed after it is built)."""
        present = np.unique(self.face_labels)
        return [int(x) for x in present if x != UNASSIGNED]

    def part_name(self, label: int) -> str:
        return self.part_names.get(label, f"part_{label:03d}")


@dataclass
class CompletedPart:
    """One completed part in the object's own frame, with what produced it.

    ``face_source[i]`` is the input face that output face ``i`` reproduces, or -1 where the engine made new
    geometry; engines that remesh everything (HoloPart) leave it at -1 throughout.
    """

    label: int
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    face_source: np.ndarray
    source_faces: int
    material_index: int
    engine: str
    settings: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    watertight: bool = False
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        """Everything but the arrays, as JSON-ready values."""
        return {
            "label": self.label,
            "name": self.name,
            "vertices": int(len(self.vertices)),
            "faces": int(len(self.faces)),
            "source_faces": self.source_faces,
            "material_index": self.material_index,
            "engine": self.engine,
            "settings": self.settings,
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "watertight": self.watertight,
            "notes": self.notes,
        }


@dataclass
class JobResult:
    """What a job returns: the completed parts and the labels that defined them."""

    parts: list[CompletedPart]
    face_labels: np.ndarray | None = None
    engine: str = ""
    segmentation_engine: str = ""
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def majority_material(mesh: Mesh, face_index: np.ndarray) -> int:
    """The most common material index among the given faces (-1 when the mesh has no materials)."""
    if mesh.face_materials is None or len(face_index) == 0:
        return -1
    values, counts = np.unique(mesh.face_materials[face_index], return_counts=True)
    return int(values[np.argmax(counts)])
