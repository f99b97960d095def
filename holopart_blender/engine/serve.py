"""The engine over HTTP: ``holopart serve --token-file F`` deploys the worker as a Ray Serve application.

    holopart serve --token-file ~/.holopart-token                      # http://127.0.0.1:8700, this machine only
    holopart serve --host 0.0.0.0 --token-file token --set weights=/srv/holopart   # a studio's GPU server

The replica drives the same worker process as the Blender extension (``wire.client.WorkerClient``), so a
served job is validated, run, reported and cancelled exactly as a local one, and its result is the same
files. A job arrives as one request body, its job folder packed (``jobfolder.pack``); the replica writes it
into a folder of its own (fixed file names), checks it with ``jobfolder.read_job`` and queues it; the worker
runs one job at a time. Every request needs ``Authorization: Bearer TOKEN`` (compared in constant time with
the token file's); bodies over ``--max-body-mb`` and jobs over ``--max-job-seconds`` are refused or stopped.
A request never names a file or code on the server: the settings that would (``weights``, ``revision``,
``allow_network``) are refused, and ``--set`` fixes them for every job. The HTTP protocol is in
docs/protocol.md; TLS goes in front (docs/batch-and-server.md).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

from ..core.errors import EngineError, InputError
from ..wire import jobfolder, protocol
from ..wire.remote import too_large

SERVER_SETTINGS = ("weights", "revision", "allow_network")  # the server's own files and network: --set only
KEEP_FINISHED = 32  # finished jobs whose events and result stay available
CANCEL_GRACE = 10.0  # seconds a job past the time limit has to answer its cancel before the worker is stopped
LONG_POLL = 2.0  # seconds an events request waits for news
MIN_TOKEN = 16


def read_token(path: str | os.PathLike) -> str:
    """The access token in ``path`` (its first line); InputError when missing or shorter than ``MIN_TOKEN``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such token file: {path}", "write a long random token into it, e.g. "
                         "python -c \"import secrets; print(secrets.token_urlsafe(32))\" > token.txt")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the token file {path}: {exc}", "write the token as one line of text") from None
    token = lines[0].strip() if lines else ""
    if len(token) < MIN_TOKEN:
        raise InputError(f"the token in {path} is shorter than {MIN_TOKEN} characters", "use a long random token")
    return token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class _Job:
    def __init__(self, job_id: str, folder: Path):
        self.id, self.folder = job_id, folder
        self.events: list[dict] = []
        self.worker_id: str | None = None
        self.started: float | None = None
        self.cancel_sent: float | None = None
        self.over_time = False
        self.final = False


