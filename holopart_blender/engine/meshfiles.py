"""Reading and writing meshes and part jobs (GLB/GLTF, OBJ, PLY, and ``.npy`` face labels) with trimesh.

Accepted job inputs:
- a GLB/GLTF scene with one mesh per segment (the official HoloPart input format): each mesh node becomes
  one labelled segment, named after the node, with its node transform applied;
- any mesh file plus a ``.npy`` array with one integer label per face (what SAMPart3D- and SAMesh-style
  segmenters write); -1 marks unassigned faces;
- a single mesh with no labels (to be segmented).
Meshes are loaded without trimesh's processing so face order, and so label order, is kept exactly.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import trimesh

from ..core.errors import InputError
from ..core.partjob import CompletedPart, Mesh, PartJob

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")
SEGMENT_SCENE_SUFFIXES = (".glb", ".gltf")
SCENE_OUTPUT_SUFFIXES = (".glb", ".gltf", ".obj")  # one file with one node per part
SINGLE_OUTPUT_SUFFIXES = (".ply", ".stl", ".off")  # one file per part


def _load_scene(path: Path) -> trimesh.Scene:
    if not path.is_file():
        raise InputError(f"no such file: {path}", "check the path")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"unsupported mesh format '{path.suffix}' for {path.name}",
                         f"use one of: {', '.join(MESH_SUFFIXES)}")
    try:
        loaded = trimesh.load(str(path), process=False, force="scene")
    except Exception as exc:  # noqa: BLE001 - trimesh raises many types for unreadable files
        raise InputError(f"cannot read {path.name}: {exc}", "the file is damaged or not a mesh") from exc
    return loaded


def _scene_meshes(scene: trimesh.Scene) -> list[tuple[str, trimesh.Trimesh]]:
    """(node name, mesh in scene coordinates) for every mesh instance, in the file's geometry order."""
    order = {name: i for i, name in enumerate(scene.geometry)}
    out = []
    for node in sorted(scene.graph.nodes_geometry, key=lambda n: (order.get(scene.graph[n][1], 0), str(n))):
        transform, geometry_name = scene.graph[node]
        geometry = scene.geometry[geometry_name]
        if not isinstance(geometry, trimesh.Trimesh) or len(geometry.faces) == 0:
            continue
        mesh = geometry.copy()
        if not np.allclose(transform, np.eye(4)):
            mesh.apply_transform(transform)
        out.append((str(node), mesh))
    return out


def _material_key(mesh: trimesh.Trimesh):
    material = getattr(mesh.visual, "material", None)
    return getattr(material, "name", None) if material is not None else None


def load_job(path: str | os.PathLike, labels: str | os.PathLike | np.ndarray | None = None) -> PartJob:
    """Load a part job from a segment scene, or from a mesh file plus face labels (see the module doc)."""
    path = Path(path)
    meshes = _scene_meshes(_load_scene(path))
    if not meshes:
        raise InputError(f"{path.name} holds no triangle mesh", "export the object as a mesh with faces")
    vertices, faces, materials, segment_ids, offset = [], [], [], [], 0
    material_index: dict = {}
    for i, (_, mesh) in enumerate(meshes):
        vertices.append(np.asarray(mesh.vertices, np.float64))
        faces.append(np.asarray(mesh.faces, np.int64) + offset)
        offset += len(mesh.vertices)
        key = _material_key(mesh)
        materials.append(np.full(len(mesh.faces), material_index.setdefault(key, len(material_index)), np.int32))
        segment_ids.append(np.full(len(mesh.faces), i, np.int32))
    has_materials = any(k is not None for k in material_index)
    whole = Mesh(np.concatenate(vertices), np.concatenate(faces),
                 np.concatenate(materials) if has_materials else None, name=path.stem)
    if labels is not None:
        array = labels if isinstance(labels, np.ndarray) else load_labels(labels)
        return PartJob(whole, array)
    if len(meshes) > 1 and path.suffix.lower() in SEGMENT_SCENE_SUFFIXES:
        return PartJob(whole, np.concatenate(segment_ids), {i: name for i, (name, _) in enumerate(meshes)})
    return PartJob(whole, np.full(whole.num_faces, -1, np.int32))


