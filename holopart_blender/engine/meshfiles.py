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
    """A face-label array from a ``.npy`` file (pickled object arrays are refused)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"no such label file: {path}", "check the path") from None
    except ValueError as exc:
        raise InputError(f"cannot read labels from {path.name}: {exc}", "save labels with numpy.save as integers") from exc
    return np.asarray(array).reshape(-1) if np.asarray(array).ndim == 2 and 1 in array.shape else array


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


def write_parts(path: str | os.PathLike, parts: list[CompletedPart], metadata: dict | None = None) -> list[Path]:
    """Write completed parts: one node per part in a GLB/GLTF/OBJ, or one PLY/STL file per part.

    A sidecar ``<stem>.parts.json`` holds each part's metadata (engine, settings, timings, ...).
    Returns the files written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if suffix in (".glb", ".gltf", ".obj"):
        parts_scene(parts).export(str(path))
        written.append(path)
    elif suffix in (".ply", ".stl", ".off"):
        for part in parts:
            target = path.with_name(f"{path.stem}_{safe_name(part.name)}{suffix}")
            trimesh.Trimesh(part.vertices, part.faces, process=False).export(str(target))
            written.append(target)
    else:
        raise InputError(f"cannot write '{suffix}' files", "write .glb, .gltf, .obj, .ply, .stl or .off")
    sidecar = path.with_name(path.stem + ".parts.json")
    sidecar.write_text(json.dumps({**(metadata or {}), "parts": [p.metadata() for p in parts]}, indent=1))
    written.append(sidecar)
    return written