class EngineServer:
    """The Serve deployment: HTTP in front of one worker process (one job at a time, the others queued)."""

    def __init__(self, digest: str, max_body: int, max_job_seconds: float, fixed_settings: dict):
        from ..wire.client import WorkerClient

        self._digest = digest.encode()
        self._max_body, self._max_seconds = max_body, max_job_seconds
        self._fixed = dict(fixed_settings)
        self._root = Path(tempfile.mkdtemp(prefix="holopart-serve-"))
        self._client = WorkerClient()
        self._lock = threading.Lock()  # guards the jobs, the queue and the listing between requests and the pump
        self._jobs: dict[str, _Job] = {}
        self._queue: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._finished: collections.deque[str] = collections.deque()
        self._listing: dict | None = None
        self._client.request_engines()  # starts the worker now, so the first job finds it ready
        threading.Thread(target=self._pump, daemon=True).start()

    # -- the worker side -----------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Route the worker's events to their jobs, start queued jobs, enforce the time limit."""
        while True:
            event = self._client.wait_event(timeout=0.2)
            with self._lock:
                if event is not None:
                    self._route(event)
                job = self._running
                if job is not None and job.started and time.monotonic() - job.started > self._max_seconds:
                    job.over_time = True
                    if job.cancel_sent is None:
                        job.cancel_sent = time.monotonic()
                        self._client.cancel(job.worker_id)
                    elif time.monotonic() - job.cancel_sent > CANCEL_GRACE:
                        self._client.close(timeout=0.5)  # stuck inside a step: the next job gets a fresh worker
                        self._end(job, {"type": "cancelled", "id": job.worker_id})
                if self._running is None and self._queue:
                    job = self._running = self._queue.popleft()
                    job.started = time.monotonic()
                    job.worker_id = self._client.submit(job.folder)

    def _route(self, event: dict) -> None:
        if event["type"] == "engines":
            self._listing = event
            return
        job = self._running
        if job is None or event.get("id") != job.worker_id:
            return  # worker_exit, logs, or news of a job that already ended here
        if event["type"] in protocol.FINAL_JOB_EVENTS:
            self._end(job, event)
        else:
            job.events.append({**event, "id": job.id})

    def _end(self, job: _Job, event: dict) -> None:
        if job.over_time and event["type"] == "cancelled":
            event = {"type": "error", "kind": "timeout", "message": f"the job ran past the server's limit of "
                     f"{self._max_seconds:g} s and was stopped", "hint": "ask the server's owner, or send a smaller job"}
        event = {**event, "id": job.id}
        event.pop("folder", None)  # a path on the server: the client has its own folder
        job.events.append(event)
        job.final = True
        self._running = None
        self._finished.append(job.id)
        while len(self._finished) > KEEP_FINISHED:
            old = self._jobs.pop(self._finished.popleft(), None)
            if old is not None:
                shutil.rmtree(old.folder, ignore_errors=True)

    # -- HTTP ----------------------------------------------------------------------------------------------
    async def __call__(self, request):
        from starlette.responses import JSONResponse, Response

        if not self._authorized(request.headers.get("authorization", "")):
            given = "authorization" in request.headers
            return JSONResponse(_error("unauthorized", "the access token is wrong" if given else
                                       "this server needs its access token",
                                       "copy the token from the server's token file into the preferences"),
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        parts = [p for p in request.url.path.split("/") if p]
        method = request.method
        try:
            if parts == ["v1", "ping"] and method == "GET":
                return JSONResponse({"protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid(),
                                     "max_body_bytes": self._max_body})
            if parts == ["v1", "engines"] and method == "GET":
                return JSONResponse(await self._engines())
            if parts == ["v1", "jobs"] and method == "POST":
                return JSONResponse(await self._submit(request), status_code=202)
            if len(parts) == 4 and parts[:2] == ["v1", "jobs"]:
                job = self._jobs.get(parts[2])
                if job is None:
                    raise EngineError(f"the server has no job {parts[2][:40]}", "the server restarted, or the job "
                                      "ended long ago: run it again", kind="unknown_job")
                if parts[3] == "events" and method == "GET":
                    return JSONResponse(await self._events(job, request.query_params.get("after", "0")))
                if parts[3] == "cancel" and method == "POST":
                    return JSONResponse(self._cancel(job))
                if parts[3] == "result" and method == "GET":
                    if not any(e["type"] == "done" for e in job.events):
                        raise EngineError("the job has no result", "wait for its done event", kind="no_result")
                    body = await asyncio.to_thread(jobfolder.pack, job.folder, jobfolder.RESULT_FILES)
                    return Response(body, media_type="application/zip")
            return JSONResponse(_error("not_found", f"no {method} {request.url.path} here", "see docs/protocol.md"),
                                status_code=404)
        except EngineError as exc:
            status = {"bad_input": 400, "too_large": 413, "unknown_job": 404, "no_result": 409}.get(exc.kind, 500)
            return JSONResponse(exc.to_dict(), status_code=status)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        given = token_digest(token.strip()).encode()
        return hmac.compare_digest(given, self._digest) and scheme.lower() == "bearer"

    async def _engines(self) -> dict:
        if self._listing is None:
            self._client.request_engines()
        deadline = time.monotonic() + 120
        while self._listing is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self._listing is None:
            raise EngineError("the engine worker did not list its engines", "see the server's log", kind="internal")
        return {k: v for k, v in self._listing.items() if k not in ("v", "type")}

    async def _submit(self, request) -> dict:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise _too_large(self._max_body)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise _too_large(self._max_body)
            chunks.append(chunk)
        job = _Job(uuid.uuid4().hex, self._root / uuid.uuid4().hex)
        try:
            await asyncio.to_thread(self._prepare, b"".join(chunks), job.folder)
        except EngineError:
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self._lock:
            self._jobs[job.id] = job
            self._queue.append(job)
        return {"id": job.id}

    def _prepare(self, body: bytes, folder: Path) -> None:
        """Unpack and check the job as the worker will; fix the server's own settings in its request."""
        jobfolder.unpack(body, folder, jobfolder.JOB_FILES)
        _, request = jobfolder.read_job(folder)
        for settings in (request.settings, request.segmentation_settings):
            named = sorted(set(settings) & set(SERVER_SETTINGS))
            if named:
                raise InputError(f"a request may not set {', '.join(named)}: the server uses its own",
                                 "leave them out; the server's owner sets them with holopart serve --set")
        if self._fixed:
            meta = json.loads((folder / "job.json").read_text())
            meta["request"]["settings"].update(self._fixed)
            (folder / "job.json").write_text(json.dumps(meta))

    async def _events(self, job: _Job, after: str) -> dict:
        start = int(after) if after.isdigit() else 0
        deadline = time.monotonic() + LONG_POLL
        while len(job.events) <= start and not job.final and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        events = job.events[start:]
        return {"events": events, "next": start + len(events),
                "queued": job.started is None}

    def _cancel(self, job: _Job) -> dict:
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                self._end(job, {"type": "cancelled"})
            elif job is self._running and job.worker_id is not None:
                self._client.cancel(job.worker_id)
        return {}


def _error(kind: str, message: str, hint: str) -> dict:
    return {"kind": kind, "message": message, "hint": hint}


def _too_large(limit: int) -> EngineError:
    return EngineError(*too_large(limit), kind="too_large")


def run_server(args) -> int:
    """``holopart serve``: deploy ``EngineServer`` on Ray Serve at ``--host``:``--port`` and wait for Ctrl+C."""
    from .batch import start_ray
    from .cli import parse_settings

    digest = token_digest(read_token(args.token_file))
    fixed = parse_settings(args.set, None)
    import ray
    from ray import serve

    start_ray(args.address)
    serve.start(http_options={"host": args.host, "port": args.port})
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    deployment = serve.deployment(EngineServer, name="holopart", num_replicas=1, max_ongoing_requests=256,
                                  ray_actor_options={"num_cpus": 1, "num_gpus": gpus})
    serve.run(deployment.bind(digest, int(args.max_body_mb * 1e6), float(args.max_job_seconds), fixed),
              name="holopart", route_prefix="/")
    print(f"holopart serve: http://{args.host}:{args.port}/ ready (token from {args.token_file}); Ctrl+C stops",
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 0
