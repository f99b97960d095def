"""The job folder: how a job's data travels between the Blender side (or any client) and the worker.

    job.json     {"protocol": 1, "request": {...JobRequest...}, "mesh_name": str, "part_names": {label: name}}
    input.npz    vertices (V,3) float, faces (F,3) int, face_labels (F,) int32, [face_materials (F,) int32]
    result.json  written by the worker: engines used, timings, warnings, one metadata entry per part
    result.npz   face_labels (F,) int32, and per part i: part{i}_vertices, part{i}_faces, part{i}_face_source

Arrays are stored uncompressed in ``.npz`` (binary, fast, no pickle). Names read from ``job.json`` are data:
they are never used as paths. Over HTTP (``holopart serve``) a folder's files travel as one uncompressed ZIP
(``pack``/``unpack``): the job's ``JOB_FILES`` one way, the ``RESULT_FILES`` back. See docs/protocol.md.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .request import JobRequest
from ..core.errors import InputError
from ..core.partjob import CompletedPart, JobResult, Mesh, PartJob
from .protocol import PROTOCOL_VERSION


JOB_FILES = ("job.json", "input.npz")
RESULT_FILES = ("result.json", "result.npz")


def pack(folder: str | os.PathLike, names: tuple[str, ...]) -> bytes:
    """The files ``names`` of ``folder`` as one uncompressed ZIP (the body of an HTTP request or answer)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in names:
            archive.write(Path(folder) / name, name)
    return buffer.getvalue()


def unpack(data: bytes, folder: str | os.PathLike, names: tuple[str, ...]) -> Path:
    """Write a ``pack``ed body into ``folder``: exactly the files ``names``, uncompressed (so what is written
    is no larger than the body); anything else raises InputError. Paths inside the ZIP are never used."""
    folder = Path(folder)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if sorted(m.filename for m in members) != sorted(names):
                raise InputError(f"the body holds {', '.join(m.filename for m in members) or 'nothing'}, "
                                 f"not exactly {', '.join(names)}", "send a job folder packed by jobfolder.pack")
            if any(m.compress_type != zipfile.ZIP_STORED for m in members):
                raise InputError("the body's files are compressed", "send them stored (jobfolder.pack)")
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                (folder / name).write_bytes(archive.read(name))
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise InputError(f"the body is not a ZIP of a job folder: {exc}", "send a job folder packed by jobfolder.pack") from None
    return folder


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
    for stale in RESULT_FILES:
        (folder / stale).unlink(missing_ok=True)
    return folder


def read_job(folder: str | os.PathLike) -> tuple[PartJob, JobRequest]:
    """The job in ``folder``; anything malformed raises InputError (kind ``bad_input``) with a one-line message."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "job.json").read_text())
        with np.load(folder / "input.npz", allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError as exc:
        raise InputError(f"incomplete job folder {folder}: {exc.filename} is missing",
                         "write the job with jobfolder.write_job") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"unreadable job folder {folder}: {exc}", "write the job again") from exc
    if not isinstance(meta, dict):
        raise InputError(f"job.json holds a {type(meta).__name__}, not an object", "write the job again")
    if meta.get("protocol") != PROTOCOL_VERSION:
        raise InputError(f"job folder protocol {meta.get('protocol')} is not {PROTOCOL_VERSION}",
                         "the extension and the engine are of different versions; update both")
    if not isinstance(meta.get("request"), dict):
        raise InputError("job.json has no request object", "see docs/protocol.md")
    names = meta.get("part_names") or {}
    if not isinstance(names, dict) or not all(isinstance(k, str) and _is_int(k) for k in names):
        raise InputError("job.json part_names must be an object {\"label\": \"name\"} with integer labels",
                         "see docs/protocol.md")
    shapes = {"vertices": (2, 3, "if"), "faces": (2, 3, "iu"), "face_labels": (1, None, "iu"),
              "face_materials": (1, None, "iu")}
    for name, (ndim, width, kinds) in shapes.items():
        if name not in arrays:
            if name == "face_materials":
                continue
            raise InputError(f"input.npz lacks the array '{name}'", "write the job again")
        array = arrays[name]
        if array.ndim != ndim or (width is not None and array.shape[1] != width) or array.dtype.kind not in kinds:
            want = "integer" if kinds == "iu" else "number"
            raise InputError(f"input.npz '{name}' is a {array.dtype} array of shape {array.shape}; expected "
                             f"{want}s of shape {'(N,3)' if width else '(N,)'}", "see docs/protocol.md")
    mesh = Mesh(arrays["vertices"], arrays["faces"], arrays.get("face_materials"),
                name=str(meta.get("mesh_name", "mesh")))
    job = PartJob(mesh, arrays["face_labels"], {int(k): str(v) for k, v in names.items()})
    return job, JobRequest.from_dict(meta["request"])


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def write_result(folder: str | os.PathLike, result: JobResult) -> None:
    """Write result.npz, then result.json; a folder that cannot be written raises InputError."""
    folder = Path(folder)
    arrays = {}
    if result.face_labels is not None:
        arrays["face_labels"] = np.asarray(result.face_labels, np.int32)
    for i, part in enumerate(result.parts):
        arrays[f"part{i}_vertices"] = np.asarray(part.vertices, np.float64)
        arrays[f"part{i}_faces"] = np.asarray(part.faces, np.int64)
        arrays[f"part{i}_face_source"] = np.asarray(part.face_source, np.int64)
    meta = {"protocol": PROTOCOL_VERSION, "engine": result.engine, "segmentation_engine": result.segmentation_engine,
            "timings": {k: round(float(v), 4) for k, v in result.timings.items()}, "warnings": result.warnings,
            "parts": [p.metadata() for p in result.parts]}
    try:
        np.savez(folder / "result.npz", **arrays)
        # result.json last: its presence means the result is complete.
        tmp = folder / "result.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(folder / "result.json")
    except OSError as exc:
        raise InputError(f"cannot write the result into the job folder {folder}: {exc.strerror or exc}",
                         "the job folder was removed or is not writable; run the job again") from None


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