def load_mesh(path: str | os.PathLike) -> Mesh:
    """Load any mesh file as one mesh (all nodes merged)."""
    job = load_job(path, labels=None)
    return job.mesh


def load_labels(path: str | os.PathLike) -> np.ndarray:
    """A face-label array from a ``.npy`` file; anything but a numeric ``.npy`` array raises InputError.

    The file is memory-mapped first, so a header that claims more data than the file holds is refused
    without allocating it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{'not a file' if path.exists() else 'no such label file'}: {path}", "check the path")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        if not isinstance(array, np.ndarray):
            raise ValueError("it is an .npz archive, not one .npy array")
        if array.dtype.kind not in "iuf":
            raise ValueError(f"it holds {array.dtype} values, not numbers")
        array = np.array(array)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"cannot read labels from {path.name}: {exc}",
                         "save labels with numpy.save as integers") from None
    return array.reshape(-1) if array.ndim == 2 and 1 in array.shape else array


def safe_name(name: str, fallback: str = "part") -> str:
    """A file- and node-safe version of a name that came from a file (names are data, not paths)."""
    cleaned = re.sub(r"[^\w.\- ]+", "_", str(name), flags=re.UNICODE).strip(" .")
    return cleaned[:100] or fallback


def parts_scene(parts: list[CompletedPart]) -> trimesh.Scene:
    scene = trimesh.Scene()
    used: set[str] = set()
    for part in parts:
        node = safe_name(part.name)
        while node in used:
            node += "_"
        used.add(node)
        scene.add_geometry(trimesh.Trimesh(part.vertices, part.faces, process=False),
                           node_name=node, geom_name=node)
    return scene


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system under ``folder`` takes (255 where it cannot say)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def parts_targets(path: str | os.PathLike, parts: list[CompletedPart]) -> list[Path]:
    """The files ``write_parts`` writes for ``parts`` at ``path``, the ``.parts.json`` sidecar last.

    Per-part file names (``STEM_PARTNAME``) are cut to fit the file system and made unique, so whether the
    output can be named depends on ``path`` alone. Raises InputError for a format it cannot write or a
    ``path`` (or its sidecar) too long for the file system.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    limit = name_max(path.parent)
    if suffix in SCENE_OUTPUT_SUFFIXES:
        targets = [path]
    elif suffix in SINGLE_OUTPUT_SUFFIXES:
        targets, used = [], set()
        room = limit - len(path.suffix.encode()) - 5  # 5: room for a duplicate's "_NNNN"
        for part in parts:
            base = name = _cut(f"{path.stem}_{safe_name(part.name)}", room)
            count = 1
            while name in used:
                name, count = f"{base}_{count}", count + 1
            used.add(name)
            targets.append(path.with_name(name + path.suffix))
    else:
        raise InputError(f"cannot write '{suffix}' files", "write .glb, .gltf, .obj, .ply, .stl or .off")
    targets.append(path.with_name(path.stem + ".parts.json"))
    for target in targets:
        if len(os.fsencode(target.name)) > limit:
            raise InputError(f"the output name {target.name[:40]}... is longer than the {limit} bytes a file name "
                             "may have here", "choose a shorter output name with --out")
    return targets


def _cut(name: str, size: int) -> str:
    """``name`` cut to at most ``size`` bytes of UTF-8, on a character boundary."""
    return name.encode("utf-8")[:max(size, 0)].decode("utf-8", "ignore")


def write_parts(path: str | os.PathLike, parts: list[CompletedPart], metadata: dict | None = None) -> list[Path]:
    """Write completed parts: one node per part in a GLB/GLTF/OBJ, or one PLY/STL/OFF file per part.

    A sidecar ``<stem>.parts.json`` holds each part's metadata (engine, settings, timings, ...).
    Returns the files written (``parts_targets``).
    """
    targets = parts_targets(path, parts)
    targets[0].parent.mkdir(parents=True, exist_ok=True)
    if Path(path).suffix.lower() in SCENE_OUTPUT_SUFFIXES:
        parts_scene(parts).export(str(targets[0]))
    else:
        for part, target in zip(parts, targets):
            trimesh.Trimesh(part.vertices, part.faces, process=False).export(str(target))
    targets[-1].write_text(json.dumps({**(metadata or {}), "parts": [p.metadata() for p in parts]}, indent=1))
    return targets
