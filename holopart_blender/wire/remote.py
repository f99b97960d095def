"""Client for a served engine (``holopart serve``) over HTTP: standard-library Python (urllib), no bpy.

    client = RemoteClient("http://gpu-server:8700", token)
    job_id = client.submit(job_folder)            # uploads job.json + input.npz; returns at once
    for event in client.poll(): ...               # the worker protocol's events, as from a local worker
    client.cancel(job_id)

It is a drop-in for ``WorkerClient``: the same events (``accepted``, ``progress``, ``done``, ``error``,
``cancelled``, ``engines``) reach the same queue, and a ``done`` comes only after the result has been written
into the local job folder, so ``jobfolder.read_result`` reads it as after a local run. A thread per job
uploads it and long-polls its events. Failures are ``error`` events with a kind: ``unauthorized`` (missing or
wrong token), ``server_unreachable``, ``server_lost_job`` (the server restarted during the job, e.g. a killed
replica; the next job works on the new one), and the server's own (``bad_input``, ``too_large``, ``timeout``).
See docs/protocol.md ("HTTP").
"""

from __future__ import annotations

import ipaddress
import json
import os
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from . import protocol
from .client import EventClient

UNREACHABLE_SECONDS = 60.0  # how long the server may be unreachable during a job (a replica restarting)
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal")
LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (  # loopback, private (RFC 1918, 4193), link-local
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "::1/128", "fc00::/7",
    "fe80::/10"))


