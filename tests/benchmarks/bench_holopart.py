"""HoloPart speed and peak memory: the full-size architecture with random weights (no download needed).

    .venv/bin/python tests/benchmarks/bench_holopart.py [--device auto] [--dtype auto] [--parts 8]
        [--asset NAME.glb] [--steps N] [--guidance G] [--batch-size B] [--resolution R] [--points P]
        [--decimate F]

(the sampling options default to the engine's settings).

Runs the engine's pipeline (sampling, encoders, CFG denoising, coarse-to-fine extraction, marching cubes,
decimation) on the first ``--parts`` parts of a benchmark asset and prints seconds per part split into
encoders / denoising / extraction, the end-to-end time, the peak memory and the model FLOPs per part
(counted on the meta device). The sizes are the released configuration: the fixtures' full-size manifest
configs with the released part encoder's ``num_tokens`` 2048 (the manifest holds the code default 512), so
each condition is 2048 tokens drawn as 8192 indices and FPS 1/4.

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
from holopart_blender.engine.engines.holopart import _pick_device, _pick_dtype, sampling_settings  # noqa: E402
from holopart_blender.engine.holopart.config import CONFIG_CLASSES, SchedulerConfig  # noqa: E402
from holopart_blender.engine.holopart.loading import HoloPartModel, build  # noqa: E402
from holopart_blender.engine.holopart.pipeline import HoloPartPipeline, SamplingSettings  # noqa: E402
from holopart_blender.core.progress import Progress  # noqa: E402

SPHERE_RADIUS, SPHERE_SLOPE = 0.6, 0.95 / (2 * 2.1 / 63)
RELEASED_TOKENS = 2048  # num_tokens of the released part_encoder/config.json (shared/docs/holopart-reference.md)


def released_configs() -> dict:
    """The full-size component configs as released."""
    manifest = json.loads((REFERENCE / "full_size_manifest.json").read_text())
    configs = {c: dict(manifest[c]["config"]) for c in ("vae", "part_encoder", "transformer")}
    configs["part_encoder"]["num_tokens"] = RELEASED_TOKENS
    return {c: CONFIG_CLASSES[c].from_dict(config, c) for c, config in configs.items()}


def random_model(device, dtype) -> HoloPartModel:
    modules = {}
    for component, config in released_configs().items():
        with torch.device("meta"):
            module = build(component, config)
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
    with torch.device("meta"):
        meta = {c: build(c, config) for c, config in released_configs().items()}
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
    # Sampling options left out take the engine's defaults.
    for option, kind in (("steps", int), ("guidance", float), ("batch_size", int), ("resolution", int),
                         ("points", int), ("decimate", int)):
        parser.add_argument(f"--{option.replace('_', '-')}", dest=option, type=kind)
    parser.add_argument("--parts", type=int, default=8)
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
    settings = sampling_settings({k: v for k, v in vars(args).items()
                                  if k in ("steps", "guidance", "batch_size", "resolution", "points", "decimate")
                                  and v is not None})
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
        "steps": settings.steps, "guidance": settings.guidance, "parts": args.parts, "batch": settings.batch_size,
        "resolution": settings.resolution, "points": settings.points,
        "condition_tokens": model.part_encoder.config.num_tokens, "model_build_s": round(build_seconds, 2),
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
