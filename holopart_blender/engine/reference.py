"""Run HoloPart reference cases: ``python -m holopart_blender.engine.reference CASE_DIR OUT_DIR``.

``CASE_DIR`` has the structure of the shared fixtures (``model/`` in the official Hugging Face layout and
``inputs.npz`` with arrays named ``<case>.<name>``). Every case found in the inputs is computed with this
project's implementation, loading ``model/`` through the same ``from_pretrained`` as the released weights, in
float32 on the CPU; the results go to ``OUT_DIR/outputs.npz`` under the names ``expected.npz`` uses (which is
never read here). Component cases are named after the component (``embed``, ``sample``, ...); with them comes
the ``schedule`` case, which has no inputs and is computed for the ``sample`` case's step count and for the
default step count. A case whose inputs hold ``whole.faces`` and ``completed`` is a pipeline case: the whole
path from meshes and their injected surface samples, query pre-draws and noise to the extracted vertices
(``pipeline_case``). The command exits with status 1 and one line per failing case if any case cannot run,
after running the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from ..core.errors import EngineError
from ..core.progress import Progress
from .engines.holopart import sampling_settings
from .holopart.loading import HoloPartModel, from_pretrained
from .holopart.pipeline import (denoise, extract_field, field_query, lattice_coordinates, lattice_mesh,
                                local_frame, nearest_labels, object_frame, part_conditions, query_chunk,
                                query_indices, surface_box)
from .holopart.scheduler import schedule


class _MissingInput(Exception):
    pass


class _Inputs(dict):
    """A case's inputs by name; a missing one raises ``_MissingInput`` (reported as such)."""

    def __missing__(self, name: str):
        raise _MissingInput(name)


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy()


def _case_embed(m: HoloPartModel, x: dict) -> dict:
    return {"out": _np(m.vae.embedder(_t(x["points"])))}


def _case_vae_decode(m: HoloPartModel, x: dict) -> dict:
    return {"out": _np(m.vae.decode(_t(x["latents"]), _t(x["queries"])))}


def _case_vae_encode(m: HoloPartModel, x: dict) -> dict:
    if not hasattr(m.vae, "encoder"):
        raise ValueError("the VAE weights hold no encoder")
    mean, logvar = m.vae.encode(_t(x["points"]), _t(x["query_idx"]))
    return {"mean": _np(mean), "logvar": _np(logvar)}


def _case_part_encoder(m: HoloPartModel, x: dict) -> dict:
    context, local = m.part_encoder(_t(x["part"]), _t(x["part_local"]), _t(x["whole"]),
                                    _t(x["context_query_idx"]), _t(x["local_query_idx"]))
    return {"context_tokens": _np(context), "local_tokens": _np(local)}


def _case_transformer(m: HoloPartModel, x: dict) -> dict:
    out = m.transformer(_t(x["latents"]), _t(x["timestep"]), _t(x["local_tokens"]), _t(x["context_tokens"]))
    return {"out": _np(out)}


def _case_sample(m: HoloPartModel, x: dict) -> dict:
    latents = denoise(m, _t(x["noise"]), _t(x["local_tokens"]), _t(x["context_tokens"]), int(x["steps"]),
                      float(x["guidance"]))
    return {"latents": _np(latents)}


def _case_local_frame(m: HoloPartModel, x: dict) -> dict:
    center, scale, points = local_frame(x["points"])
    return {"center": center, "scale": np.float32(scale), "points": points}


CASES = {"embed": _case_embed, "vae_decode": _case_vae_decode, "vae_encode": _case_vae_encode,
         "part_encoder": _case_part_encoder, "transformer": _case_transformer, "sample": _case_sample,
         "local_frame": _case_local_frame}


def _trajectory(m: HoloPartModel, noise: torch.Tensor, local, context, steps: int, guidance: float) -> dict:
    steps_out = [noise]
    latents = denoise(m, noise, local, context, steps, guidance, lambda i, n, x: steps_out.append(x))
    return {"trajectory": _np(torch.stack(steps_out)), "latents": _np(latents)}


