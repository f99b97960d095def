"""Blender meshes to engine jobs and back.

Reading: the evaluated mesh (modifiers, shape keys) of an object, in world space, triangulated with
``loop_triangles``; each triangle keeps its polygon (``polygon_index``), so a face selection or the part
attribute of a polygon carries over to all of its triangles. Both live in face attributes that modifiers
carry along, so they survive generative modifiers too.

Writing: the part attribute (``holopart_part``, an integer per face, -1 for none; the mesh's optional
``holopart_part_names`` property names the parts) with a colour preview,
and the completed parts as new objects (see ``build_parts``).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix
from mathutils.bvhtree import BVHTree

from ..core.errors import EngineError, InputError
from ..core.partjob import UNASSIGNED, JobResult, Mesh, PartJob

LABEL_ATTRIBUTE = "holopart_part"
COLOR_ATTRIBUTE = "holopart_part_color"
NAMES_PROPERTY = "holopart_part_names"  # optional mesh property: {"label": "part name"}
VISIBLE_GROUP = "holopart_visible"
SMOOTH_BY_ANGLE = "Smooth by Angle"
# A result vertex closer than this share of its part's size to the source surface counts as visible.
VISIBLE_DISTANCE = 0.01


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
    names = obj.data.get(NAMES_PROPERTY, {}) if labels == "attribute" else {}
    job = PartJob(Mesh(world, tris.reshape(-1, 3), materials, name=obj.name), poly_labels[tri_polygon],
                  {int(k): str(v) for k, v in names.items()})
    return SourceMesh(job, tri_polygon, n_poly, evaluated, tri_loops.reshape(-1, 3), uv_layers, corner_normals)


def _polygon_labels(mesh, labels: str) -> np.ndarray:
    n = len(mesh.polygons)
    if labels == "none":
        return np.full(n, UNASSIGNED, np.int32)
    if labels == "selection":
        selected = np.zeros(n, bool)
        mesh.polygons.foreach_get("select", selected)
        return np.where(selected, 0, UNASSIGNED).astype(np.int32)
    attribute = mesh.attributes.get(LABEL_ATTRIBUTE)
    if attribute is None or attribute.domain != "FACE" or attribute.data_type != "INT":
        return np.full(n, UNASSIGNED, np.int32)
    values = np.empty(n, np.int32)
    attribute.data.foreach_get("value", values)
    return values


def polygon_labels_from_triangles(tri_labels: np.ndarray, tri_polygon: np.ndarray, num_polygons: int) -> np.ndarray:
    """Per-polygon labels: the label most of a polygon's triangles have (-1 for polygons with none)."""
    tri_labels = np.asarray(tri_labels, np.int64)
    offset = tri_labels.min(initial=UNASSIGNED)
    span = int(tri_labels.max(initial=UNASSIGNED) - offset + 1)
    counts = np.zeros((num_polygons, span), np.int64)
    np.add.at(counts, (tri_polygon, tri_labels - offset), 1)
    out = (counts.argmax(axis=1) + offset).astype(np.int32)
    out[counts.sum(axis=1) == 0] = UNASSIGNED
    return out


def read_labels(mesh) -> np.ndarray:
    """The part attribute of an (object-mode) mesh, -1 everywhere when it has none."""
    return _polygon_labels(mesh, "attribute")


def write_labels(mesh, poly_labels: np.ndarray) -> None:
    """Store per-polygon part labels in the part attribute and paint the colour preview."""
    poly_labels = np.ascontiguousarray(poly_labels, np.int32)
    attribute = mesh.attributes.get(LABEL_ATTRIBUTE)
    if attribute is not None and (attribute.domain != "FACE" or attribute.data_type != "INT"):
        mesh.attributes.remove(attribute)
        attribute = None
    if attribute is None:
        attribute = mesh.attributes.new(LABEL_ATTRIBUTE, "INT", "FACE")
    attribute.data.foreach_set("value", poly_labels)
    colors = mesh.color_attributes.get(COLOR_ATTRIBUTE) or mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "CORNER")
    loop_totals = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("loop_total", loop_totals)
    corner_labels = np.repeat(poly_labels, loop_totals)
    colors.data.foreach_set("color", label_colors(corner_labels).ravel())
    mesh.color_attributes.active_color = colors
    mesh.update()


