"""The ``holopart`` completion engine: the HoloPart diffusion model (clean-room, ``engine/holopart/``).

The model loads once per (weights, revision, device, dtype) and the worker keeps the instance between jobs;
the sampling settings apply per job, and their defaults live only in ``settings_spec``. Faces labelled
-1 are context: the model sees them, with no part's mask, and no object is made for them. torch is
imported only when the engine is built or checked, so listing engines works without it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ...core.errors import EngineError, InputError, WeightsError
from ...core.partjob import CompletedPart, PartJob, majority_material
from ...core.progress import Progress
from ..geometry.topology import is_watertight
from .base import CompletionEngine, Setting

DEFAULT_WEIGHTS = "VAST-AI/HoloPart"


def _pick_device(name: str):
    import torch
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available[name]:
        raise EngineError(f"the device '{name}' is not available here", "use device=auto or cpu", kind="device")
    return torch.device(name)


def _pick_dtype(name: str, device):
    import torch
    if name == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return getattr(torch, name)


class HoloPartCompletion(CompletionEngine):
    name = "holopart"
    description = "HoloPart diffusion model: completes each segment into a whole part (GPU recommended)"
    requires = ("torch", "safetensors")
    settings_spec = (
        Setting("weights", str, DEFAULT_WEIGHTS,
                "folder with the HoloPart weights (Hugging Face layout) or a hub repo id"),
        Setting("revision", str, "", "hub revision (branch, tag or commit) of the weights; empty = latest"),
        Setting("allow_network", bool, False, "allow downloading the weights from the hub when not cached"),
        Setting("device", str, "auto", "compute device (auto: CUDA, then Apple MPS, then CPU)",
                choices=("auto", "cuda", "mps", "cpu")),
        Setting("dtype", str, "auto", "model precision (auto: float16 on GPUs, float32 on CPU)",
                choices=("auto", "float16", "bfloat16", "float32")),
        Setting("steps", int, 50, "denoising steps", minimum=1, maximum=1000),
        Setting("guidance", float, 3.5, "classifier-free guidance scale (1 = off)", minimum=0.0, maximum=50.0),
        Setting("seed", int, 42, "random seed: the same seed gives the same meshes", minimum=0),
        Setting("points", int, 20480, "surface points sampled from the whole shape and from each part",
                minimum=64, maximum=1_000_000),
        Setting("resolution", int, 504, "final surface-extraction grid (cells per axis; 504 as the official "
                "code; lower is faster and coarser)", minimum=32, maximum=1024),
        Setting("batch_size", int, 8, "parts denoised together (halved automatically on out-of-memory)",
                minimum=1, maximum=64),
        Setting("decimate", int, 10000, "target faces per part after extraction (0 = keep all)", minimum=0),
        Setting("latent_tokens", int, 2048, "latent tokens per part (2048 as the official pipeline)",
                minimum=16, maximum=8192),
    )

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        from ..holopart.loading import from_pretrained
        from ..holopart.pipeline import HoloPartPipeline
        s = self.settings
        device = _pick_device(s["device"])
        model = from_pretrained(s["weights"], revision=s["revision"] or None, allow_network=s["allow_network"],
                                device=device, dtype=_pick_dtype(s["dtype"], device))
        self.pipeline = HoloPartPipeline(model)

    @classmethod
    def availability(cls, settings: dict | None = None) -> tuple[bool, str]:
        ok, reason = super().availability(settings)
        if not ok:
            return ok, reason
        try:
            s = cls.validate_settings(settings or {})
        except InputError as exc:
            return False, exc.message
        if s["allow_network"]:
            return True, ""
        from ..holopart.files import check_files, resolve_weights
        try:
            missing = check_files(resolve_weights(s["weights"], s["revision"] or None))
        except WeightsError as exc:
            return False, exc.message
        return (False, f"the weights are incomplete (missing {', '.join(missing)})") if missing else (True, "")

    @classmethod
    def cache_key(cls, settings: dict) -> tuple:
        return tuple(settings[k] for k in ("weights", "revision", "device", "dtype"))

    def complete(self, job: PartJob, labels, progress: Progress) -> list[CompletedPart]:
        from ..holopart.pipeline import CONTEXT
        usable = job.mesh.check().usable
        segments, face_counts, materials = {}, {}, {}
        for label in job.labels:
            vertices, faces, face_index = job.mesh.submesh((job.face_labels == label) & usable)
            if len(face_index):
                segments[label] = (vertices, faces)
            face_counts[label], materials[label] = len(face_index), majority_material(job.mesh, face_index)
        empty = [job.part_name(label) for label in labels if label not in segments]
        if empty:
            raise InputError(f"part(s) {', '.join(empty)} have no usable face (all degenerate)",
                             "fix the geometry or remove those labels")
        context_vertices, context_faces, context_index = job.mesh.submesh((job.face_labels < 0) & usable)
        if len(context_index):
            segments[CONTEXT] = (context_vertices, context_faces)
        whole_vertices, whole_faces, _ = job.mesh.submesh(usable)
        meshes = self.pipeline.complete((whole_vertices, whole_faces), segments, list(labels),
                                        sampling_settings(self.settings), progress)
        return [self._part(job, mesh, segments[mesh.key], face_counts[mesh.key], materials[mesh.key])
                for mesh in meshes]

    def _part(self, job: PartJob, mesh, segment, source_faces: int, material: int) -> CompletedPart:
        vertices, faces, notes = mesh.vertices, mesh.faces, list(mesh.notes)
        if len(faces) == 0:
            vertices, faces = segment
            notes.append("the model produced no surface for this part; the visible segment is returned")
        watertight = is_watertight(np.asarray(vertices, np.float64), np.asarray(faces, np.int64))
        return CompletedPart(label=mesh.key, name=job.part_name(mesh.key), vertices=np.asarray(vertices, np.float64),
                             faces=np.asarray(faces, np.int64), face_source=np.full(len(faces), -1, np.int64),
                             source_faces=source_faces, material_index=material, engine=self.name,
                             settings=dict(self.settings), timings=dict(mesh.timings),
                             watertight=watertight, notes=notes)


def sampling_settings(settings: dict):
    """The pipeline's ``SamplingSettings`` from engine settings; those not given take the defaults above."""
    from ..holopart.pipeline import SamplingSettings
    full = HoloPartCompletion.validate_settings(settings)
    return SamplingSettings(**{f.name: full[f.name] for f in dataclasses.fields(SamplingSettings)})
