"""Client for the engine worker: pure standard-library Python (no bpy, no torch), used by the Blender side
and by pipeline scripts.

    client = WorkerClient(python="/path/to/engine/venv/bin/python")
    job_id = client.submit(job_folder)            # starts (or restarts) the worker when needed
    for event in client.poll(): ...               # never blocks; dicts as in ``protocol``
    client.cancel(job_id)
    final = client.run(job_folder)                # blocking variant: returns the done/error/cancelled event
    client.close()

Each worker process is a generation with its own state; events of a generation the client has let go (by
``close``, or by starting a new worker after one died) are dropped, so they are never taken for a later job.
A worker that dies is noticed by its reader thread: the client reports a ``worker_exit`` event and, if a job
was running, an ``error`` of kind ``worker_crashed`` for it. A worker that sends nothing for ``hung_after``
seconds (it sends a heartbeat every second) is killed and its job gets an ``error`` of kind ``worker_hung``.
The next ``submit`` starts a fresh worker.
"""

from __future__ import annotations

import collections
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from . import protocol

PACKAGE_PARENT = Path(__file__).resolve().parents[2]
PACKAGE_NAME = Path(__file__).resolve().parents[1].name  # the folder name, also inside Blender's bl_ext tree
HUNG_SECONDS = 20.0  # silence after which a worker is taken for hung (it sends a heartbeat every second)