def is_local_network(url: str) -> bool:
    """True when ``url``'s host is this computer or the local network, judged from the text alone (no lookup):
    an address in ``LOCAL_NETWORKS``, ``localhost``, a one-label name, or a name under ``.local``, ``.lan``,
    ``.home.arpa`` or ``.internal``."""
    host = (urllib.parse.urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or "." not in host or host.endswith(LOCAL_SUFFIXES)
    return any(address in network for network in LOCAL_NETWORKS if network.version == address.version)


class RemoteError(Exception):
    def __init__(self, kind: str, message: str, hint: str = ""):
        super().__init__(message)
        self.event = {"type": "error", "kind": kind, "message": message, "hint": hint}


def too_large(limit: int) -> tuple[str, str]:
    """The message and hint for a job over a server's body limit (``limit`` bytes), said alike by the client,
    which checks before uploading, and by the server, which checks what arrives."""
    return (f"the job is larger than the server's limit of {limit / 1e6:g} MB",
            "decimate the mesh, or ask the server's owner to raise --max-body-mb")


class RemoteClient(EventClient):
    def __init__(self, url: str, token: str, unreachable_after: float = UNREACHABLE_SECONDS):
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"the server URL must start with http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self._token = token
        self.unreachable_after = unreachable_after
        self._events: queue.Queue = queue.Queue()
        self._jobs: dict[str, dict] = {}  # local id -> {"server": id or None, "cancel": bool, "dropped": bool}

    running = True  # no local process: the server's state is known from its answers
    pid = None

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: bytes | None = None, timeout: float = 30.0) -> bytes:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {self._token}", "Content-Type": "application/zip" if body else "text/plain"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.read()
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read())
            except ValueError:
                error = {}
            if not isinstance(error, dict) or "kind" not in error:
                raise RemoteError("server_unreachable" if exc.code >= 500 else "server_error",
                                  f"the server answered {exc.code} {exc.reason}", "see the server's log") from None
            raise RemoteError(error["kind"], str(error.get("message", "")), str(error.get("hint", ""))) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError("server_unreachable", f"cannot reach the server at {self.url}: {reason}",
                              "check the URL and that holopart serve runs there") from None

    def _call_json(self, method: str, path: str, body: bytes | None = None, timeout: float = 30.0) -> dict:
        return json.loads(self._call(method, path, body, timeout))

    def _patient(self, method: str, path: str, state: dict) -> dict:
        """A call that rides out a server restarting (unreachable, or 5xx) for ``unreachable_after`` seconds."""
        started = time.monotonic()
        while True:
            try:
                return self._call_json(method, path, timeout=30.0)
            except RemoteError as exc:
                if exc.event["kind"] != "server_unreachable" or time.monotonic() - started > self.unreachable_after:
                    raise
                if state["dropped"]:
                    raise
                time.sleep(1.0)

    # -- jobs ------------------------------------------------------------------------------------------------
    def submit(self, job_folder: str | os.PathLike) -> str:
        job_id = uuid.uuid4().hex[:12]
        state = self._jobs[job_id] = {"server": None, "cancel": False, "dropped": False}
        threading.Thread(target=self._follow, args=(job_id, Path(job_folder), state), daemon=True).start()
        return job_id

    def _follow(self, job_id: str, folder: Path, state: dict) -> None:
        from .jobfolder import JOB_FILES, RESULT_FILES, pack, unpack

        try:
            body = pack(folder, JOB_FILES)
            # Checked here first: a server refusing a body on its length closes the connection while the body
            # is still being sent, and the client would see a reset instead of its answer.
            limit = self._call_json("GET", "/v1/ping").get("max_body_bytes")
            if isinstance(limit, int) and len(body) > limit:
                raise RemoteError("too_large", *too_large(limit))
            server = self._call_json("POST", "/v1/jobs", body, timeout=300.0)["id"]
            state["server"] = server
            if state["cancel"]:
                self._call("POST", f"/v1/jobs/{server}/cancel")
            after = 0
            while not state["dropped"]:
                try:
                    answer = self._patient("GET", f"/v1/jobs/{server}/events?after={after}", state)
                except RemoteError as exc:
                    if exc.event["kind"] == "unknown_job":
                        raise RemoteError("server_lost_job", "the server restarted during the job and lost it",
                                          "run the job again: the next one runs on the restarted server") from None
                    raise
                after = answer["next"]
                for event in answer["events"]:
                    if event["type"] == "done":
                        unpack(self._call("GET", f"/v1/jobs/{server}/result", timeout=300.0), folder, RESULT_FILES)
                        event = {**event, "folder": str(folder)}
                    self._put({**event, "id": job_id}, state)
                    if event["type"] in protocol.FINAL_JOB_EVENTS:
                        return
        except RemoteError as exc:
            self._put({**exc.event, "id": job_id}, state)
        except Exception as exc:  # noqa: BLE001 - a job must always end with an event, never hang the caller
            self._put({"type": "error", "id": job_id, "kind": "internal", "message": f"{type(exc).__name__}: {exc}",
                       "hint": "this is a bug in the remote client"}, state)
        finally:
            self._jobs.pop(job_id, None)

    def _put(self, event: dict, state: dict | None = None) -> None:
        if state is None or not state["dropped"]:
            self._events.put({"v": 1, **event})

    def cancel(self, job_id: str) -> None:
        """Ask the server to stop the job (answered ``cancelled``, like a local worker)."""
        state = self._jobs.get(job_id)
        if state is None:
            return
        state["cancel"] = True
        if state["server"] is not None:
            threading.Thread(target=self._quiet_call, args=("POST", f"/v1/jobs/{state['server']}/cancel"),
                             daemon=True).start()

    def _quiet_call(self, method: str, path: str) -> None:
        try:
            self._call(method, path, timeout=10.0)
        except RemoteError:
            pass  # the job's own thread reports what the server does

    def request_engines(self) -> None:
        """Ask for the server's engines; the answer is an ``engines`` event, or a ``worker_exit`` with the
        reason (``stderr_tail``) when the server cannot be asked."""
        def ask():
            try:
                self._put({"type": "engines", **self._call_json("GET", "/v1/engines", timeout=130.0)})
            except RemoteError as exc:
                self._put({"type": "worker_exit", "returncode": None, "hung": False,
                           "stderr_tail": exc.event["message"], "kind": exc.event["kind"]})
        threading.Thread(target=ask, daemon=True).start()

    def close(self, timeout: float = 3.0) -> None:
        """Let go of the jobs in progress: each is cancelled on the server and its later events are dropped
        (as a closed worker's); the client takes new jobs."""
        for job_id, state in list(self._jobs.items()):
            self.cancel(job_id)
            state["dropped"] = True