def label_colors(labels: np.ndarray) -> np.ndarray:
    """A distinct RGBA colour per label (golden-ratio hues); grey for -1."""
    labels = np.asarray(labels)
    unique, inverse = np.unique(labels, return_inverse=True)
    palette = np.array([(0.5, 0.5, 0.5, 1.0) if label == UNASSIGNED else
                        (*colorsys.hsv_to_rgb((label * 0.618034) % 1.0, 0.65, 0.95), 1.0) for label in unique],
                       np.float32).reshape(-1, 4)
    return palette[inverse.reshape(-1)]


def build_parts(context, source_obj, source: SourceMesh, result: JobResult) -> tuple[bpy.types.Collection, list]:
    """One object per completed part, in a new collection named after the source.

    Each part gets the source's transform (the world-space result is brought back into the source's
    local frame), the material slots of the faces it came from (``face_source`` for kept faces, the
    segment's majority for new ones) and the source's UVs and custom normals. Faces the engine kept
    (``face_source >= 0``) take UVs and custom normals exactly from the face corners they reproduce; a part
    the engine remeshed (no kept face) gets a Data Transfer modifier of UVs and custom normals from the
    source instead, limited to the vertices on its visible surface. Parts without custom normals get
    Smooth by Angle. The source is hidden and otherwise left alone.
    """
    world = Matrix(source_obj.matrix_world)
    if abs(world.determinant()) < 1e-12:
        raise InputError(f"'{source_obj.name}' has a zero scale", "fix the object's scale (Object > Apply > Scale)")
    inverse = np.array(world.inverted(), np.float64)
    collection = bpy.data.collections.new(f"{source_obj.name} parts")
    context.scene.collection.children.link(collection)
    job_mesh = source.job.mesh
    local_source = job_mesh.vertices @ inverse[:3, :3].T + inverse[:3, 3]
    objects = []
    for part in result.parts:
        vertices = np.asarray(part.vertices, np.float64) @ inverse[:3, :3].T + inverse[:3, 3]
        mesh = _new_mesh(f"{source_obj.name}_{part.name}", vertices, part.faces)
        _assign_materials(mesh, source_obj, job_mesh.face_materials, part)
        obj = bpy.data.objects.new(mesh.name, mesh)
        obj.matrix_world = world
        collection.objects.link(obj)
        obj["holopart"] = {"source": source_obj.name, "label": part.label, "engine": part.engine,
                           "watertight": part.watertight, "source_faces": part.source_faces}
        face_source = np.asarray(part.face_source, np.int64)
        if (face_source >= 0).any():
            if not _copy_corner_data(mesh, source, face_source):
                _smooth_by_angle(obj)
        else:
            _visible_group(obj, vertices, local_source, job_mesh.faces[source.job.face_labels == part.label])
            _smooth_by_angle(obj)
            _transfer_from_source(obj, source_obj)
        objects.append(obj)
    source_obj.hide_set(True)
    return collection, objects


def _copy_corner_data(mesh, source: SourceMesh, face_source: np.ndarray) -> bool:
    """UVs and custom normals of kept faces, corner by corner from the source loops they reproduce
    (engines keep a kept face's corner order); new faces get zero UVs and their own normals. Returns
    whether custom normals were set (they then define the shading, so Smooth by Angle is not added:
    its sharp edges would change how Blender decodes them)."""
    kept = face_source >= 0
    loops = source.tri_loops[face_source[kept]].ravel()
    corner_kept = np.repeat(kept, 3)
    for name, uv in source.uv_layers.items():
        values = np.zeros((len(face_source) * 3, 2), np.float32)
        values[corner_kept] = uv[loops]
        mesh.uv_layers.new(name=name).uv.foreach_set("vector", values.ravel())
    if source.corner_normals is None:
        return False
    normals = np.zeros((len(face_source) * 3, 3), np.float32)  # zero: the corner keeps its own normal
    normals[corner_kept] = source.corner_normals[loops]
    mesh.shade_smooth()
    mesh.normals_split_custom_set(normals.tolist())
    return True


