"""Run HoloPart reference cases: ``python -m holopart_blender.engine.reference CASE_DIR OUT_DIR``.

``CASE_DIR`` has the structure of the shared fixtures (``model/`` in the official Hugging Face layout and
``inputs.npz`` with arrays named ``<case>.<name>``). Every case found in the inputs is computed with this
project's implementation, loading ``model/`` through the same ``from_pretrained`` as the released weights, in
float32 on the CPU; the results go to ``OUT_DIR/outputs.npz`` under the names ``expected.npz`` uses (which is
never read here). The ``schedule`` case has no inputs: it is computed for the ``sample`` case's step count and
for the default 50 steps. The command exits with status 1 if any case cannot run, after running the others.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import numpy as np
import torch

from ..core.errors import EngineError
from .holopart.loading import HoloPartModel, from_pretrained
from .holopart.pipeline import local_frame
from .holopart.scheduler import sample, schedule

DEFAULT_STEPS = 50


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
    latents = sample(m.transformer, _t(x["noise"]), _t(x["local_tokens"]), _t(x["context_tokens"]),
                     int(x["steps"]), float(x["guidance"]), m.scheduler)
    return {"latents": _np(latents)}


def _case_local_frame(m: HoloPartModel, x: dict) -> dict:
    center, scale, points = local_frame(x["points"])
    return {"center": center, "scale": np.float32(scale), "points": points}


CASES = {"embed": _case_embed, "vae_decode": _case_vae_decode, "vae_encode": _case_vae_encode,
         "part_encoder": _case_part_encoder, "transformer": _case_transformer, "sample": _case_sample,
         "local_frame": _case_local_frame}


def _schedules(m: HoloPartModel, inputs: dict) -> dict:
    counts = {DEFAULT_STEPS} | ({int(inputs["sample.steps"])} if "sample.steps" in inputs else set())
    out = {}
    for n in sorted(counts):
        timesteps, sigmas = schedule(n, m.scheduler)
        out[f"{n}.timesteps"], out[f"{n}.sigmas"] = timesteps, sigmas
    return out


def run_cases(case_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(outputs by ``<case>.<name>``, error text by case) for every case of ``case_dir``."""
    model = from_pretrained(str(case_dir / "model"))
    with np.load(case_dir / "inputs.npz") as data:
        inputs = {k: data[k] for k in data.files}
    grouped: dict[str, dict] = {}
    for key, value in inputs.items():
        case, _, name = key.partition(".")
        grouped.setdefault(case, {})[name] = value
    outputs, errors = {}, {}
    runners = {case: (lambda x, case=case: CASES[case](model, x)) if case in CASES else None for case in grouped}
    runners["schedule"] = lambda x: _schedules(model, inputs)
    for case, runner in runners.items():
        if runner is None:
            errors[case] = f"unknown case '{case}' (known: {', '.join(CASES)}, schedule)"
            continue
        try:
            with torch.inference_mode():
                result = runner(grouped.get(case, {}))
        except Exception:  # noqa: BLE001 - report every failing case, then exit non-zero
            errors[case] = traceback.format_exc()
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
        print(f"cannot run the cases: {exc.message}\n{exc.hint}", file=sys.stderr)
        return 1
    args.out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(args.out_dir / "outputs.npz", **outputs)
    print(f"{len(outputs)} arrays written to {args.out_dir / 'outputs.npz'}")
    for case, text in errors.items():
        print(f"case {case} failed:\n{text}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
