"""The main demo: headless Blender completes the parts of a real asset with the default engine.

    .venv/bin/python -m devtools.demo --out out/demo

It imports the shipped example (``devtools/assets/square_table.glb``, furniture-bench, MIT) and
makes the one-piece input an artist would have: the parts joined into one mesh, each face labelled with its
part (the ``holopart_part`` attribute, part names kept), and the faces hidden inside other parts removed
(the leg tops inside the table top and the patches of the top they cover). It then runs Complete All Parts,
which completes every labelled part, and writes to ``--out``:

- ``demo.blend``: the input (hidden) and the completed parts;
- ``before_after.png``: the input's segments and the completed parts in an exploded view, from above and from
  below, with the faces the engine added (the hidden surface) in orange and a caption;
- ``segment_preview.png``: Segment (automatic) run on an unlabelled copy of the input, its colour preview.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import bpy
import bmesh  # importable once bpy is
import numpy as np

from holopart_blender.blender.labels import read_labels

EXAMPLE = Path(__file__).resolve().parent / "assets" / "square_table.glb"


def enable_addon() -> None:
    import addon_utils

    from holopart_blender.blender.addon import PACKAGE

    addon_utils.enable(PACKAGE, default_set=True)
    if PACKAGE not in bpy.context.preferences.addons:
        raise RuntimeError(f"could not enable the add-on {PACKAGE}")


def import_one_piece(path: Path, name: str):
    """Import a parts scene and join it into one mesh object, without the faces hidden inside other parts.
    Each face keeps the part it came from in the part attribute, and the parts' names are kept."""
    bpy.ops.import_scene.gltf(filepath=str(path), merge_vertices=True)
    from holopart_blender.blender.labels import NAMES_PROPERTY, write_labels
    from devtools.render import world_bounds

    parts = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    boxes = [world_bounds([obj]) for obj in parts]
    names = {str(i): obj.name.removeprefix(f"{name}_") for i, obj in enumerate(parts)}
    for i, obj in enumerate(parts):
        bm = bmesh.new()
        bm.from_mesh(obj.data)
        matrix = obj.matrix_world
        centers = np.array([tuple(matrix @ f.calc_center_median()) for f in bm.faces])
        inside = np.zeros(len(centers), bool)
        for j, (low, high) in enumerate(boxes):
            if j != i:
                inside |= np.all((centers > low) & (centers < high), axis=1)
        bmesh.ops.delete(bm, geom=[f for f, hide in zip(bm.faces, inside) if hide], context="FACES")
        bm.to_mesh(obj.data)
        bm.free()
        write_labels(obj.data, np.full(len(obj.data.polygons), i, np.int32))
    with bpy.context.temp_override(active_object=parts[0], selected_editable_objects=parts, selected_objects=parts):
        bpy.ops.object.join()
    bpy.data.orphans_purge(do_recursive=True)  # the joined-away objects, whose names the parts will take
    whole = parts[0]
    whole.name = whole.data.name = name
    # The file's vertex normals, averaged by the vertex merge, shade flat faces unevenly: use Blender's own.
    with bpy.context.temp_override(object=whole, active_object=whole):
        bpy.ops.mesh.customdata_custom_splitnormals_clear()
    whole.data.set_sharp_from_angle(angle=math.radians(30))
    whole.data[NAMES_PROPERTY] = names
    material = bpy.data.materials.new("Wood")
    material.diffuse_color = (0.55, 0.35, 0.2, 1.0)
    whole.data.materials.clear()
    whole.data.materials.append(material)
    return whole


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--asset", type=Path, default=EXAMPLE, help="a .glb with one node per part")
    parser.add_argument("--engine", default="PREFERENCES", help="completion engine (default: the preferences' auto)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    enable_addon()
    scene = bpy.context.scene
    source = import_one_piece(args.asset, args.asset.stem)
    print(f"input: '{source.name}', one mesh of {len(source.data.polygons)} faces")
    bpy.context.view_layer.objects.active = source
    source.select_set(True)
    t0 = time.perf_counter()
    if bpy.ops.holopart.complete_all(engine=args.engine) != {"FINISHED"}:
        print("Complete All failed (see the report above)", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    parts = list(bpy.data.collections[f"{source.name} parts"].objects)
    for obj in parts:
        info = obj["holopart"]
        print(f"  {obj.name}: {len(obj.data.polygons)} faces, engine {info['engine']}, watertight {info['watertight']}")
    print(f"completed {len(parts)} parts in {seconds:.1f} s")
    _before_after(scene, source, parts, args.out, f"{len(parts)} part(s) with {parts[0]['holopart']['engine']}")
    _segment_preview(scene, source, args.out / "segment_preview.png")
    bpy.ops.wm.save_as_mainfile(filepath=str((args.out / "demo.blend").resolve()))
    print(f"wrote {args.out / 'demo.blend'} and {args.out / 'before_after.png'}")
    return 0


KEPT, ADDED = (0.42, 0.55, 0.72, 1.0), (1.0, 0.42, 0.0, 1.0)  # the pictures' colours of input and added faces


def _before_after(scene, source, parts, out: Path, run: str) -> Path:
    """The input's segments beside the completed parts, exploded, from above and below: the faces the engine
    added in orange, the faces it took from the input in blue."""
    from devtools import render

    kept = bpy.data.materials.new("holopart demo input faces")
    kept.diffuse_color = KEPT
    added = bpy.data.materials.new("holopart demo added faces")
    added.diffuse_color = ADDED
    segments = _segment_copies(source, parts)
    completed = []
    for part in parts:  # copies: the parts in demo.blend stay as Complete All made them
        copy = part.copy()
        copy.data = part.data.copy()
        scene.collection.objects.link(copy)
        completed.append(copy)
    counts = []
    for obj in segments + completed:
        new = _added_faces(source, obj) if obj in completed else np.zeros(len(obj.data.polygons), bool)
        counts.append(int(new.sum()))
        obj.data.materials.clear()
        obj.data.materials.append(kept)
        obj.data.materials.append(added)
        obj.data.polygons.foreach_set("material_index", new.astype(np.int32))
    renders = []
    for direction, side in ((render.ABOVE, "above"), (render.BELOW, "below")):
        row = []
        for objects, name in ((segments, "input segments"), (completed, "completed parts")):
            moved = render.explode(objects, 0.6)
            path = render.render_view(scene, objects, out / f"{name.split()[0]}_{side}.png", color="MATERIAL",
                                      direction=direction)
            render.restore(moved)
            row.append((path, f"{name}, from {side}"))
        renders.append(row)
    for obj in segments + completed:
        mesh = obj.data
        bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
    bpy.data.materials.remove(kept)
    bpy.data.materials.remove(added)
    caption = (f"Complete All Parts on the one-piece {source.name} ({run}), parts pulled apart. Orange: the surface "
               f"the engine added where parts hid each other ({sum(counts)} faces); blue: the input's faces.")
    return render.grid(renders, out / "before_after.png", caption)


def _added_faces(source, part) -> np.ndarray:
    """Per face of ``part``: True where it is none of the source's triangles (corners compared in the source's
    frame, which the part shares, to 1e-6 of the source's size)."""
    size = max(float(np.ptp(_coordinates(source.data), axis=0).max()), 1e-12)
    source_corners, _ = _triangle_corners(source.data, size)
    part_corners, polygon = _triangle_corners(part.data, size)
    known = set(source_corners)
    added = np.zeros(len(part.data.polygons), bool)
    added[polygon[[corners not in known for corners in part_corners]]] = True
    return added


def _coordinates(mesh) -> np.ndarray:
    co = np.zeros(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


def _triangle_corners(mesh, size: float) -> tuple[list[tuple], np.ndarray]:
    """Each of the mesh's triangles as its sorted, rounded corner positions, and the polygon it belongs to."""
    mesh.calc_loop_triangles()
    triangles = np.zeros(len(mesh.loop_triangles) * 3, np.int64)
    mesh.loop_triangles.foreach_get("vertices", triangles)
    polygon = np.zeros(len(mesh.loop_triangles), np.int64)
    mesh.loop_triangles.foreach_get("polygon_index", polygon)
    corners = np.round(_coordinates(mesh)[triangles.reshape(-1, 3)] / size, 6)
    return [tuple(sorted(map(tuple, t))) for t in corners], polygon


def _segment_preview(scene, source, path: Path) -> None:
    """Run Segment (automatic) on an unlabelled copy of the input and render its colour preview."""
    from devtools import render
    from holopart_blender.blender.labels import COLOR_ATTRIBUTE, LABEL_ATTRIBUTE

    copy = source.copy()
    copy.data = source.data.copy()
    copy.name = f"{source.name} segmented"
    scene.collection.objects.link(copy)
    copy.data.attributes.remove(copy.data.attributes[LABEL_ATTRIBUTE])
    copy.data.color_attributes.remove(copy.data.color_attributes[COLOR_ATTRIBUTE])
    bpy.context.view_layer.objects.active = copy
    bpy.ops.holopart.segment()
    print(f"Segment found {len(set(read_labels(copy.data).tolist()) - {-1})} parts on an unlabelled copy")
    render.render_view(scene, [copy], path, color="VERTEX")
    bpy.data.objects.remove(copy)


def _segment_copies(source, parts) -> list:
    """Temporary objects holding the input faces of each completed part (for the 'before' picture)."""
    copies = []
    for part in parts:
        label = part["holopart"]["label"]
        mesh = source.data.copy()
        bm = bmesh.new()
        bm.from_mesh(mesh)
        tagged = _segment_faces(source, label)
        bmesh.ops.delete(bm, geom=[f for f in bm.faces if not tagged[f.index]], context="FACES")
        bm.to_mesh(mesh)
        bm.free()
        obj = bpy.data.objects.new(f"{part.name} input", mesh)
        obj.matrix_world = source.matrix_world
        bpy.context.scene.collection.objects.link(obj)
        copies.append(obj)
    return copies


def _segment_faces(source, label: int) -> np.ndarray:
    return read_labels(source.data) == label


if __name__ == "__main__":
    sys.exit(main())