def _extract(m: HoloPartModel, latents: torch.Tensor, resolution: int) -> tuple[list, torch.Tensor]:
    """[(field with NaN where not decoded, decoded set) per level], and the final lattice field."""
    levels = []

    def record(level, values, decoded):
        levels.append((_np(torch.where(decoded, values, torch.nan)), decoded.cpu().numpy().copy()))

    values = extract_field(field_query(m, latents), resolution, m.device,
                           query_chunk(m.device, m.vae.config.width_decoder, m.dtype), Progress(), record)
    return levels, values


def pipeline_case(m: HoloPartModel, x: dict) -> dict:
    """One run of the whole path with the case's random draws injected.

    Inputs (per segment ``i`` and ``whole``): meshes, surface samples (points, face normals); ``completed``
    (segments completed, one row each); the shared query pre-draws, the noise, steps, guidance, the final
    lattice resolution and the official mapping's ``octree_depth``; which rows have grids and meshes
    stored; optionally a second guidance and a second extraction of one row. The object is normalised as
    in the pipeline; frames and vertices are given back in the input's frame."""
    center, scale = object_frame(x["whole.vertices"][np.unique(x["whole.faces"])])
    norm = lambda p: ((np.asarray(p, np.float64) - center) * scale).astype(np.float32)  # noqa: E731
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    clouds = {i: (norm(x[f"segment{i}.sample_points"]), f32(x[f"segment{i}.sample_normals"]))
              for i in range(len(x["segment_names"]))}
    whole_points, whole_normals = norm(x["whole.sample_points"]), f32(x["whole.sample_normals"])
    owner = nearest_labels(whole_points, [c[0] for c in clouds.values()])
    rows = [int(k) for k in x["completed"]]
    c = part_conditions(clouds, whole_points, whole_normals, owner, rows)
    frame_center = np.stack([f[0] for f in c.frames]).astype(np.float64) / scale + center
    frame_scale = np.array([f[1] for f in c.frames]) / scale
    out = {"prepare.whole_label": np.asarray(list(clouds))[owner], "prepare.part_cond": c.part,
           "prepare.part_local_cond": c.part_local, "prepare.whole_cond": c.whole,
           "prepare.part_mask": c.whole[..., 6], "prepare.part_center": frame_center.astype(np.float32),
           "prepare.part_scale": frame_scale.astype(np.float32)}

    part, part_local, whole = _t(c.part), _t(c.part_local), _t(c.whole)
    context_idx = query_indices(part[..., :3], _t(x["context_predraw"]).repeat(len(rows), 1))
    local_idx = query_indices(part_local[..., :3], _t(x["local_predraw"]).repeat(len(rows), 1))
    context, local = m.part_encoder(part, part_local, whole, context_idx, local_idx)
    out.update({"encode.context_query_idx": context_idx.numpy(), "encode.local_query_idx": local_idx.numpy(),
                "encode.context_tokens": _np(context), "encode.local_tokens": _np(local)})

    noise, steps = _t(x["noise"]), int(x["steps"])
    sampled = _trajectory(m, noise, local, context, steps, float(x["guidance"]))
    out.update({f"sample.{k}": v for k, v in sampled.items()})
    if "guidance_2" in x:
        out.update({f"sample_g2.{k}": v for k, v in
                    _trajectory(m, noise, local, context, steps, float(x["guidance_2"])).items()})

    latents = _t(sampled["latents"])
    resolution, divisor = int(x["resolution"]), 2 ** int(x["octree_depth"])
    grids, meshes = {int(b) for b in x["grid_parts"]}, {int(b) for b in x["mesh_parts"]}
    for b in sorted(grids | meshes):
        levels, values = _extract(m, latents[b:b + 1], resolution)
        if b in grids:
            out.update({f"part{b}.extract.coarse_field": levels[0][0], f"part{b}.extract.final_field": levels[-1][0],
                        f"part{b}.extract.final_decoded": levels[-1][1]})
        if b in meshes:
            vertices, faces = lattice_mesh(surface_box(values))
            place = lambda local_vertices: local_vertices * frame_scale[b] + frame_center[b]  # noqa: E731
            official = (vertices / divisor * 2.1 - 1.05).astype(np.float32).astype(np.float64)
            out.update({f"part{b}.mesh.lattice_vertices": vertices.astype(np.float32), f"part{b}.mesh.faces": faces,
                        f"part{b}.mesh.object_vertices_official": place(official),
                        f"part{b}.mesh.object_vertices_exact": place(lattice_coordinates(vertices, resolution))})
    if "depth2_part" in x:
        b = int(x["depth2_part"])
        levels, _ = _extract(m, latents[b:b + 1], int(x["resolution_2"]))
        names = [f"level{i}" for i in range(1, len(levels) - 1)] + ["final"]
        for name, (field, decoded) in zip(names, levels[1:]):
            out.update({f"depth2_part{b}.extract.{name}_field": field,
                        f"depth2_part{b}.extract.{name}_decoded": decoded})
    return out