def _new_mesh(name: str, vertices: np.ndarray, faces: np.ndarray):
    faces = np.asarray(faces, np.int32).reshape(-1, 3)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(vertices, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.update()
    return mesh


def _assign_materials(mesh, source_obj, tri_materials, part) -> None:
    if tri_materials is None or not len(source_obj.material_slots):
        return
    source = np.asarray(part.face_source, np.int64)
    face_material = np.where(source >= 0, tri_materials[np.maximum(source, 0)], max(part.material_index, 0))
    used = np.unique(face_material)
    for index in used:
        mesh.materials.append(source_obj.material_slots[int(index)].material)
    mesh.polygons.foreach_set("material_index", np.searchsorted(used, face_material).astype(np.int32))
    mesh.update()


def _visible_group(obj, vertices: np.ndarray, source_vertices: np.ndarray, segment_faces: np.ndarray) -> None:
    """Vertex group of the part's vertices that lie on its visible segment (where source data applies)."""
    group = obj.vertex_groups.new(name=VISIBLE_GROUP)
    if not len(segment_faces):
        return
    tree = BVHTree.FromPolygons(source_vertices.tolist(), segment_faces.tolist(), all_triangles=True)
    size = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0))) or 1.0
    limit = VISIBLE_DISTANCE * size
    near = [i for i, v in enumerate(vertices.tolist()) if tree.find_nearest(v, limit)[0] is not None]
    if near:
        group.add(near, 1.0, "REPLACE")


def _smooth_by_angle(obj) -> None:
    """Blender's Smooth by Angle modifier (its node group from the bundled essentials assets, as the Shade
    Auto Smooth operator adds it, but without that operator's Object Mode requirement)."""
    group = bpy.data.node_groups.get(SMOOTH_BY_ANGLE)
    if group is None or group.bl_idname != "GeometryNodeTree":
        group = _essentials_node_group(SMOOTH_BY_ANGLE)
    obj.modifiers.new(SMOOTH_BY_ANGLE, "NODES").node_group = group


def _essentials_node_group(name: str):
    """Append a node group from Blender's bundled asset files (their layout differs between versions)."""
    assets = Path(bpy.utils.system_resource("DATAFILES", path="assets"))
    for path in sorted(assets.rglob("*.blend")):
        with bpy.data.libraries.load(str(path)) as (source, target):
            found = name in source.node_groups
            if found:
                target.node_groups = [name]
        if found:
            return target.node_groups[0]
    raise EngineError(f"Blender's '{name}' node group was not found in {assets}", "reinstall Blender",
                      kind="blender")


def _transfer_from_source(obj, source_obj) -> None:
    """Data Transfer of UVs and custom normals from the source onto the visible surface (the last modifier),
    for parts whose faces are all new."""
    types = {"CUSTOM_NORMAL"}
    for layer in source_obj.data.uv_layers:
        obj.data.uv_layers.new(name=layer.name)
        types.add("UV")
    modifier = obj.modifiers.new("HoloPart source data", "DATA_TRANSFER")
    modifier.object = source_obj  # in world space (use_object_transform); all UV layers, matched by name
    modifier.use_loop_data = True
    modifier.data_types_loops = types
    modifier.loop_mapping = "NEAREST_POLYNOR"  # the corner whose face best matches: never a facing-away one
    modifier.vertex_group = VISIBLE_GROUP
