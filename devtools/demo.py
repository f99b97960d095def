"""The main demo: headless Blender completes the parts of a real asset with the default engine.

    .venv/bin/python -m devtools.demo --out out/demo

It imports the shipped example (``devtools/assets/square_table.glb``, furniture-bench, MIT) and
makes the one-piece input an artist would have: the parts joined into one mesh, each face labelled with its
part (the ``holopart_part`` attribute, part names kept), and the faces hidden inside other parts removed
(the leg tops inside the table top and the patches of the top they cover). It then runs Complete All Parts,
which completes every labelled part, and writes to ``--out``:

- ``demo.blend``: the input (hidden) and the completed parts;
- ``before_after.png``: the input's segments and the completed parts, both in an exploded view;
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

from holopart_blender.blender.labels import label_colors, read_labels

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
    from devtools import render

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
    # Before: the input split into its segments (a temporary copy), exploded like the result.
    segments = _segment_copies(source, parts)
    for segment, part in zip(segments, parts):  # the same colour for a part before and after
        segment.color = part.color = label_colors(np.array([part["holopart"]["label"]]))[0]
    moved = render.explode(segments, 0.9)
    before = render.render_view(scene, segments, args.out / "before.png", color="OBJECT")
    render.restore(moved)
    for obj in segments:
        bpy.data.objects.remove(obj)
    moved = render.explode(parts, 0.9)
    after = render.render_view(scene, parts, args.out / "after.png", color="OBJECT")
    render.restore(moved)
    render.side_by_side(before, after, args.out / "before_after.png")
    _segment_preview(scene, source, args.out / "segment_preview.png")
    bpy.ops.wm.save_as_mainfile(filepath=str((args.out / "demo.blend").resolve()))
    print(f"wrote {args.out / 'demo.blend'} and {args.out / 'before_after.png'}")
    return 0


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
