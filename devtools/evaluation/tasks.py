"""Benchmark tasks from objects made of complete parts (the paper's data recipe, HoloPart §3.3).

``build_task(glb_path, cache_dir=None, views=64)`` is the completion task: the object's parts merged, only
the faces a ray from outside reaches kept, each kept face labelled with the part it came from; ``task.job`` is
the engine input. ``build_remesh_task`` is a one-piece remesh of the whole object (its outside surface,
marching cubes on a grid) with the ground-truth label of each face carried over from the nearest part
surface: the input for measuring automatic segmentation where connectivity gives nothing away
(``task.job.face_labels`` is the truth).

Every task is in the object frame: centred on its bounding box, longest axis scaled to [-1, 1]
(``normalised = (source - centre) * scale``). Tasks are deterministic; with ``cache_dir`` they are kept on
disk under a key made of the file's SHA-256 and the parameters, beside ``input.glb`` (the official input
format: one mesh per visible segment, named after its part) and ``parts.glb`` (the ground-truth parts).

Visibility needs a ray engine: embree (the ``embreex`` package) when installed, else trimesh's own
triangle engine (which needs ``rtree``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from holopart_blender.core.errors import EngineError, InputError
from holopart_blender.core.meshmath import TOL, box_frame, triangle_cross
from holopart_blender.engine.meshfiles import load_job, parts_scene, safe_name
from holopart_blender.core.partjob import Mesh, PartJob

TASK_VERSION = 2  # bump when a change alters what a task holds (invalidates caches)


@dataclass
class Task:
    """One benchmark object: the engine input and the complete parts it is scored against.

    ``job`` holds the input mesh with its labels (label = index into ``parts``; for a remesh task the labels
    are the ground truth to segment). ``parts[i]`` is part i's complete mesh. Both are in the object frame.
    """

    name: str
    kind: str  # "visible" or "remesh"
    job: PartJob
    parts: list[Mesh]
    centre: np.ndarray
    scale: float
    params: dict = field(default_factory=dict)
    folder: Path | None = None  # the cache folder holding input.glb and parts.glb, when cached

    @property
    def part_names(self) -> list[str]:
        return [p.name for p in self.parts]

    def segment(self, label: int) -> Mesh:
        """The input faces labelled ``label`` (part ``label``'s visible segment in a visible task)."""
        vertices, faces, _ = self.job.mesh.submesh(self.job.face_labels == label)
        return Mesh(vertices, faces, name=self.parts[label].name)

    def write(self, folder: str | os.PathLike) -> Path:
        """Write ``input.glb`` (one mesh per labelled segment) and ``parts.glb`` (the complete parts)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        parts_scene([self.segment(label) for label in self.job.labels]).export(str(folder / "input.glb"))
        parts_scene(self.parts).export(str(folder / "parts.glb"))
        return folder


def fibonacci_directions(count: int) -> np.ndarray:
    """``count`` unit vectors spread evenly over the sphere (a Fibonacci lattice)."""
    i = np.arange(count, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / count
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def ray_engine_name() -> str:
    """'embree' or 'triangle': the ray engine visibility will use here."""
    try:
        import embreex  # noqa: F401
        return "embree"
    except ImportError:
        pass
    try:
        import rtree  # noqa: F401
        return "triangle"
    except ImportError:
        raise EngineError("no ray engine for the visibility test", "pip install embreex (fast) or rtree",
                          kind="engine_unavailable") from None


def visible_faces(vertices: np.ndarray, faces: np.ndarray, views: int = 64,
                  usable: np.ndarray | None = None) -> np.ndarray:
    """Which faces a ray from outside the bounding sphere reaches first, from any of ``views`` directions.

    A ray per face and direction starts outside the mesh's bounding sphere and travels to the face centre;
    the face is visible when the first triangle hit is that face, or a face coincident with it there
    (hit distance within 1e-6 of the object's size). ``usable`` (default: every face with area) limits the
    faces tested; unusable faces are never visible.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    mesh = trimesh.Trimesh(vertices, faces, process=False, validate=False)
    engine_name = ray_engine_name()
    if engine_name == "embree":
        from trimesh.ray.ray_pyembree import RayMeshIntersector
    else:
        from trimesh.ray.ray_triangle import RayMeshIntersector
    intersector = RayMeshIntersector(mesh)
    tri = vertices[faces]
    centres = tri.mean(axis=1)
    normals = triangle_cross(tri)
    if usable is None:
        usable = np.linalg.norm(normals, axis=1) > 0
    candidates = np.flatnonzero(usable)
    middle = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    radius = float(np.linalg.norm(vertices - middle, axis=1).max())
    reach = 2.0 * radius + 1e-3 * max(radius, TOL.relative)  # from a face centre to beyond the bounding sphere
    tolerance = 1e-6 * max(radius, TOL.relative)
    seen = np.zeros(len(faces), bool)
    for direction in fibonacci_directions(views):
        todo = candidates[~seen[candidates]]
        if not len(todo):
            break
        origins = centres[todo] + reach * direction
        rays = np.broadcast_to(-direction, origins.shape)
        hit = np.asarray(intersector.intersects_first(origins, rays), np.int64)
        ok = hit == todo
        other = np.flatnonzero((hit >= 0) & ~ok)
        if len(other):  # another face hit first: visible only when coincident with this one at its centre
            n = normals[hit[other]]
            denom = n @ -direction
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.einsum("ij,ij->i", n, tri[hit[other], 0] - origins[other]) / denom
            ok[other] = np.abs(t - reach) <= tolerance
        seen[todo[ok]] = True
    return seen


def build_task(glb_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None, views: int = 64) -> Task:
    """The completion task for one object file (see the module doc)."""
    if views < 1:
        raise InputError(f"views must be at least 1, got {views}", "use 64 (the reference scorer's choice)")
    params = {"views": int(views), "rays": ray_engine_name()}

    def make(whole: PartJob, parts: list[Mesh]) -> PartJob:
        seen = visible_faces(whole.mesh.vertices, whole.mesh.faces, views, whole.mesh.check().usable)
        vertices, faces, index = whole.mesh.submesh(seen)
        return PartJob(Mesh(vertices, faces, name=whole.mesh.name), whole.face_labels[index], whole.part_names)

    return _cached_task(Path(glb_path), "visible", params, cache_dir, make)


def build_remesh_task(glb_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                      resolution: int = 128, max_faces: int = 200_000, offset: float = 0.0,
                      smoothing: int = 0) -> Task:
    """A one-piece remesh of the whole object with nearest-part ground-truth labels (see the module doc).

    The object's outside is found on a grid of ``resolution`` cells along the longest axis: grid points
    farther than one cell from the surface and connected to the grid's border are outside, all others
    inside (a 6-connected path cannot cross the surface, so open parts and gaps under a cell cannot leak,
    and hidden inner parts disappear). Marching cubes of the unsigned distance, signed by that test, gives
    a closed surface within about a cell of the object's outer surface. The grid is coarsened until the
    remesh has at most ``max_faces`` faces. Distances are to the parts' triangles subdivided to edges of
    half a cell, which bounds their error by a third of a cell.

    Variants, as other remeshers would make them: ``offset`` (cells, 0 to 1) raises the iso-level of the
    signed distance, so the surface lies up to that much farther out than the default one; ``smoothing``
    applies that many Taubin smoothing steps (lambda 0.5, mu -0.53: rounds the staircases and creases
    without shrinking the volume).
    """
    if resolution < 8:
        raise InputError(f"resolution must be at least 8, got {resolution}", "use 128")
    if not 0.0 <= offset <= 1.0:
        raise InputError(f"offset must be between 0 and 1 cells, got {offset}", "use 0")
    if smoothing < 0:
        raise InputError(f"smoothing must be at least 0 steps, got {smoothing}", "use 0")
    params = {"resolution": int(resolution), "max_faces": int(max_faces)}
    if offset or smoothing:  # the default remesh keeps the cache key it always had
        params.update(offset=float(offset), smoothing=int(smoothing))

    def make(whole: PartJob, parts: list[Mesh]) -> PartJob:
        points, owner = _part_points(parts, 1.0 / resolution)
        tree = cKDTree(points)
        cells = resolution
        while True:
            vertices, faces = _outer_surface(tree, points, cells, offset)
            if len(faces) <= max_faces or cells <= 8:
                break
            cells = max(8, int(cells * np.sqrt(max_faces / len(faces)) * 0.97))
        params["used_resolution"] = cells
        if smoothing:
            smoothed = trimesh.Trimesh(vertices, faces, process=False)
            trimesh.smoothing.filter_taubin(smoothed, lamb=0.5, nu=0.53, iterations=smoothing)
            vertices = np.asarray(smoothed.vertices)
        remesh = Mesh(vertices, faces, name=whole.mesh.name)
        _, nearest = tree.query(vertices[faces].mean(axis=1), workers=-1)
        return PartJob(remesh, owner[nearest].astype(np.int32), whole.part_names)

    return _cached_task(Path(glb_path), "remesh", params, cache_dir, make)


def _outer_surface(tree: cKDTree, points: np.ndarray, cells: int, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    step = 2.0 / cells
    low = points.min(axis=0) - 2.5 * step
    shape = np.ceil((points.max(axis=0) + 2.5 * step - low) / step).astype(int) + 1
    axes = [low[i] + step * np.arange(shape[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    distance = np.minimum(tree.query(grid, distance_upper_bound=3 * step, workers=-1)[0], 3 * step).reshape(shape)
    components, _ = ndimage.label(distance > step)
    border = np.unique(np.concatenate([components[[0, -1]].ravel(), components[:, [0, -1]].ravel(),
                                       components[:, :, [0, -1]].ravel()]))
    outside = np.isin(components, border[border > 0])
    field = np.where(outside, distance, -distance)
    vertices, faces, _, _ = measure.marching_cubes(field, offset * step, spacing=(step, step, step))
    return vertices + low, faces.astype(np.int64)  # this winding points the normals outwards


def _part_points(parts: list[Mesh], max_edge: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and face centres of every part subdivided to edges of at most ``max_edge``, with the part
    each point belongs to: every surface point lies within ``max_edge / sqrt(3)`` of one of them."""
    points, owner = [], []
    for i, part in enumerate(parts):
        vertices, faces = trimesh.remesh.subdivide_to_size(part.vertices, part.faces, max_edge, max_iter=40)
        chunk = np.concatenate([vertices, vertices[faces].mean(axis=1)])
        points.append(chunk)
        owner.append(np.full(len(chunk), i, np.int32))
    return np.concatenate(points), np.concatenate(owner)


def _load_object(path: Path) -> tuple[PartJob, list[Mesh], np.ndarray, float]:
    """The merged object (labels = part index) and its parts, in the object frame; plus centre and scale."""
    whole = load_job(path)
    if len(whole.labels) < 1 or whole.face_labels.min() < 0:
        raise InputError(f"{path.name} holds no named part meshes", "give a GLB with one mesh node per part")
    if not np.ptp(whole.mesh.vertices, axis=0).max() > 0:
        raise InputError(f"{path.name} has no extent", "the object is a single point")
    centre, scale = box_frame(whole.mesh.vertices)
    mesh = Mesh((whole.mesh.vertices - centre) * scale, whole.mesh.faces, name=path.stem)
    whole = PartJob(mesh, whole.face_labels, whole.part_names)
    parts = []
    for label in range(len(whole.part_names)):
        vertices, faces, _ = mesh.submesh(whole.face_labels == label)
        parts.append(Mesh(vertices, faces, name=whole.part_name(label)))
    return whole, parts, centre, scale


def _cached_task(path: Path, kind: str, params: dict, cache_dir, make) -> Task:
    whole, parts, centre, scale = _load_object(path)
    if cache_dir is None:
        job = make(whole, parts)
        return Task(path.stem, kind, job, parts, centre, scale, params)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = hashlib.sha256(json.dumps([TASK_VERSION, digest, kind, params], sort_keys=True).encode()).hexdigest()
    folder = Path(cache_dir) / f"{safe_name(path.stem)}-{kind}-{key[:16]}"
    arrays = folder / "task.npz"
    if arrays.is_file():
        with np.load(arrays, allow_pickle=False) as data:
            job = PartJob(Mesh(data["vertices"], data["faces"], name=path.stem), data["labels"], whole.part_names)
        params = json.loads((folder / "task.json").read_text())["params"]
        return Task(path.stem, kind, job, parts, centre, scale, params, folder)
    job = make(whole, parts)
    task = Task(path.stem, kind, job, parts, centre, scale, params, folder)
    task.write(folder)
    (folder / "task.json").write_text(json.dumps({
        "source": str(path), "sha256": digest, "kind": kind, "params": params, "version": TASK_VERSION,
        "centre": centre.tolist(), "scale": scale, "parts": task.part_names,
        "faces": int(job.mesh.num_faces), "object_faces": int(whole.mesh.num_faces)}, indent=1))
    temporary = folder / "task.tmp.npz"
    np.savez(temporary, vertices=job.mesh.vertices, faces=job.mesh.faces, labels=job.face_labels)
    temporary.replace(arrays)  # written last and atomically: a folder with task.npz is complete
    return task

