"""Completed parts into the scene: one new object per part, with the source's transform, materials, UVs
and custom normals (see ``build_parts``)."""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix
from mathutils.bvhtree import BVHTree

from ..core.errors import InputError
from ..core.partjob import JobResult
from .export import SourceMesh

VISIBLE_GROUP = "holopart_visible"
SMOOTH_BY_ANGLE = "Smooth by Angle"
SMOOTH_ANGLE = math.radians(30.0)  # Smooth by Angle's default
SOURCE_PROPERTY = "holopart_source"  # on a parts collection: the name of the source it holds the parts of
ROLLBACK = ("objects", "meshes", "collections", "node_groups")  # what a failed build removes again
_missing_assets: set[str] = set()  # node groups this Blender's bundled assets lack
# A result vertex closer than this share of its part's size to the source surface counts as visible.
VISIBLE_DISTANCE = 0.01


def build_parts(context, source_obj, source: SourceMesh, result: JobResult,
                replace: bool = False) -> tuple[bpy.types.Collection, list]:
    """One object per completed part, in the source's parts collection.

    The collection is the one an earlier run made for this source (its ``holopart_source`` property names
    the source), else a new ``<source> parts``. ``replace`` (Complete All) removes the parts earlier runs
    made from this source there; otherwise (Complete Part) the new parts join them. Everything is built
    first and linked into the scene last; a failure removes what was built, so the scene stays as it was.
    Then the source is hidden, the new parts are selected and the first is active.

    Each part gets the source's transform (the world-space result is brought back into the source's
    local frame), the material slots of the faces it came from (``face_source`` for kept faces, the
    segment's majority for new ones) and the source's UVs and custom normals. Faces the engine kept
    (``face_source >= 0``) take UVs and custom normals exactly from the face corners they reproduce; a part
    the engine remeshed (no kept face) gets a Data Transfer modifier of UVs and custom normals from the
    source instead, limited to the vertices on its visible surface. Parts without custom normals are
    smoothed by angle (see ``_smooth_by_angle``). The source is otherwise left alone.
    """
    world = Matrix(source_obj.matrix_world)
    if abs(world.determinant()) < 1e-12:
        raise InputError(f"'{source_obj.name}' has a zero scale", "fix the object's scale (Object > Apply > Scale)")
    before = {name: set(getattr(bpy.data, name)) for name in ROLLBACK}
    try:
        collection = _parts_collection(source_obj)
        objects = [_build_part(source_obj, source, part, world) for part in result.parts]
    except Exception:
        _remove_new(before)
        raise
    if collection.name not in context.scene.collection.children:
        context.scene.collection.children.link(collection)
    if replace:
        for old in [o for o in collection.objects if o.get("holopart", {}).get("source") == source_obj.name]:
            mesh = old.data
            bpy.data.objects.remove(old)
            if mesh.users == 0:
                bpy.data.meshes.remove(mesh)
        for obj, part in zip(objects, result.parts):  # built while the old names were taken
            obj.name = obj.data.name = _part_name(source_obj, part)
    for obj in objects:
        collection.objects.link(obj)
    source_obj.hide_set(True)
    layer = context.view_layer
    for obj in layer.objects.selected:
        obj.select_set(False)
    shown = [obj for obj in objects if obj.name in layer.objects]  # not when the collection is excluded
    for obj in shown:
        obj.select_set(True)
    layer.objects.active = shown[0] if shown else None
    return collection, objects


def _parts_collection(source_obj):
    """The collection of the source's parts: an earlier run's, or a new one (not yet in the scene)."""
    for collection in bpy.data.collections:
        if collection.get(SOURCE_PROPERTY) == source_obj.name and collection.library is None:
            return collection
    collection = bpy.data.collections.new(f"{source_obj.name} parts")
    collection[SOURCE_PROPERTY] = source_obj.name
    return collection


def _build_part(source_obj, source: SourceMesh, part, world):
    """The object of one part, in no collection yet."""
    inverse = np.array(world.inverted(), np.float64)
    job_mesh = source.job.mesh
    vertices = np.asarray(part.vertices, np.float64) @ inverse[:3, :3].T + inverse[:3, 3]
    mesh = _new_mesh(_part_name(source_obj, part), vertices, part.faces)
    _assign_materials(mesh, source_obj, job_mesh.face_materials, part)
    obj = bpy.data.objects.new(mesh.name, mesh)
    obj.matrix_world = world
    obj["holopart"] = {"source": source_obj.name, "label": part.label, "engine": part.engine,
                       "watertight": part.watertight, "source_faces": part.source_faces}
    face_source = np.asarray(part.face_source, np.int64)
    if (face_source >= 0).any():
        if not _copy_corner_data(mesh, source, face_source):
            _smooth_by_angle(obj)
    else:
        local_source = job_mesh.vertices @ inverse[:3, :3].T + inverse[:3, 3]
        _visible_group(obj, vertices, local_source, job_mesh.faces[source.job.face_labels == part.label])
        _smooth_by_angle(obj)
        _transfer_from_source(obj, source_obj)
    return obj


def _part_name(source_obj, part) -> str:
    return f"{source_obj.name}_{part.name}"


def _remove_new(before: dict) -> None:
    """Remove the data-blocks made since ``before`` (objects first, so their meshes lose their users)."""
    for name in ROLLBACK:
        blocks = getattr(bpy.data, name)
        for block in [b for b in blocks if b not in before[name]]:
            blocks.remove(block)


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
    Auto Smooth operator adds it, but without that operator's Object Mode requirement). Where the assets
    are missing (some distribution builds), the mesh itself is shaded smooth with sharp edges by angle."""
    group = bpy.data.node_groups.get(SMOOTH_BY_ANGLE)
    if group is None or group.bl_idname != "GeometryNodeTree":
        group = _essentials_node_group(SMOOTH_BY_ANGLE)
    if group is None:
        obj.data.shade_smooth()
        obj.data.set_sharp_from_angle(angle=SMOOTH_ANGLE)
        return
    obj.modifiers.new(SMOOTH_BY_ANGLE, "NODES").node_group = group


def _essentials_node_group(name: str):
    """Append a node group from Blender's bundled asset files (their layout differs between versions);
    None when no asset file has it."""
    if name in _missing_assets:
        return None
    folder = bpy.utils.system_resource("DATAFILES", path="assets")  # "" where the build has none
    assets = Path(folder) if folder else None
    for path in sorted(assets.rglob("*.blend")) if assets is not None and assets.is_dir() else ():
        try:
            with bpy.data.libraries.load(str(path)) as (source, target):
                found = name in source.node_groups
                if found:
                    target.node_groups = [name]
        except OSError:  # a file this Blender cannot read (from a newer version): not the one wanted
            continue
        if found:
            return target.node_groups[0]
    _missing_assets.add(name)  # the bundled assets do not change while Blender runs
    return None


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
