"""The long-lived engine worker: ``python -m holopart_blender.engine.worker``.

It reads protocol messages (``protocol``) from stdin and writes them to stdout, one JSON object per line,
and runs one job at a time from a job folder (``jobfolder``). Engines stay loaded between jobs, so a model is
loaded once. While a job runs, the latest progress is re-sent several times a second even when the engine is
inside one long step, and a ``heartbeat`` goes out every second from a thread of its own, busy or idle, so a
client can tell a busy worker from a hung one. A ``cancel`` is honoured at any point after the job was sent:
a queued job is answered ``cancelled`` without running, a running one at the engine's next progress call;
the worker stays alive. When stdin closes (the client is gone) the running job is cancelled and the worker
exits. SIGINT is ignored (Ctrl+C in a terminal reaches the whole process group; the client
decides when the worker stops). Failures come back as ``error`` messages with a kind,
a message and a hint. Anything else written to stdout (by a library) is redirected to stderr so it cannot
corrupt the protocol. The worker opens no network port.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import sys
import threading
import time
import traceback

from ..wire import protocol

HEARTBEAT_SECONDS = 0.2  # progress re-sent this often while a job runs
ALIVE_SECONDS = 1.0  # a heartbeat message this often, always


class Worker:
    """One job at a time on the main thread; stdin read on a thread, heartbeats sent from another."""

    def __init__(self, out, heartbeat: float = HEARTBEAT_SECONDS):
        self._out = out
        self._lock = threading.Lock()
        # hello first, then heartbeats, both before the slow imports below
        self.send("hello", pid=os.getpid(), python=sys.executable, protocol=protocol.PROTOCOL_VERSION)
        threading.Thread(target=self._alive, daemon=True).start()
        from .api import EngineSession

        self._inbox: queue.Queue = queue.Queue()
        self._session = EngineSession()
        self._heartbeat = heartbeat
        self._jobs_lock = threading.Lock()  # guards _current, _queued and _cancelled between the two threads
        self._current: str | None = None
        self._queued: set[str] = set()  # jobs received, not yet started
        self._cancelled: set[str] = set()  # queued jobs cancelled before they started
        self._cancel = threading.Event()
        self._last_progress: dict | None = None
        self._last_sent = 0.0

    def send(self, type_: str, **fields) -> None:
        data = protocol.encode(type_, **fields)
        with self._lock:
            self._out.write(data)
            self._out.flush()

    def _alive(self) -> None:
        while True:
            time.sleep(ALIVE_SECONDS)
            try:
                self.send("heartbeat")
            except OSError:  # the client closed the pipe; the main loop sees stdin close and exits
                return

    # -- input ---------------------------------------------------------------------------------------------
    def read_stdin(self, stdin) -> None:
        """Reader thread: cancels act at once; everything else queues for the main loop."""
        for line in stdin:
            if not line.strip():
                continue
            try:
                message = protocol.decode(line, protocol.CLIENT_MESSAGES)
            except protocol.ProtocolError as exc:
                self.send("error", id=None, kind="protocol", message=str(exc), hint="update the extension and engine together")
                continue
            if message["type"] == "cancel":
                with self._jobs_lock:
                    if message.get("id") is not None and message.get("id") == self._current:
                        self._cancel.set()
                    elif message.get("id") in self._queued:
                        self._cancelled.add(message["id"])
                continue
            if message["type"] == "job" and isinstance(message.get("id"), str):
                with self._jobs_lock:
                    self._queued.add(message["id"])
            self._inbox.put(message)
            if message["type"] == "shutdown":
                return
        self._cancel.set()  # stdin closed: the client is gone (a served replica that died, say), so is its job
        self._inbox.put({"type": "shutdown"})

    # -- progress ------------------------------------------------------------------------------------------
    def _on_progress(self, stage: str, fraction: float, message: str) -> None:
        self._last_progress = {"id": self._current, "stage": stage, "fraction": round(fraction, 4), "message": message}
        now = time.monotonic()
        if now - self._last_sent >= self._heartbeat / 2:
            self._last_sent = now
            self.send("progress", **self._last_progress)

    def _beat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(self._heartbeat):
            if self._last_progress is not None and self._current == job_id:
                self._last_sent = time.monotonic()
                self.send("progress", **self._last_progress)

    # -- jobs ----------------------------------------------------------------------------------------------
    def run_job(self, message: dict) -> None:
        from ..core.errors import Cancelled, EngineError, is_out_of_memory
        from ..wire.jobfolder import read_job, write_result
        from ..core.progress import Progress

        job_id, folder = message.get("id"), message.get("folder")
        if not isinstance(job_id, str) or not isinstance(folder, str):
            self.send("error", id=job_id, kind="protocol", message="a job message needs a string id and folder", hint="")
            return
        with self._jobs_lock:
            self._queued.discard(job_id)
            self._current, self._last_progress = job_id, None
            self._cancel.clear()
            if job_id in self._cancelled:
                self._cancelled.discard(job_id)
                self._cancel.set()
        self.send("accepted", id=job_id)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job_id, stop), daemon=True)
        beat.start()
        t0 = time.perf_counter()
        try:
            if self._cancel.is_set():
                raise Cancelled()
            job, request = read_job(folder)
            self._on_progress("load", 0.0, f"{job.mesh.num_faces} faces")
            result = self._session.run(job, request, Progress(self._on_progress, self._cancel))
            write_result(folder, result)
            summary = {"engine": result.engine, "segmentation_engine": result.segmentation_engine,
                       "timings": {k: round(v, 4) for k, v in result.timings.items()},
                       "parts": len(result.parts), "seconds": round(time.perf_counter() - t0, 3),
                       "warnings": result.warnings}
            self.send("done", id=job_id, folder=folder, summary=summary)
        except Cancelled:
            self.send("cancelled", id=job_id)
        except EngineError as exc:
            self.send("error", id=job_id, **exc.to_dict())
        except Exception as exc:  # noqa: BLE001 - every failure must come back as a message, never a hang
            traceback.print_exc(file=sys.stderr)
            if is_out_of_memory(exc):
                self.send("error", id=job_id, kind="out_of_memory", message=str(exc) or "out of memory",
                          hint="lower the resolution or batch size, or use the CPU device")
            else:
                self.send("error", id=job_id, kind="internal", message=f"{type(exc).__name__}: {exc}",
                          hint="this is a bug; the worker log has the traceback")
        finally:
            stop.set()
            beat.join()
            with self._jobs_lock:
                self._current = None

    def engines(self) -> None:
        from .engines import (AUTO_COMPLETION_ORDER, COMPLETION_ENGINES, SEGMENTATION_ENGINES, completion_engine,
                              segmentation_engine)

        def describe(table, load):
            out = {}
            for name in table:
                try:
                    cls = load(name)
                    ok, reason = cls.availability()
                    out[name] = {"available": ok, "reason": reason, "description": cls.description,
                                 "uses_seeds": getattr(cls, "uses_seeds", False),
                                 "settings": [{"name": s.name, "type": s.type.__name__, "default": s.default,
                                               "help": s.help, "choices": list(s.choices) if s.choices else None,
                                               "minimum": s.minimum, "maximum": s.maximum}
                                              for s in cls.settings_spec]}
                except Exception as exc:  # noqa: BLE001 - an engine that cannot import is reported, not fatal
                    out[name] = {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
            return out

        self.send("engines", completion=describe(COMPLETION_ENGINES, completion_engine),
                  segmentation=describe(SEGMENTATION_ENGINES, segmentation_engine),
                  auto_completion=list(AUTO_COMPLETION_ORDER), loaded=self._session.loaded())

    def serve(self, stdin) -> int:
        threading.Thread(target=self.read_stdin, args=(stdin,), daemon=True).start()
        if self._inbox.empty():
            _warm_up()
        while True:
            message = self._inbox.get()
            kind = message["type"]
            if kind == "shutdown":
                return 0
            if kind == "ping":
                self.send("pong")
            elif kind == "engines":
                self.engines()
            elif kind == "job":
                self.run_job(message)


def _warm_up() -> None:
    """Import what every job needs while the client is still preparing the first one."""
    from ..wire import jobfolder  # noqa: F401
    from .engines import baselines  # noqa: F401  (imports trimesh)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m holopart_blender.engine.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heartbeat", type=float, default=HEARTBEAT_SECONDS,
                        help="seconds between repeated progress messages while a job runs")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray output (C libraries included) goes to stderr
    sys.stdout = sys.stderr
    code = Worker(out, args.heartbeat).serve(sys.stdin.buffer)
    out.flush()
    sys.stderr.flush()
    # Exit at once: a daemon thread may still block on stdin, which would abort a normal interpreter shutdown.
    os._exit(code)


if __name__ == "__main__":
    main()
