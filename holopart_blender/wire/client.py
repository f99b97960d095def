"""Client for the engine worker: pure standard-library Python (no bpy, no torch), used by the Blender side
and by pipeline scripts.

    client = WorkerClient(python="/path/to/engine/venv/bin/python")
    job_id = client.submit(job_folder)            # starts (or restarts) the worker when needed
    for event in client.poll(): ...               # never blocks; dicts as in ``protocol``
    client.cancel(job_id)
    final = client.run(job_folder)                # blocking variant: returns the done/error/cancelled event
    client.close()

A worker that dies is noticed by the reader thread: the client reports a ``worker_exit`` event and, if a job
was running, an ``error`` of kind ``worker_crashed`` for it; the next ``submit`` starts a fresh worker.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from . import protocol

PACKAGE_PARENT = Path(__file__).resolve().parents[2]
PACKAGE_NAME = Path(__file__).resolve().parents[1].name  # the folder name, also inside Blender's bl_ext tree


class WorkerClient:
    def __init__(self, python: str | None = None, pythonpath=(), env: dict | None = None,
                 engine_log: str | os.PathLike | None = None):
        """``python``: the interpreter that runs the worker (default: this one). ``pythonpath``: extra
        import folders (e.g. bundled wheels' site-packages). ``engine_log``: file that receives the worker's
        stderr (its log), appended."""
        self.python = python or sys.executable
        self.pythonpath = [str(p) for p in pythonpath]
        self.env = dict(env or {})
        self.engine_log = Path(engine_log) if engine_log else None
        self._proc: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._stderr_tail: collections.deque = collections.deque(maxlen=40)
        self._write_lock = threading.Lock()
        self._current: str | None = None

    # -- process ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        if self.running:
            return
        env = dict(os.environ)
        env.update(self.env)
        paths = [str(PACKAGE_PARENT), *self.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("PYTHONIOENCODING", "utf-8")
        self._stderr_tail.clear()
        self._proc = subprocess.Popen(
            [self.python, "-m", f"{PACKAGE_NAME}.engine.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(self._proc,), daemon=True).start()

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            try:
                event = protocol.decode(line, protocol.WORKER_MESSAGES)
            except protocol.ProtocolError as exc:
                event = {"type": "log", "level": "warning", "message": f"bad worker line ({exc}): {line[:200]!r}"}
            if event["type"] in protocol.FINAL_JOB_EVENTS and event.get("id") == self._current:
                self._current = None
            self._events.put(event)
        returncode = proc.wait()
        time.sleep(0.05)  # let the stderr reader catch the last lines
        tail = "".join(self._stderr_tail)[-4000:]
        if self._current is not None:
            self._events.put({"type": "error", "id": self._current, "kind": "worker_crashed",
                              "message": f"the engine worker stopped (exit code {returncode}) during the job",
                              "hint": _crash_hint(returncode, tail), "stderr_tail": tail})
            self._current = None
        self._events.put({"type": "worker_exit", "returncode": returncode, "stderr_tail": tail})

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        log = open(self.engine_log, "ab") if self.engine_log else None
        try:
            for line in proc.stderr:
                self._stderr_tail.append(line.decode("utf-8", "replace"))
                if log:
                    log.write(line)
                    log.flush()
        finally:
            if log:
                log.close()

    def _send(self, type_: str, **fields) -> None:
        with self._write_lock:
            try:
                self._proc.stdin.write(protocol.encode(type_, **fields))
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, AttributeError):
                pass  # the reader thread reports the exit

    # -- jobs ------------------------------------------------------------------------------------------------
    def submit(self, job_folder: str | os.PathLike) -> str:
        """Send a job (the folder must hold job.json and input.npz); returns its id."""
        if self._current is not None and self.running:
            raise RuntimeError("the worker is busy with another job; wait for it or cancel it")
        self.start()
        job_id = uuid.uuid4().hex[:12]
        self._current = job_id
        self._send("job", id=job_id, folder=str(Path(job_folder).resolve()))
        return job_id

    def cancel(self, job_id: str) -> None:
        if self.running:
            self._send("cancel", id=job_id)

    def request_engines(self) -> None:
        """Ask for the engines' availability and settings; the answer arrives as an ``engines`` event."""
        self.start()
        self._send("engines")

    def poll(self) -> list[dict]:
        """All events received so far (never blocks)."""
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    def wait_event(self, timeout: float | None = None) -> dict | None:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def run(self, job_folder, on_event=None, timeout: float | None = None) -> dict:
        """Submit and block until the job ends; returns the final event (done, error or cancelled)."""
        job_id = self.submit(job_folder)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self.cancel(job_id)
                raise TimeoutError(f"job {job_id} did not finish in {timeout} s (cancel sent)")
            event = self.wait_event(timeout=left)
            if event is None:
                continue
            if on_event is not None:
                on_event(event)
            if event.get("id") == job_id and event["type"] in protocol.FINAL_JOB_EVENTS:
                return event

    def close(self, timeout: float = 3.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._current is not None:
                self._send("cancel", id=self._current)
            self._send("shutdown")
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None
        self._current = None


def _crash_hint(returncode: int, tail: str) -> str:
    if returncode in (-9, 137) or "MemoryError" in tail or "out of memory" in tail.lower():
        return "the system probably ran out of memory: lower the resolution or batch size, or close other programs"
    return "see the engine log; the next job starts a fresh worker"
