"""A Blender mesh object to an engine job (``core.partjob.PartJob``).

The evaluated mesh (modifiers, shape keys) of an object, in world space, triangulated with
``loop_triangles``; each triangle keeps its polygon (``polygon_index``), so a face selection or the part
attribute of a polygon carries over to all of its triangles. Both live in face attributes that modifiers
carry along, so they survive generative modifiers too. The face corners, UV maps and custom normals read
here let ``reimport`` give kept faces their source data back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError
from ..core.partjob import UNASSIGNED, Mesh, PartJob
from .labels import part_names, read_labels


@dataclass
class SourceMesh:
    """The job read from an object, and how its triangles map back to the polygons they came from."""

    job: PartJob
    tri_polygon: np.ndarray  # job face -> polygon of the mesh it was read from
    num_polygons: int
    evaluated: bool
    tri_loops: np.ndarray  # (T, 3) job face corners -> loops (face corners) of that mesh
    uv_layers: dict[str, np.ndarray]  # UV map name -> (loops, 2)
    corner_normals: np.ndarray | None  # (loops, 3) in the object's frame, when the mesh has custom normals


def read_source(obj, depsgraph, labels: str, evaluated: bool = True) -> SourceMesh:
    """The job for ``obj``: ``labels`` is 'selection' (selected faces are part 0), 'attribute' (the part
    attribute) or 'none'. ``evaluated=False`` reads the mesh without modifiers."""
    if obj is None or obj.type != "MESH":
        raise InputError(f"'{obj.name if obj else 'nothing'}' is not a mesh object", "select a mesh object")
    if obj.mode == "EDIT":
        obj.update_from_editmode()
    owner = obj.evaluated_get(depsgraph) if evaluated else obj
    mesh = owner.to_mesh()
    try:
        mesh.calc_loop_triangles()
        n_tri, n_poly = len(mesh.loop_triangles), len(mesh.polygons)
        co = np.empty(len(mesh.vertices) * 3, np.float64)
        mesh.vertices.foreach_get("co", co)
        tris = np.empty(n_tri * 3, np.int64)
        mesh.loop_triangles.foreach_get("vertices", tris)
        tri_polygon = np.empty(n_tri, np.int64)
        mesh.loop_triangles.foreach_get("polygon_index", tri_polygon)
        tri_loops = np.empty(n_tri * 3, np.int64)
        mesh.loop_triangles.foreach_get("loops", tri_loops)
        uv_layers = {}
        for layer in mesh.uv_layers:
            uv = np.empty(len(mesh.loops) * 2, np.float32)
            layer.uv.foreach_get("vector", uv)
            uv_layers[layer.name] = uv.reshape(-1, 2)
        corner_normals = None
        if mesh.has_custom_normals:
            corner_normals = np.empty(len(mesh.loops) * 3, np.float32)
            mesh.corner_normals.foreach_get("vector", corner_normals)
            corner_normals = corner_normals.reshape(-1, 3)
        materials = None
        if len(obj.material_slots):
            materials = np.empty(n_tri, np.int32)
            mesh.loop_triangles.foreach_get("material_index", materials)
            materials = np.minimum(materials, len(obj.material_slots) - 1)
        poly_labels = _polygon_labels(mesh, labels)
    finally:
        owner.to_mesh_clear()
    matrix = np.array(obj.matrix_world, np.float64)
    world = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    names = part_names(obj.data) if labels == "attribute" else {}
    job = PartJob(Mesh(world, tris.reshape(-1, 3), materials, name=obj.name), poly_labels[tri_polygon], names)
    return SourceMesh(job, tri_polygon, n_poly, evaluated, tri_loops.reshape(-1, 3), uv_layers, corner_normals)


def _polygon_labels(mesh, labels: str) -> np.ndarray:
    n = len(mesh.polygons)
    if labels == "none":
        return np.full(n, UNASSIGNED, np.int32)
    if labels == "selection":
        selected = np.zeros(n, bool)
        mesh.polygons.foreach_get("select", selected)
        return np.where(selected, 0, UNASSIGNED).astype(np.int32)
    return read_labels(mesh)
