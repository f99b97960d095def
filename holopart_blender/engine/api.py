"""The engine's Python API: segment a mesh, complete its parts, or both.

    from holopart_blender.engine import api, meshfiles
    job = meshfiles.load_job("chair.glb")                 # one mesh per segment, or mesh + labels
    result = api.complete_parts(job, engine="geometric")
    meshfiles.write_parts("chair_parts.glb", result.parts)

The worker and the command line run jobs through the same ``EngineSession``, which keeps engine
instances (and so loaded models) alive between jobs.
"""

from __future__ import annotations

import time
import numpy as np

from .engines import (COMPLETION_ENGINES, completion_engine, resolve_completion_engine, segmentation_engine)
from ..core.errors import EngineError, InputError
from ..core.partjob import JobResult, Mesh, PartJob
from ..core.progress import Progress
from ..wire.request import JobRequest

class EngineSession:
    """Runs jobs, keeping engine instances alive between them (the worker holds one for its lifetime)."""

    def __init__(self):
        self._instances: dict[tuple, object] = {}
        self._load_seconds: dict[str, float] = {}  # engines built during the current run

    def engine(self, kind: str, name: str, settings: dict):
        cls = completion_engine(name) if kind == "completion" else segmentation_engine(name)
        ok, reason = cls.availability(settings)
        if not ok:
            raise EngineError(f"the {name} engine cannot run here: {reason}", _hint_for(name), kind="engine_unavailable")
        settings = cls.validate_settings(settings)
        key = (kind, name, cls.cache_key(settings))
        instance = self._instances.get(key)
        if instance is None:
            # One loaded model at a time: a new heavy instance replaces older ones of the same engine.
            for old in [k for k in self._instances if k[:2] == (kind, name)]:
                del self._instances[old]
            t0 = time.perf_counter()
            instance = self._instances[key] = cls(settings)
            self._load_seconds[f"load_{name}"] = time.perf_counter() - t0
        else:
            instance.configure(settings)
        return instance

    def loaded(self) -> list[str]:
        return [f"{kind}:{name}" for kind, name, _ in self._instances]

    def run(self, job: PartJob | Mesh, request: JobRequest, progress: Progress | None = None) -> JobResult:
        progress = progress or Progress()
        t_start = time.perf_counter()
        self._load_seconds = {}
        if isinstance(job, Mesh):
            job = PartJob(job, np.full(job.num_faces, -1, np.int32))
        report = job.mesh.check()
        warnings = report.warnings()
        timings: dict[str, float] = {}
        seg_name = ""
        needs_segmentation = request.operation in ("segment", "amodal") or not job.labels
        if request.operation == "complete" and not job.labels:
            raise InputError("no face has a part label, so there is nothing to complete",
                             "select faces of a part, give a label array, or use the segment/amodal operation")
        if needs_segmentation:
            seg_name = request.segmentation_engine
            seg = self.engine("segmentation", seg_name, request.segmentation_settings)
            t0 = time.perf_counter()
            span = (0.0, 1.0) if request.operation == "segment" else (0.0, 0.3)
            if getattr(seg, "uses_seeds", False):  # the job's labels are the artist's seed faces
                labels = seg.segment(job.mesh, progress.span(*span, stage="segment"), seeds=job.face_labels)
            else:
                labels = seg.segment(job.mesh, progress.span(*span, stage="segment"))
            labels = np.where(report.usable, np.asarray(labels, np.int32), -1).astype(np.int32)
            job = PartJob(job.mesh, labels, {})
            timings["segment"] = time.perf_counter() - t0
            if request.operation == "segment":
                progress(1.0, f"{len(job.labels)} parts", stage="segment")
                return JobResult([], job.face_labels, "", seg_name, timings, warnings)
        labels = job.labels if request.parts is None else [int(x) for x in request.parts]
        missing = sorted(set(labels) - set(job.labels))
        if missing:
            raise InputError(f"part label(s) {missing} have no faces", f"labels present: {job.labels}")
        name = resolve_completion_engine(request.engine, request.settings)
        settings = _settings_for(name, request.engine, request.settings)
        engine = self.engine("completion", name, settings)
        t0 = time.perf_counter()
        start = 0.3 if needs_segmentation else 0.0
        parts = engine.complete(job, labels, progress.span(start, 1.0, stage="complete"))
        timings["complete"] = time.perf_counter() - t0
        for part in parts:
            if not np.isfinite(part.vertices).all():
                raise EngineError(f"the {name} engine produced non-finite coordinates for {part.name}",
                                  "report this as a bug with the input file", kind="engine_error")
        timings.update(self._load_seconds)  # present only when an engine was built (loaded) for this job
        timings["total"] = time.perf_counter() - t_start
        return JobResult(parts, job.face_labels, name, seg_name, timings, warnings)


def _settings_for(name: str, requested: str, settings: dict) -> dict:
    """Settings for the resolved engine. With 'auto', settings meant for another engine are dropped
    (a name no engine knows is still an error)."""
    if requested != "auto":
        return settings
    own = {s.name for s in completion_engine(name).settings_spec}
    known_anywhere = set()
    for other in COMPLETION_ENGINES:
        try:
            known_anywhere |= {s.name for s in completion_engine(other).settings_spec}
        except ImportError:
            continue
    unknown = set(settings) - known_anywhere
    if unknown:
        raise InputError(f"no engine has the setting(s) {', '.join(sorted(unknown))}", "check the spelling")
    return {k: v for k, v in settings.items() if k in own}


def _hint_for(name: str) -> str:
    if name == "holopart":
        return "install the engine environment and the HoloPart weights, or use the geometric engine"
    return "install the engine environment"


_default_session = EngineSession()


def complete_parts(job: PartJob, engine: str = "auto", settings: dict | None = None, parts=None,
                   progress: Progress | None = None) -> JobResult:
    """Complete the labelled segments of ``job`` (all of them, or the labels in ``parts``)."""
    request = JobRequest("complete", engine, dict(settings or {}), parts=parts)
    return _default_session.run(job, request, progress)


def segment(mesh: Mesh, engine: str = "auto", settings: dict | None = None,
            progress: Progress | None = None, seeds: np.ndarray | None = None) -> np.ndarray:
    """One part label per face of ``mesh``.

    ``seeds`` (F,) are the labels marked on a few faces (-1 elsewhere), grown by a seeded engine such as
    ``seeded``; engines that take no seeds ignore them.
    """
    request = JobRequest("segment", segmentation_engine=engine, segmentation_settings=dict(settings or {}))
    job = mesh if seeds is None else PartJob(mesh, np.asarray(seeds))
    return _default_session.run(job, request, progress).face_labels


def amodal_segmentation(mesh: Mesh, engine: str = "auto", settings: dict | None = None,
                        segmentation: str = "auto", segmentation_settings: dict | None = None,
                        progress: Progress | None = None) -> JobResult:
    """Segment ``mesh`` into parts, then complete every part."""
    request = JobRequest("amodal", engine, dict(settings or {}), segmentation, dict(segmentation_settings or {}))
    return _default_session.run(mesh, request, progress)
