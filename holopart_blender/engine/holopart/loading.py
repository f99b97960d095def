"""Loading HoloPart weights: a local folder in the official Hugging Face layout, or a hub repo id.

Layout: ``model_index.json``; ``vae/``, ``part_encoder/``, ``transformer/`` each with ``config.json`` and
``diffusion_pytorch_model.safetensors``; ``scheduler/scheduler_config.json``. The architecture is built from
the configs on the meta device, every tensor name, shape and dtype in the files is checked against it (all
mismatches are reported together) before anything is loaded, then tensors are copied in one at a time.
Only safetensors are read: pickle checkpoints (``.bin``, ``.pt``, ``.ckpt``, ...) can run code when loaded
and are refused. A hub repo id is downloaded with huggingface_hub only when the caller allows network access;
otherwise only its local cache is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...core.errors import WeightsError
from .config import COMPONENTS, WEIGHT_FILE, SchedulerConfig, read_config, read_json
from .files import DEFAULT_REPO, DOWNLOAD_HINT, MODULE_COMPONENTS, check_files, resolve_weights
from .part_encoder import PartEncoder
from .transformer import Transformer
from .vae import VAE

FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")


@dataclass
class HoloPartModel:
    """The loaded modules, the scheduler config and where they came from."""

    folder: Path
    vae: VAE
    part_encoder: PartEncoder
    transformer: Transformer
    scheduler: SchedulerConfig
    device: torch.device
    dtype: torch.dtype


def _file_tensors(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for damaged headers
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}",
                           "the download is damaged or incomplete; download the weights again") from exc


def compare_tensors(module: nn.Module, tensors: dict[str, tuple[tuple[int, ...], str]], component: str) -> list[str]:
    """Every difference between the module's state dict and a file's tensors, one line each."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    problems = [f"{component}: missing tensor {k} {list(s)}" for k, s in expected.items() if k not in tensors]
    problems += [f"{component}: unexpected tensor {k} {list(s)}" for k, (s, _) in tensors.items() if k not in expected]
    problems += [f"{component}: {k} has shape {list(tensors[k][0])}, the architecture needs {list(s)}"
                 for k, s in expected.items() if k in tensors and tensors[k][0] != s]
    problems += [f"{component}: {k} has dtype {d}, a float type is needed"
                 for k, (_, d) in tensors.items() if k in expected and d not in FLOAT_DTYPES]
    return problems


def build(component: str, config, vae_encoder: bool = True) -> nn.Module:
    """The architecture of one component from its config (on the current default device)."""
    if component == "vae":
        return VAE(config, with_encoder=vae_encoder)
    return {"part_encoder": PartEncoder, "transformer": Transformer}[component](config)


def _has_vae_encoder(tensors: dict) -> bool:
    """The released VAE file may or may not hold the encoder (unused at inference): follow the file."""
    return any(k.startswith(("encoder.", "quant.")) for k in tensors)


def _report(problems: list[str], folder: Path) -> None:
    if problems:
        shown = problems[:40] + ([f"... and {len(problems) - 40} more"] if len(problems) > 40 else [])
        raise WeightsError(f"the weights in {folder} do not fit the architecture their configs describe "
                           f"({len(problems)} problem(s)):\n" + "\n".join(shown),
                           "these are not HoloPart weights, or the download is damaged; download them again")


def _resolve_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[str(dtype)]
    except KeyError:
        raise WeightsError(f"unknown dtype '{dtype}'", "use float16, bfloat16 or float32") from None


def load_folder(folder: Path, device="cpu", dtype=torch.float32) -> HoloPartModel:
    """Check ``folder`` completely, then load it onto ``device`` in ``dtype``."""
    from safetensors import safe_open
    device, dtype = torch.device(device), _resolve_dtype(dtype)
    missing = check_files(folder)
    if missing:
        raise WeightsError(f"the weight folder {folder} is incomplete: missing {', '.join(missing)}", DOWNLOAD_HINT)
    index = read_json(folder / "model_index.json")
    absent = [c for c in COMPONENTS if c not in index]
    if absent:
        raise WeightsError(f"{folder / 'model_index.json'} names no {', '.join(absent)} component",
                           "this is not a HoloPart pipeline folder")
    configs = {c: read_config(folder, c) for c in COMPONENTS}
    files = {c: _file_tensors(folder / c / WEIGHT_FILE) for c in MODULE_COMPONENTS}
    with torch.device("meta"):
        modules = {c: build(c, configs[c], _has_vae_encoder(files["vae"])) for c in MODULE_COMPONENTS}
    _report([p for c in MODULE_COMPONENTS for p in compare_tensors(modules[c], files[c], c)], folder)
    for component, module in modules.items():
        module.to(dtype).to_empty(device=device)
        params = dict(module.state_dict(keep_vars=True))
        with torch.no_grad(), safe_open(str(folder / component / WEIGHT_FILE), framework="pt") as f:
            for name in f.keys():
                params[name].copy_(f.get_tensor(name))
        module.eval().requires_grad_(False)
    return HoloPartModel(folder, modules["vae"], modules["part_encoder"], modules["transformer"],
                         configs["scheduler"], device, dtype)


def from_pretrained(path_or_repo_id: str = DEFAULT_REPO, revision: str | None = None,
                    cache_dir: str | os.PathLike | None = None, allow_network: bool = False,
                    device="cpu", dtype=torch.float32) -> HoloPartModel:
    """Load HoloPart from a local folder or a hub repo id (downloaded only with ``allow_network``)."""
    return load_folder(resolve_weights(path_or_repo_id, revision, cache_dir, allow_network), device, dtype)
