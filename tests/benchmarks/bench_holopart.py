"""HoloPart speed and peak memory: the full-size architecture with random weights (no download needed).

    .venv/bin/python tests/benchmarks/bench_holopart.py [--device auto] [--dtype auto] [--steps 50]
        [--guidance 3.5] [--parts 8] [--batch 8] [--resolution 504] [--points 20480] [--asset NAME.glb]

Runs the engine's pipeline (sampling, encoders, CFG denoising, coarse-to-fine extraction, marching cubes,
decimation) on the first ``--parts`` parts of a benchmark asset and prints seconds per part split into
encoders / denoising / extraction, the end-to-end time, the peak memory and the model FLOPs per part
(counted on the meta device). The sizes come from the fixtures' full-size manifest configs.

Speed does not depend on the weight values, with one exception: how many grid points the extraction decodes
depends on the field, and a random decoder's field is near zero everywhere (so every point would be refined).
The decoder therefore runs for real on every query point (the same cost), but the extraction is steered by
the field of a sphere of radius 0.6 in the part's local frame (about the visible segment's size), scaled so
|field| reaches 0.95 two coarse cells from the surface: a plausible, stated stand-in for a trained model.
On CPU use few steps, one part and a lower resolution, e.g. ``--steps 1 --parts 1 --resolution 126``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import BENCHMARK, REFERENCE  # noqa: E402
from holopart_blender.engine import meshfiles  # noqa: E402
from holopart_blender.engine.engines.holopart import _pick_device, _pick_dtype  # noqa: E402
from holopart_blender.engine.holopart.config import CONFIG_CLASSES, SchedulerConfig  # noqa: E402
from holopart_blender.engine.holopart.loading import HoloPartModel, build  # noqa: E402
from holopart_blender.engine.holopart.pipeline import HoloPartPipeline, SamplingSettings  # noqa: E402
from holopart_blender.core.progress import Progress  # noqa: E402

SPHERE_RADIUS, SPHERE_SLOPE = 0.6, 0.95 / (2 * 2.1 / 63)


def random_model(device, dtype) -> HoloPartModel:
    manifest = json.loads((REFERENCE / "full_size_manifest.json").read_text())
    modules = {}
    for component in ("vae", "part_encoder", "transformer"):
        with torch.device("meta"):
            module = build(component, CONFIG_CLASSES[component].from_dict(manifest[component]["config"], component))
        module.to(dtype).to_empty(device=device)
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.fill_(1.0) if "norm" in name and name.endswith("weight") else p.normal_(0.0, 0.02)
        modules[component] = module.eval().requires_grad_(False)
    return HoloPartModel(REFERENCE, modules["vae"], modules["part_encoder"], modules["transformer"],
                         SchedulerConfig(), device, dtype)


def steer_extraction(model: HoloPartModel, counter: list) -> None:
    """Decode every query for real, but return the stand-in sphere field (see the module docstring)."""
    decode = model.vae.query

    def query(cache, points):
        decode(cache, points)
        counter[0] += points.shape[1]
        return (SPHERE_SLOPE * (SPHERE_RADIUS - torch.linalg.norm(points.float(), dim=-1)))[..., None]

    model.vae.query = query


def flops_per_part(model: HoloPartModel, settings: SamplingSettings, queries: int) -> dict:
    """Model FLOPs of one part (meta device: shapes only): encoders, denoising (all steps), extraction."""
    manifest = json.loads((REFERENCE / "full_size_manifest.json").read_text())
    with torch.device("meta"):
        meta = {c: build(c, CONFIG_CLASSES[c].from_dict(manifest[c]["config"], c))
                for c in ("vae", "part_encoder", "transformer")}
        n, t = settings.points, meta["part_encoder"].config.num_tokens
        cfg = 2 if settings.guidance > 1 else 1
        latents = torch.empty(cfg, settings.latent_tokens, meta["transformer"].config.in_channels)
        ctx = torch.empty(cfg, t, meta["part_encoder"].config.dim)
        counts = {}
        for stage, run in {
            "encode": lambda: meta["part_encoder"](torch.empty(1, n, 6), torch.empty(1, n, 6), torch.empty(1, n, 7),
                                                   torch.zeros(1, t, dtype=torch.long),
                                                   torch.zeros(1, t, dtype=torch.long)),
            "denoise_step": lambda: meta["transformer"](latents, torch.empty(cfg), ctx, ctx),
            "decoder_cache": lambda: meta["vae"].kv_cache(latents[:1]),
            "query_1000": lambda: meta["vae"].query(meta["vae"].kv_cache(latents[:1]), torch.empty(1, 1000, 3)),
        }.items():
            with FlopCounterMode(display=False) as counter:
                run()
            counts[stage] = counter.get_total_flops()
    per_query = (counts["query_1000"] - counts["decoder_cache"]) / 1000
    return {"encode": counts["encode"] / 1e12, "denoise": counts["denoise_step"] * settings.steps / 1e12,
            "extract": (counts["decoder_cache"] + per_query * queries) / 1e12}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    parser.add_argument("--dtype", default="auto", choices=("auto", "float16", "bfloat16", "float32"))
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=3.5)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=504)
    parser.add_argument("--points", type=int, default=20480)
    parser.add_argument("--decimate", type=int, default=10000)
    parser.add_argument("--asset", default="holopart_output_002.glb", help="a file of the benchmark folder")
    args = parser.parse_args()

    device = _pick_device(args.device)
    dtype = _pick_dtype(args.dtype, device)
    t0 = time.perf_counter()
    model = random_model(device, dtype)
    build_seconds = time.perf_counter() - t0
    queries = [0]
    steer_extraction(model, queries)
    job = meshfiles.load_job(BENCHMARK / args.asset)
    if len(job.labels) < args.parts:
        sys.exit(f"{args.asset} has only {len(job.labels)} parts")
    usable = job.mesh.check().usable
    segments = {k: job.mesh.submesh((job.face_labels == k) & usable)[:2] for k in job.labels}
    whole = job.mesh.submesh(usable)[:2]
    settings = SamplingSettings(steps=args.steps, guidance=args.guidance, points=args.points,
                                resolution=args.resolution, batch_size=args.batch, decimate=args.decimate)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    parts = HoloPartPipeline(model).complete(whole, segments, job.labels[:args.parts], settings, Progress())
    total = time.perf_counter() - t0
    stages = {s: sum(p.timings[s] for p in parts) for s in ("encode", "denoise", "extract")}
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    report = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "dtype": str(dtype).replace("torch.", ""), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": args.steps, "guidance": args.guidance, "parts": args.parts, "batch": args.batch,
        "resolution": args.resolution, "points": args.points, "model_build_s": round(build_seconds, 2),
        "total_s": round(total, 2), "per_part_s": round(total / args.parts, 2),
        "stages_per_part_s": {s: round(v / args.parts, 3) for s, v in stages.items()},
        "other_per_part_s": round((total - sum(stages.values())) / args.parts, 3),
        "decoder_queries_per_part": queries[0] // args.parts,
        "faces_per_part": [int(len(p.faces)) for p in parts],
        "peak_memory_gb": round(peak / 2**30, 2),
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "process max RSS",
        "model_tflop_per_part": {k: round(v, 2) for k, v in
                                 flops_per_part(model, settings, queries[0] // args.parts).items()},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
