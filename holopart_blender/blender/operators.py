"""The artist's operators: Complete Part, Complete All, Segment, Grow Parts from Seeds, Assign Part, New Part,
Cancel.

Engine operators run a job on the worker. Invoked from the UI they are modal: a timer drains the worker's
events on the main thread, progress shows in the panel and the status bar, Esc cancels, and the result is
built in the operator's last event, so one Undo removes it. Called from Python (``EXEC_DEFAULT``) or in
background mode they run the job to the end synchronously, printing progress.
"""

from __future__ import annotations

import contextlib
import time

import bpy
import numpy as np

from ..core.errors import EngineError, InputError
from . import job as job_state, listing, properties, session
from .addon import preferences
from .export import read_source
from .job import Job
from .labels import polygon_labels_from_triangles, read_labels, write_labels
from .reimport import build_parts
from .request import build_request

FORCE_KILL_SECONDS = 5.0
SEEDED_ENGINE = "seeded"  # the segmentation engine that grows the job's labels


class _EngineJobOperator:
    """Shared run logic; subclasses define ``make_job`` (read the source, build the request) and ``apply``."""

    bl_options = {"REGISTER", "UNDO"}

    def make_job(self, context) -> Job:
        raise NotImplementedError

    def apply(self, context, job: Job, result) -> str:
        """Build the result into the scene; returns the report text."""
        raise NotImplementedError

    def _start(self, context) -> Job | None:
        if job_state.current is not None:
            self.report({"ERROR"}, "HoloPart is already running a job; wait for it or cancel it")
            return None
        try:
            return self.make_job(context)
        except EngineError as exc:
            self.report({"ERROR"}, _error_text(exc.to_dict()))
            return None

    def execute(self, context):
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        printer = _ProgressPrinter()
        job_state.current = job
        try:
            final = job.run(on_event=printer)
        finally:
            job.finish()
        return self._finish(context, job, final)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        if job_state.current is not None:
            self.report({"ERROR"}, "HoloPart is already running a job; wait for it or cancel it")
            return {"CANCELLED"}
        self._job, self._invoked = None, time.monotonic()
        try:
            ready = session.engines_if_ready(preferences(), wait=False) is not None
        except EngineError as exc:  # a server that may not be contacted
            self.report({"ERROR"}, _error_text(exc.to_dict()))
            return {"CANCELLED"}
        if ready and not self._begin(context):
            return {"CANCELLED"}
        # Until the worker has listed its engines (it is starting), the modal waits for it: the UI never does.
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        context.window_manager.progress_begin(0.0, 1.0)
        if self._job is None:
            context.workspace.status_text_set("HoloPart: starting the engine worker - Esc to cancel")
        return {"RUNNING_MODAL"}

    def _begin(self, context) -> bool:
        job = self._start(context)
        if job is not None:
            job.started = self._invoked  # the time reported includes waiting for the worker
            job.start()
            self._job = job
        return job is not None

    def _stop_waiting(self, context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        context.window_manager.progress_end()
        context.workspace.status_text_set(None)

    def modal(self, context, event):
        if self._job is None:  # waiting for the engine listing
            if event.type == "ESC" and event.value == "PRESS":
                self._stop_waiting(context)
                self.report({"WARNING"}, "HoloPart: cancelled; nothing was changed")
                return {"CANCELLED"}
            if event.type != "TIMER":
                return {"PASS_THROUGH"}
            if session.listing_failed:
                self._stop_waiting(context)
                self.report({"ERROR"}, f"HoloPart: the server did not answer: {session.listing_error}"
                            if session.listing_error else "HoloPart: the engine worker did not start (see the engine log)")
                return {"CANCELLED"}
            if session.engines_if_ready(preferences(), wait=False) is None:
                return {"PASS_THROUGH"}
            if not self._begin(context):
                self._stop_waiting(context)
                return {"CANCELLED"}
            return {"PASS_THROUGH"}
        job = self._job
        if event.type == "ESC" and event.value == "PRESS" and job.cancel_time is None:
            job.cancel()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        final = job.drain()
        if final is None and job.cancel_time and time.monotonic() - job.cancel_time > FORCE_KILL_SECONDS:
            job.client.close(timeout=0.5)  # the engine is stuck inside a step: stop the worker
            final = {"type": "cancelled", "id": job.job_id}
        if final is None:
            context.window_manager.progress_update(job.fraction)
            context.workspace.status_text_set(job.status_text())
            _redraw_panels(context)
            return {"PASS_THROUGH"}
        self._stop_waiting(context)
        job.finish()
        _redraw_panels(context)
        return self._finish(context, job, final)

    def _finish(self, context, job: Job, final: dict):
        if final["type"] == "cancelled":
            self.report({"WARNING"}, "HoloPart: cancelled; nothing was changed")
            return {"CANCELLED"}
        if final["type"] == "error":
            self.report({"ERROR"}, _error_text(final))
            return {"CANCELLED"}
        try:
            text = self.apply(context, job, job.result())
        except EngineError as exc:
            self.report({"ERROR"}, _error_text(exc.to_dict()))
            return {"CANCELLED"}
        except Exception as exc:  # noqa: BLE001 - a bug while building: say so; build_parts left nothing behind
            self.report({"ERROR"}, f"HoloPart: building the result failed ({type(exc).__name__}: {exc}); "
                        "nothing was added. Please report this with the engine log")
            return {"CANCELLED"}
        seconds = time.monotonic() - job.started
        for warning in final.get("summary", {}).get("warnings", []):
            self.report({"WARNING"}, f"HoloPart: {warning}")
        session.last_summary = f"{text} in {seconds:.1f} s"
        self.report({"INFO"}, f"HoloPart: {session.last_summary}")
        return {"FINISHED"}

    def _source(self, context):
        obj = bpy.data.objects.get(self._source_name)
        if obj is None:
            raise InputError(f"the object '{self._source_name}' is gone", "run the operator again")
        return obj


class _CompletionOperator(_EngineJobOperator):
    replace_parts = False  # whether the run's parts replace those earlier runs made from the source
    engine: bpy.props.EnumProperty(name="Engine", items=properties.operator_engine_items,
                                   default=listing.number(listing.PREFERENCES), description="Completion engine for this run")

    def engine_name(self) -> str:
        return "" if self.engine == listing.PREFERENCES else self.engine

    def apply(self, context, job, result):
        """One new object per completed part (see ``reimport.build_parts``)."""
        source_obj = self._source(context)
        editing = source_obj.mode == "EDIT"
        if editing:
            with context.temp_override(active_object=source_obj, object=source_obj):
                bpy.ops.object.mode_set(mode="OBJECT")
        try:
            collection, objects = build_parts(context, source_obj, job.source, result, replace=self.replace_parts)
        except Exception:
            if editing:  # a failed build leaves the scene as it was, the mode included
                with context.temp_override(active_object=source_obj, object=source_obj):
                    bpy.ops.object.mode_set(mode="EDIT")
            raise
        engine = f"{result.engine} (auto)" if job.request.engine == "auto" else result.engine
        return f"{len(objects)} part(s) with {engine} into '{collection.name}'"


class HOLOPART_OT_complete_part(_CompletionOperator, bpy.types.Operator):
    """Complete the selected faces as one whole part (a new object; the source is hidden, not changed)"""

    bl_idname = "holopart.complete_part"
    bl_label = "Complete Part"

    @classmethod
    def poll(cls, context):
        if context.mode != "EDIT_MESH":
            cls.poll_message_set("Select the part's faces in Edit Mode first")
            return False
        return True

    def make_job(self, context):
        obj = context.edit_object
        self._source_name = obj.name
        source = read_source(obj, context.evaluated_depsgraph_get(), "selection")
        if not source.job.labels:
            raise InputError("no faces are selected", "select the faces of one part in Edit Mode")
        source.job.part_names = {0: "part"}
        prefs = preferences()
        request = make_request(prefs, context.scene.holopart, "complete", self.engine_name())
        return Job(session.worker_client(prefs), source, request)


class HOLOPART_OT_complete_all(_CompletionOperator, bpy.types.Operator):
    """Amodal segmentation: segment the active mesh if it has no parts yet, then complete every part"""

    bl_idname = "holopart.complete_all"
    bl_label = "Complete All Parts"
    replace_parts = True

    resegment: bpy.props.BoolProperty(name="Segment Again", default=False,
                                      description="Segment even if the mesh already has part labels")

    @classmethod
    def poll(cls, context):
        return _poll_mesh(cls, context)

    def make_job(self, context):
        obj = context.active_object
        self._source_name = obj.name
        source = read_source(obj, context.evaluated_depsgraph_get(), "attribute")
        operation = "complete" if source.job.labels and not self.resegment else "amodal"
        if operation == "amodal":
            source.job.face_labels[:] = -1
        prefs = preferences()
        request = make_request(prefs, context.scene.holopart, operation, self.engine_name())
        return Job(session.worker_client(prefs), source, request)

    def apply(self, context, job, result):
        if result.face_labels is not None:  # the parts as segmented (the source itself stays unchanged)
            job.source.job.face_labels = np.asarray(result.face_labels, np.int32)
        return super().apply(context, job, result)


class _LabelingOperator(_EngineJobOperator):
    """Runs a segmentation job on the active mesh and writes the labels back into its part attribute.
    Subclasses name what the job starts from (``labels``: 'none' or the attribute's seeds) and the method."""

    labels = "none"

    @classmethod
    def poll(cls, context):
        return _poll_mesh(cls, context)

    def segmentation_engine(self, context) -> str:
        return ""  # the scene's method

    def check_source(self, source) -> None:
        """Refuse a source the method cannot work from (raises ``InputError``)."""

    def make_job(self, context):
        obj = context.active_object
        self._source_name = obj.name
        source = read_source(obj, context.evaluated_depsgraph_get(), self.labels)
        if source.num_polygons != len(obj.data.polygons):
            # Modifiers change the faces: labels must land on the mesh's own faces, so segment those.
            source = read_source(obj, context.evaluated_depsgraph_get(), self.labels, evaluated=False)
        self.check_source(source)
        prefs = preferences()
        request = make_request(prefs, context.scene.holopart, "segment",
                               segmentation_engine=self.segmentation_engine(context))
        return Job(session.worker_client(prefs), source, request)

    def apply(self, context, job, result):
        obj = self._source(context)
        labels = polygon_labels_from_triangles(result.face_labels, job.source.tri_polygon,
                                               job.source.num_polygons)
        with _object_mode(context, obj):
            write_labels(obj.data, labels)
        note = "" if job.source.evaluated else " (modifiers change the faces: segmented the mesh without them)"
        return f"{len(set(labels.tolist()) - {-1})} parts with {result.segmentation_engine}{note}"


class HOLOPART_OT_segment(_LabelingOperator, bpy.types.Operator):
    """Split the active mesh into parts: writes the integer face attribute 'holopart_part' with a colour preview"""

    bl_idname = "holopart.segment"
    bl_label = "Segment into Parts"


class HOLOPART_OT_grow_parts(_LabelingOperator, bpy.types.Operator):
    """Grow the parts marked on a few faces (New Part from Selection) over the whole mesh, stopping at creases"""

    bl_idname = "holopart.grow_parts"
    bl_label = "Grow Parts from Seeds"

    labels = "attribute"

    def segmentation_engine(self, context) -> str:
        return SEEDED_ENGINE

    def check_source(self, source) -> None:
        if not source.job.labels:
            raise InputError("no face is marked as a part",
                             "select a few faces of each part and click New Part from Selection, then grow")


class _LabelEditOperator:
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if context.mode != "EDIT_MESH":
            cls.poll_message_set("Select faces in Edit Mode first")
            return False
        return True

    def relabel(self, context, choose) -> set:
        obj = context.edit_object
        with _object_mode(context, obj):  # face attributes are only readable outside Edit Mode
            selected = np.zeros(len(obj.data.polygons), bool)
            obj.data.polygons.foreach_get("select", selected)
            if not selected.any():
                self.report({"ERROR"}, "No faces are selected")
                return {"CANCELLED"}
            labels = read_labels(obj.data)
            part = choose(labels)
            labels[selected] = part
            write_labels(obj.data, labels)
        context.scene.holopart.active_part = part
        self.report({"INFO"}, f"{int(selected.sum())} face(s) now belong to part {part}")
        return {"FINISHED"}


class HOLOPART_OT_assign_part(_LabelEditOperator, bpy.types.Operator):
    """Put the selected faces into the active part"""

    bl_idname = "holopart.assign_part"
    bl_label = "Assign to Part"

    part: bpy.props.IntProperty(name="Part", default=-2, min=-2,
                                description="Part id (-1 removes the faces from every part; -2: the active part)")

    def execute(self, context):
        part = context.scene.holopart.active_part if self.part == -2 else self.part
        return self.relabel(context, lambda labels: part)


class HOLOPART_OT_new_part(_LabelEditOperator, bpy.types.Operator):
    """Make the selected faces a new part"""

    bl_idname = "holopart.new_part"
    bl_label = "New Part from Selection"

    def execute(self, context):
        return self.relabel(context, lambda labels: int(labels.max(initial=-1)) + 1)


class HOLOPART_OT_cancel(bpy.types.Operator):
    """Cancel the running HoloPart job"""

    bl_idname = "holopart.cancel"
    bl_label = "Cancel HoloPart Job"

    @classmethod
    def poll(cls, context):
        return job_state.current is not None

    def execute(self, context):
        job_state.current.cancel()
        return {"FINISHED"}


def make_request(prefs, settings, operation: str, engine: str = "", parts=None, segmentation_engine: str = ""):
    """The request for ``operation`` from plain values: the engines chosen (``engine`` or the preferences';
    ``segmentation_engine`` or the scene's), the engine settings stored on the scene, and the preferences'
    device and weights (see ``request.build_request``; a remote server uses its own weights)."""
    values = {}
    if prefs.device != "auto":
        values["device"] = prefs.device
    weights = session.weights_folder(prefs) if prefs.engine_location == "LOCAL" else ""
    if weights:
        values["weights"] = weights
    return build_request(operation, engine or prefs.engine or "auto",
                         segmentation_engine or settings.segmentation_engine or "auto",
                         properties.stored_settings(settings), values, session.engines(prefs), parts=parts)


@contextlib.contextmanager
def _object_mode(context, obj):
    """Leave Edit Mode for the block (mesh data is only current and writable outside it), then go back."""
    editing = obj.mode == "EDIT"
    with context.temp_override(active_object=obj, object=obj):
        if editing:
            bpy.ops.object.mode_set(mode="OBJECT")
        try:
            yield
        finally:
            if editing:
                bpy.ops.object.mode_set(mode="EDIT")


def _poll_mesh(cls, context) -> bool:
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        cls.poll_message_set("The active object must be a mesh")
        return False
    return True


def _error_text(event: dict) -> str:
    hint = event.get("hint")
    return f"HoloPart: {event.get('message', 'failed')}" + (f" ({hint})" if hint else "")


def _redraw_panels(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


class _ProgressPrinter:
    """Prints progress in background mode, once per stage change or 10% step."""

    def __init__(self):
        self._last = ("", -1)

    def __call__(self, event: dict) -> None:
        if event["type"] != "progress":
            return
        key = (event["stage"], int(event["fraction"] * 10))
        if key != self._last:
            self._last = key
            print(f"HoloPart: {event['stage']} {event['fraction'] * 100:3.0f}% {event['message']}", flush=True)


CLASSES = (HOLOPART_OT_complete_part, HOLOPART_OT_complete_all, HOLOPART_OT_segment, HOLOPART_OT_grow_parts,
           HOLOPART_OT_assign_part, HOLOPART_OT_new_part, HOLOPART_OT_cancel)
