"""Where the HoloPart weights are and whether they are complete: file checks only, no torch.

Used by the loader, by the engine's availability check and by the ``weights`` command (which the Blender
preferences run), so none of them needs to import torch just to look for files.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...core.errors import WeightsError
from .config import COMPONENTS, CONFIG_FILES, WEIGHT_FILE

DEFAULT_REPO = "VAST-AI/HoloPart"
MODULE_COMPONENTS = ("vae", "part_encoder", "transformer")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
REQUIRED_FILES = ("model_index.json", *(f"{c}/{CONFIG_FILES[c]}" for c in COMPONENTS),
                  *(f"{c}/{WEIGHT_FILE}" for c in MODULE_COMPONENTS))
DOWNLOAD_HINT = ("download the weights (Preferences > HoloPart > Download, or `python -m "
                 "holopart_blender.engine.holopart.weights download --allow-network`), or point the weights "
                 "setting at a local folder")


def is_local_path(spec: str) -> bool:
    """A folder path rather than a hub id (hub ids are ``owner/name``, with exactly one slash)."""
    return (Path(spec).expanduser().exists() or spec.startswith(("/", ".", "~")) or "\\" in spec
            or ":" in spec or spec.count("/") != 1)


def refuse_pickle(path: Path) -> None:
    raise WeightsError(f"{path} is a pickle checkpoint; pickle files can run arbitrary code when loaded and "
                       "are refused", "use the safetensors weights (diffusion_pytorch_model.safetensors)")


def resolve_weights(spec: str = DEFAULT_REPO, revision: str | None = None, cache_dir: str | os.PathLike | None = None,
                    allow_network: bool = False) -> Path:
    """The local folder holding the weights named by ``spec`` (a folder, or a hub repo id)."""
    spec = str(spec)
    if is_local_path(spec):
        path = Path(spec).expanduser()
        if path.is_file() and path.suffix.lower() in PICKLE_SUFFIXES:
            refuse_pickle(path)
        if not path.is_dir():
            raise WeightsError(f"no weight folder at {path}", "give the folder that holds model_index.json")
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise WeightsError("huggingface-hub is not installed, so the hub id "
                           f"'{spec}' cannot be resolved", "install the engine environment, or give a local folder") from exc
    try:
        return Path(snapshot_download(spec, revision=revision, cache_dir=cache_dir, local_files_only=not allow_network,
                                      allow_patterns=list(REQUIRED_FILES)))
    except Exception as exc:  # noqa: BLE001 - the hub raises many types (offline, not found, gated, ...)
        if not allow_network:
            raise WeightsError(f"the weights '{spec}'{f' @ {revision}' if revision else ''} are not downloaded "
                               "and network access is not allowed", DOWNLOAD_HINT) from exc
        raise WeightsError(f"cannot download '{spec}': {type(exc).__name__}: {exc}",
                           "check the repo id, the revision and the network connection") from exc


def check_files(folder: Path) -> list[str]:
    """The required files missing from ``folder`` (refusing pickle checkpoints offered instead)."""
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    for name in missing:
        if name.endswith(WEIGHT_FILE):
            pickles = sorted(p for p in (folder / Path(name).parent).glob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
            if pickles:
                refuse_pickle(pickles[0])
    return missing
