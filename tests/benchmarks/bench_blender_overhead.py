"""What the Blender side costs around an engine run, on the benchmark assets joined into one mesh.

    .venv/bin/python tests/benchmarks/bench_blender_overhead.py [--assets square_table chair ...]

For each asset: reading the evaluated mesh into a job (``export.read_source``), the whole Complete All
operator with the ``visible`` engine (which returns the input segments, so the engine's own time is nearly
nothing and the result is as large as the input), and within it the building of the result objects
(``reimport.build_parts``). Runs Blender (the bpy module) in this process with a temporary user folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="holopart-bench-"))

import bpy  # noqa: E402
import addon_utils  # noqa: E402  (importable once bpy is)

from holopart_blender.blender import export, labels, operators  # noqa: E402


def joined(path: Path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("holopart_blender", default_set=True)
    bpy.ops.import_scene.gltf(filepath=str(path), merge_vertices=True)
    objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    for i, obj in enumerate(objs):  # each part labelled, as after Segment
        labels.write_labels(obj.data, [i] * len(obj.data.polygons))
    with bpy.context.temp_override(active_object=objs[0], selected_editable_objects=objs):
        bpy.ops.object.join()
    bpy.context.view_layer.objects.active = objs[0]
    return objs[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", nargs="+", default=["square_table", "chair", "holopart_output_002"])
    parser.add_argument("--shared", type=Path, default=Path(os.environ.get("HOLOPART_SHARED", ROOT.parent / "shared")))
    args = parser.parse_args()
    build_seconds = []
    original = operators.build_parts

    def timed_build(*a, **k):
        t0 = time.perf_counter()
        out = original(*a, **k)
        build_seconds.append(time.perf_counter() - t0)
        return out

    operators.build_parts = timed_build  # the name the operators call
    print(f"{'asset':22s} {'faces':>8s} {'parts':>5s} {'read s':>7s} {'operator s':>10s} {'build s':>8s}")
    for name in args.assets:
        src = joined(args.shared / "benchmark" / "parts" / f"{name}.glb")
        t0 = time.perf_counter()
        export.read_source(src, bpy.context.evaluated_depsgraph_get(), "attribute")
        read = time.perf_counter() - t0
        bpy.ops.holopart.complete_all(engine="visible")  # first call starts the worker; not timed
        bpy.data.collections.remove(bpy.data.collections[f"{src.name} parts"])
        src.hide_set(False)
        t0 = time.perf_counter()
        bpy.ops.holopart.complete_all(engine="visible")
        total = time.perf_counter() - t0
        parts = len(bpy.data.collections[f"{src.name} parts"].objects)
        print(f"{name:22s} {len(src.data.polygons):8d} {parts:5d} {read:7.3f} {total:10.3f} {build_seconds[-1]:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