def _is_pipeline_case(x: dict) -> bool:
    return "whole.faces" in x and "completed" in x


def _schedules(m: HoloPartModel, inputs: dict) -> dict:
    counts = {sampling_settings({}).steps} | ({int(inputs["sample.steps"])} if "sample.steps" in inputs else set())
    out = {}
    for n in sorted(counts):
        timesteps, sigmas = schedule(n, m.scheduler)
        out[f"{n}.timesteps"], out[f"{n}.sigmas"] = timesteps, sigmas
    return out


def run_cases(case_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs by ``<case>.<name>``, error text by case) for every case of ``case_dir``."""
    if not (case_dir / "inputs.npz").is_file():
        raise EngineError(f"{case_dir} has no inputs.npz", "give a folder with model/ and inputs.npz")
    model = from_pretrained(str(case_dir / "model"))
    with np.load(case_dir / "inputs.npz") as data:
        inputs = {k: data[k] for k in data.files}
    grouped: dict[str, dict] = {}
    for key, value in inputs.items():
        case, _, name = key.partition(".")
        grouped.setdefault(case, _Inputs())[name] = value
    outputs, errors = {}, {}
    runners = {}
    for case, x in grouped.items():
        if case in CASES:
            runners[case] = lambda x, case=case: CASES[case](model, x)
        elif _is_pipeline_case(x):
            runners[case] = lambda x: pipeline_case(model, x)
        else:
            runners[case] = None
    if any(case in CASES for case in grouped):
        runners["schedule"] = lambda x: _schedules(model, inputs)
    for case, runner in runners.items():
        if runner is None:
            errors[case] = (f"unknown case (known: {', '.join(CASES)}, schedule, or a pipeline case with "
                            "whole.faces and completed)")
            continue
        try:
            with torch.inference_mode():
                result = runner(grouped.get(case, {}))
        except _MissingInput as exc:
            errors[case] = f"missing input '{exc.args[0]}'"
            continue
        except Exception as exc:  # noqa: BLE001 - report every failing case, then exit non-zero
            errors[case] = f"{type(exc).__name__}: {exc}"
            continue
        outputs.update({f"{case}.{name}": np.asarray(value) for name, value in result.items()})
    return outputs, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m holopart_blender.engine.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        outputs, errors = run_cases(args.case_dir)
    except EngineError as exc:
        print(f"cannot run the cases: {exc.message} ({exc.hint})", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(args.out_dir / "outputs.npz", **outputs)
    print(f"{len(outputs)} arrays written to {args.out_dir / 'outputs.npz'}")
    for case, text in errors.items():
        print(f"case {case} failed: {text}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