class _Generation:
    """One worker process and what the client knows of it."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.job: str | None = None  # the job it is running
        self.stderr_tail: collections.deque = collections.deque(maxlen=40)
        self.last_heard = time.monotonic()
        self.hung = False  # the client killed it for sending nothing
        self.reader: threading.Thread | None = None


class EventClient:
    """What the Blender side and scripts use of a client: ``submit``, ``cancel``, ``request_engines`` and
    ``close`` (in subclasses), and the events of one queue. ``WorkerClient`` drives a local worker process,
    ``wire.remote.RemoteClient`` a served engine over HTTP."""

    _events: queue.Queue

    def submit(self, job_folder: str | os.PathLike) -> str:
        raise NotImplementedError

    def cancel(self, job_id: str) -> None:
        raise NotImplementedError

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
        """Submit and block until the job ends; returns the final event (done, error or cancelled).

        Without a timeout it still returns: a dead or hung worker, or a lost server, ends the job with an
        error event."""
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


class WorkerClient(EventClient):
    def __init__(self, python: str | None = None, pythonpath=(), env: dict | None = None,
                 engine_log: str | os.PathLike | None = None, hung_after: float = HUNG_SECONDS):
        """``python``: the interpreter that runs the worker (default: this one). ``pythonpath``: extra
        import folders (e.g. bundled wheels' site-packages). ``engine_log``: file that receives the worker's
        stderr (its log), appended. ``hung_after``: seconds of silence after which the worker is killed."""
        self.python = python or sys.executable
        self.pythonpath = [str(p) for p in pythonpath]
        self.env = dict(env or {})
        self.engine_log = Path(engine_log) if engine_log else None
        self.hung_after = hung_after
        self._gen: _Generation | None = None
        self._events: queue.Queue = queue.Queue()
        self._state = threading.Lock()  # guards _gen and its job between the caller and the reader threads
        self._write_lock = threading.Lock()

    # -- process ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        gen = self._gen
        return gen is not None and gen.proc.poll() is None

    @property
    def pid(self) -> int | None:
        gen = self._gen
        return gen.proc.pid if gen is not None else None

    def start(self) -> None:
        if self.running:
            return
        if self._gen is not None and self._gen.reader is not None:
            self._gen.reader.join(1.0)  # the dead worker's exit (and its job's error) is reported first
        env = dict(os.environ)
        env.update(self.env)
        paths = [str(PACKAGE_PARENT), *self.pythonpath]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("PYTHONIOENCODING", "utf-8")
        proc = subprocess.Popen(
            [self.python, "-m", f"{PACKAGE_NAME}.engine.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        gen = _Generation(proc)
        with self._state:
            self._gen = gen
        gen.reader = threading.Thread(target=self._read_stdout, args=(gen,), daemon=True)
        gen.reader.start()
        threading.Thread(target=self._read_stderr, args=(gen,), daemon=True).start()
        threading.Thread(target=self._watch, args=(gen,), daemon=True).start()

    def _read_stdout(self, gen: _Generation) -> None:
        for line in gen.proc.stdout:
            gen.last_heard = time.monotonic()
            try:
                event = protocol.decode(line, protocol.WORKER_MESSAGES)
            except protocol.ProtocolError as exc:
                event = {"type": "log", "level": "warning", "message": f"bad worker line ({exc}): {line[:200]!r}"}
            if event["type"] == "heartbeat":
                continue
            with self._state:
                if gen is not self._gen:
                    continue  # a worker the client let go
                if event["type"] in protocol.FINAL_JOB_EVENTS and event.get("id") == gen.job:
                    gen.job = None
                self._events.put(event)
        returncode = gen.proc.wait()
        time.sleep(0.05)  # let the stderr reader catch the last lines
        tail = "".join(gen.stderr_tail)[-4000:]
        with self._state:
            if gen is not self._gen:
                return
            job, gen.job = gen.job, None
            if job is not None:
                self._events.put({
                    "type": "error", "id": job, "kind": "worker_hung" if gen.hung else "worker_crashed",
                    "message": (f"the engine worker sent nothing for {self.hung_after:.0f} s and was stopped"
                                if gen.hung else f"the engine worker stopped ({_exit_text(returncode)}) during the job"),
                    "hint": _crash_hint(returncode, tail, gen.hung), "stderr_tail": tail})
            self._events.put({"type": "worker_exit", "returncode": returncode, "hung": gen.hung, "stderr_tail": tail})

    def _read_stderr(self, gen: _Generation) -> None:
        log = open(self.engine_log, "ab") if self.engine_log else None
        try:
            for line in gen.proc.stderr:
                gen.stderr_tail.append(line.decode("utf-8", "replace"))
                if log:
                    log.write(line)
                    log.flush()
        finally:
            if log:
                log.close()

    def _watch(self, gen: _Generation) -> None:
        """Kill the worker when it has been silent for ``hung_after`` seconds (stopped, deadlocked, ...)."""
        while gen.proc.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - gen.last_heard > self.hung_after:
                gen.hung = True
                gen.proc.kill()
                return

    def _send(self, gen: _Generation | None, type_: str, **fields) -> None:
        with self._write_lock:
            try:
                gen.proc.stdin.write(protocol.encode(type_, **fields))
                gen.proc.stdin.flush()
            except (BrokenPipeError, OSError, AttributeError, ValueError):
                pass  # the reader thread reports the exit

    # -- jobs ------------------------------------------------------------------------------------------------
    def submit(self, job_folder: str | os.PathLike) -> str:
        """Send a job (the folder must hold job.json and input.npz); returns its id."""
        if self.running and self._gen.job is not None:
            raise RuntimeError("the worker is busy with another job; wait for it or cancel it")
        self.start()
        job_id = uuid.uuid4().hex[:12]
        with self._state:
            gen = self._gen
            gen.job = job_id
        self._send(gen, "job", id=job_id, folder=str(Path(job_folder).resolve()))
        return job_id

    def cancel(self, job_id: str) -> None:
        """Ask the worker to stop the job: answered ``cancelled`` whether it was still queued or running."""
        if self.running:
            self._send(self._gen, "cancel", id=job_id)

    def request_engines(self) -> None:
        """Ask for the engines' availability and settings; the answer arrives as an ``engines`` event."""
        self.start()
        self._send(self._gen, "engines")

    def close(self, timeout: float = 3.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``timeout``. Its later events are dropped."""
        with self._state:
            gen, self._gen = self._gen, None
        if gen is None or gen.proc.poll() is not None:
            return
        if gen.job is not None:
            self._send(gen, "cancel", id=gen.job)
        self._send(gen, "shutdown")
        try:
            gen.proc.stdin.close()
        except OSError:
            pass
        try:
            gen.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            gen.proc.kill()
            gen.proc.wait()


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _crash_hint(returncode: int, tail: str, hung: bool) -> str:
    """The OOM hint only where memory is plausible: a SIGKILL the client did not send, or an error saying so."""
    if hung:
        return ("the worker stopped answering (suspended, or stuck inside a library); the next job starts a "
                "fresh worker; see the engine log")
    if "MemoryError" in tail or "out of memory" in tail.lower() or returncode in (-9, 137):
        return "the system probably ran out of memory: lower the resolution or batch size, or close other programs"
    return "see the engine log; the next job starts a fresh worker"
