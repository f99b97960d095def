"""The job folder: how a job's data travels between the Blender side (or any client) and the worker.

    job.json     {"protocol": 1, "request": {...JobRequest...}, "mesh_name": str, "part_names": {label: name}}
    input.npz    vertices (V,3) float, faces (F,3) int, face_labels (F,) int32, [face_materials (F,) int32]
    result.json  written by the worker: engines used, timings, warnings, one metadata entry per part
    result.npz   face_labels (F,) int32, and per part i: part{i}_vertices, part{i}_faces, part{i}_face_source

Arrays are stored uncompressed in ``.npz`` (binary, fast, no pickle). Names read from ``job.json`` are data:
they are never used as paths. See docs/protocol.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .request import JobRequest
from ..core.errors import InputError
from ..core.partjob import CompletedPart, JobResult, Mesh, PartJob
from .protocol import PROTOCOL_VERSION


def write_job(folder: str | os.PathLike, job: PartJob, request: JobRequest) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"vertices": job.mesh.vertices, "faces": job.mesh.faces, "face_labels": job.face_labels}
    if job.mesh.face_materials is not None:
        arrays["face_materials"] = job.mesh.face_materials
    np.savez(folder / "input.npz", **arrays)
    meta = {"protocol": PROTOCOL_VERSION, "request": request.to_dict(), "mesh_name": job.mesh.name,
            "part_names": {str(k): v for k, v in job.part_names.items()}}
    (folder / "job.json").write_text(json.dumps(meta, indent=1))
    for stale in ("result.json", "result.npz"):
        (folder / stale).unlink(missing_ok=True)
    return folder


def read_job(folder: str | os.PathLike) -> tuple[PartJob, JobRequest]:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "job.json").read_text())
        data = np.load(folder / "input.npz", allow_pickle=False)
    except FileNotFoundError as exc:
        raise InputError(f"incomplete job folder {folder}: {exc.filename} is missing",
                         "write the job with jobfolder.write_job") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"unreadable job folder {folder}: {exc}", "write the job again") from exc
    if meta.get("protocol") != PROTOCOL_VERSION:
        raise InputError(f"job folder protocol {meta.get('protocol')} is not {PROTOCOL_VERSION}",
                         "the extension and the engine are of different versions; update both")
    for name in ("vertices", "faces", "face_labels"):
        if name not in data:
            raise InputError(f"input.npz lacks the array '{name}'", "write the job again")
    mesh = Mesh(data["vertices"], data["faces"], data["face_materials"] if "face_materials" in data else None,
                name=str(meta.get("mesh_name", "mesh")))
    names = {int(k): str(v) for k, v in (meta.get("part_names") or {}).items()}
    return PartJob(mesh, data["face_labels"], names), JobRequest.from_dict(meta["request"])


def write_result(folder: str | os.PathLike, result: JobResult) -> None:
    folder = Path(folder)
    arrays = {}
    if result.face_labels is not None:
        arrays["face_labels"] = np.asarray(result.face_labels, np.int32)
    for i, part in enumerate(result.parts):
        arrays[f"part{i}_vertices"] = np.asarray(part.vertices, np.float64)
        arrays[f"part{i}_faces"] = np.asarray(part.faces, np.int64)
        arrays[f"part{i}_face_source"] = np.asarray(part.face_source, np.int64)
    np.savez(folder / "result.npz", **arrays)
    meta = {"protocol": PROTOCOL_VERSION, "engine": result.engine, "segmentation_engine": result.segmentation_engine,
            "timings": {k: round(float(v), 4) for k, v in result.timings.items()}, "warnings": result.warnings,
            "parts": [p.metadata() for p in result.parts]}
    # result.json last: its presence means the result is complete.
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(folder / "result.json")


def read_result(folder: str | os.PathLike) -> JobResult:
    folder = Path(folder)
    meta = json.loads((folder / "result.json").read_text())
    data = np.load(folder / "result.npz", allow_pickle=False)
    parts = []
    for i, m in enumerate(meta["parts"]):
        parts.append(CompletedPart(
            label=int(m["label"]), name=str(m["name"]), vertices=data[f"part{i}_vertices"],
            faces=data[f"part{i}_faces"], face_source=data[f"part{i}_face_source"],
            source_faces=int(m["source_faces"]), material_index=int(m["material_index"]), engine=str(m["engine"]),
            settings=dict(m.get("settings", {})), timings=dict(m.get("timings", {})),
            watertight=bool(m.get("watertight", False)), notes=list(m.get("notes", []))))
    labels = data["face_labels"] if "face_labels" in data else None
    return JobResult(parts, labels, meta.get("engine", ""), meta.get("segmentation_engine", ""),
                     dict(meta.get("timings", {})), list(meta.get("warnings", [])))
