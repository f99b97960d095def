"""The weights downloader and hub loading, really run against a local imitation of the Hugging Face Hub.

A small HTTP server on 127.0.0.1 serves the tiny HoloPart weights (the shared fixture folder) the way the Hub
answers huggingface_hub 2.x: ``HEAD``/``GET /{repo}/resolve/{revision}/{path}`` with ``ETag``,
``X-Repo-Commit``, ``Content-Length`` and ``Range`` support, ``GET /api/models/{repo}/revision/{revision}``
(``sha``, ``siblings``) and ``GET /api/models/{repo}/tree/{commit}`` (the file listing snapshot_download
uses). ``HF_ENDPOINT`` points the real commands, run as subprocesses, at it; the server logs every request.
It can cut a file's connection mid-body once (``drop_once``) or stall mid-body until released (``stall``).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from blender_harness import run_blender
from conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REFERENCE / "model"
REPO = "owner/tiny"
COMMIT = hashlib.sha1(b"owner/tiny@main").hexdigest()
BIG = "transformer/diffusion_pytorch_model.safetensors"
# Files the hub repo holds besides the weights: never to be fetched (not needed; pickle is refused).
EXTRAS = {"README.md": b"# tiny HoloPart\n", "vae/diffusion_pytorch_model.bin": b"\x80\x04 not a real pickle"}
SERVER_LIFETIME_S = 120


def _required_files() -> tuple[str, ...]:
    from holopart_blender.engine.holopart.files import REQUIRED_FILES
    return REQUIRED_FILES


class FakeHub:
    """The Hub's file and repo-info endpoints for one repo at one commit (``main``), on a thread."""

    def __init__(self, folder: Path):
        self.files = {p.relative_to(folder).as_posix(): p.read_bytes()
                      for p in sorted(folder.rglob("*")) if p.is_file()}
        self.files.update(EXTRAS)
        self.log: list[dict] = []
        self.drop_once: set[str] = set()  # cut the first full GET of these after half the body
        self.stall: set[str] = set()  # send half the body, then wait for ``release``
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._serve(self, head=True)

            def do_GET(self):
                hub._serve(self, head=False)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._watchdog = threading.Timer(SERVER_LIFETIME_S, self.stop)  # a bounded lifetime, whatever happens
        self._watchdog.daemon = True
        self.running = False

    def start(self) -> "FakeHub":
        self._thread.start()
        self._watchdog.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self._watchdog.cancel()

    def requests(self, method: str | None = None, prefix: str = "") -> list[dict]:
        with self._lock:
            return [r for r in self.log if (method is None or r["method"] == method) and r["path"].startswith(prefix)]

    def clear(self) -> None:
        with self._lock:
            self.log.clear()

    # -- the endpoints -----------------------------------------------------------------------------------------
    @staticmethod
    def etag(name: str, data: bytes) -> str:
        """Like the Hub: the sha256 for LFS files (the weights), the git blob sha1 for the others."""
        if name.endswith(".safetensors"):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def _reply(self, h, status: int, body: bytes = b"", head: bool = False, **headers) -> None:
        h.send_response(status)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            h.send_header(key.replace("_", "-"), value)
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _json(self, h, data, head=False) -> None:
        self._reply(h, 200, json.dumps(data).encode(), head, Content_Type="application/json")

    def _error(self, h, status: int, code: str, message: str, head=False) -> None:
        self._reply(h, status, json.dumps({"error": message}).encode(), head, Content_Type="application/json",
                    X_Error_Code=code, X_Error_Message=message)

    def _check(self, h, repo: str, revision: str, head: bool) -> bool:
        if repo != REPO:
            self._error(h, 404, "RepoNotFound", "Repository not found", head)
            return False
        if revision not in ("main", COMMIT):
            self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return False
        return True

    def _serve(self, h, head: bool) -> None:
        url = urlsplit(h.path)
        path = unquote(url.path)
        with self._lock:
            self.log.append({"method": h.command, "path": path, "query": url.query, "range": h.headers.get("Range")})
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
            if self._check(h, m[1], m[2], head):
                self._json(h, {"id": REPO, "modelId": REPO, "sha": COMMIT, "private": False,
                               "siblings": [{"rfilename": name} for name in self.files]}, head)
        elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)", path):
            if self._check(h, m[1], m[2], head):
                entries = []
                for name, data in self.files.items():
                    entry = {"type": "file", "path": name, "size": len(data),
                             "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
                    if name.endswith(".safetensors"):
                        entry["lfs"] = {"oid": self.etag(name, data), "size": len(data), "pointerSize": 134}
                    entries.append(entry)
                self._json(h, entries, head)
        elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            if self._check(h, m[1], m[2], head):
                self._file(h, m[3], head)
        else:
            self._error(h, 404, "NotFound", f"no route for {path}", head)

    def _file(self, h, name: str, head: bool) -> None:
        data = self.files.get(name)
        if data is None:
            self._reply(h, 404, b"Entry not found", head, X_Error_Code="EntryNotFound", X_Repo_Commit=COMMIT)
            return
        headers = {"ETag": f'"{self.etag(name, data)}"', "X-Repo-Commit": COMMIT, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start, end, status = 0, len(data) - 1, 200
        if (wanted := h.headers.get("Range")) and not head:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if m is None or int(m[1]) >= len(data):
                self._reply(h, 416, b"", head, Content_Range=f"bytes */{len(data)}")
                return
            start, end, status = int(m[1]), min(int(m[2] or len(data) - 1), len(data) - 1), 206
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = data[start:end + 1]
        cut = not head and status == 200 and (name in self.drop_once or name in self.stall)
        if not cut:
            self._reply(h, status, body, head, **headers)
            return
        # Announce the whole file, send half of it, then drop (or hold) the connection.
        h.send_response(200)
        for key, value in {"Content-Length": str(len(body)), **headers}.items():
            h.send_header(key, value)
        h.end_headers()
        h.wfile.write(body[:len(body) // 2])
        h.wfile.flush()
        if name in self.drop_once:
            self.drop_once.discard(name)
        else:
            self.stalled.set()
            self.release.wait(30)
        h.close_connection = True


@pytest.fixture
def hub():
    server = FakeHub(FIXTURE).start()
    yield server
    server.stop()


def hub_env(hub: FakeHub, tmp_path: Path, **extra) -> dict:
    """The environment for a subprocess: this checkout importable, huggingface_hub pointed at the fake hub
    with its own (empty) cache and no token, proxies and xet off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and not k.lower().endswith("_proxy") and k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ROOT), HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1", HF_HUB_ETAG_TIMEOUT="10",
               HF_HUB_DOWNLOAD_TIMEOUT="20", NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1", **extra)
    return env


WEIGHTS = [sys.executable, "-m", "holopart_blender.engine.holopart.weights"]


def weights_cmd(hub, tmp_path, *args, timeout=60, **env):
    out = subprocess.run([*WEIGHTS, *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path,
                         env=hub_env(hub, tmp_path, **env))
    return out.returncode, events(out.stdout), out.stderr


def weights_in_process(capsys, *args) -> tuple[int, list[dict]]:
    """The weights command in this process: for ``status``, which never touches the network."""
    from holopart_blender.engine.holopart.weights import main
    capsys.readouterr()
    rc = main(list(args))
    return rc, events(capsys.readouterr().out)


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def same_as_fixture(folder: Path, names=None) -> None:
    for name in names or _required_files():
        assert (folder / name).read_bytes() == (FIXTURE / name).read_bytes(), name


def digest(model) -> dict:
    """A sha256 of every tensor of the loaded modules, by name."""
    return {f"{c}.{k}": hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() + str(tuple(v.shape))
            for c in ("vae", "part_encoder", "transformer") for k, v in getattr(model, c).state_dict().items()}


@pytest.fixture(scope="module")
def fixture_model():
    """The fixture folder itself, loaded (no hub involved): what every download must reproduce."""
    from holopart_blender.engine.holopart.loading import from_pretrained
    model = from_pretrained(str(FIXTURE))
    return {"digest": digest(model), "scheduler": repr(model.scheduler)}


# Runs from_pretrained for each (spec, revision, allow_network) in argv[2] (JSON) with cache_dir argv[1], in a
# process that sees the fake hub; prints one JSON line per call: the folder and tensor digest, or the error.
LOAD_SCRIPT = """
import hashlib, json, sys
from holopart_blender.core.errors import WeightsError
from holopart_blender.engine.holopart.loading import from_pretrained
for spec, revision, allow in json.loads(sys.argv[2]):
    try:
        model = from_pretrained(spec, revision=revision, cache_dir=sys.argv[1], allow_network=allow)
    except WeightsError as exc:
        print(json.dumps({"error": exc.message, "hint": exc.hint}), flush=True)
        continue
    digest = {f"{c}.{k}": hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest() + str(tuple(v.shape))
              for c in ("vae", "part_encoder", "transformer") for k, v in getattr(model, c).state_dict().items()}
    print(json.dumps({"folder": str(model.folder), "digest": digest, "scheduler": repr(model.scheduler)}), flush=True)
"""


def load_via_hub(hub, tmp_path, cache_dir, *calls) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, str(cache_dir), json.dumps(calls)], capture_output=True,
                         text=True, timeout=90, cwd=tmp_path, env=hub_env(hub, tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


# -- (a) download, status, load ---------------------------------------------------------------------------------
def test_download_then_status_then_load_matches_the_fixture(hub, tmp_path, fixture_model, capsys):
    from holopart_blender.engine.holopart.loading import from_pretrained
    dest = tmp_path / "weights"
    required = _required_files()
    rc, ev, err = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest), "--allow-network")
    assert rc == 0, err[-3000:]
    files = [e for e in ev if e["event"] == "file"]
    assert [e["file"] for e in files] == list(required) and [e["index"] for e in files] == list(range(len(required)))
    assert all(e["count"] == len(required) for e in files)
    for name in required:  # each file's progress ends at its full size
        progress = [e for e in ev if e["event"] == "progress" and e["file"] == name]
        size = len(hub.files[name])
        assert progress and progress[-1]["bytes"] == progress[-1]["total"] == size, (name, progress)
        assert [p["bytes"] for p in progress] == sorted(p["bytes"] for p in progress)
    assert ev[-2]["event"] == "status" and ev[-2]["found"] and ev[-2]["missing"] == [] and ev[-2]["path"] == str(dest)
    assert ev[-1] == {"event": "done", "ok": True}
    same_as_fixture(dest)
    # One HEAD (metadata) and one GET per required file, at the default revision; nothing else is asked for.
    assert sorted(r["path"] for r in hub.requests("GET")) == sorted(f"/{REPO}/resolve/main/{n}" for n in required)
    assert sorted(r["path"] for r in hub.requests("HEAD")) == sorted(f"/{REPO}/resolve/main/{n}" for n in required)
    assert all(r["range"] is None for r in hub.requests())

    hub.clear()
    rc, ev = weights_in_process(capsys, "status", "--repo", REPO, "--dest", str(dest))
    assert rc == 0 and ev == [{"event": "status", "repo": REPO, "revision": None, "found": True, "path": str(dest),
                               "missing": [], "message": "complete"}]
    assert hub.requests() == []  # status never uses the network

    model = from_pretrained(str(dest))
    assert digest(model) == fixture_model["digest"] and repr(model.scheduler) == fixture_model["scheduler"]


# -- (b) no network without --allow-network ------------------------------------------------------------------------
def test_download_without_allow_network_fetches_nothing(hub, tmp_path):
    from holopart_blender.core.errors import WeightsError
    from holopart_blender.engine.holopart.loading import from_pretrained
    dest = tmp_path / "weights"
    rc, ev, _ = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest))
    assert rc == 1
    assert ev == [{"event": "error", "message": "downloading needs network access", "hint": "pass --allow-network"}]
    assert not dest.exists()
    # Nor does loading a hub id that is not in the cache without network access (local_files_only).
    with pytest.raises(WeightsError, match="are not downloaded and network access is not allowed") as info:
        from_pretrained(REPO, cache_dir=tmp_path / "cache")
    assert "Download" in info.value.hint
    assert hub.requests() == []


# -- (c) interrupted downloads -----------------------------------------------------------------------------------
def test_a_dropped_connection_resumes_the_file_with_a_range_request(hub, tmp_path):
    """A connection that breaks mid-file is retried in the same run, asking only for the rest (Range)."""
    dest = tmp_path / "weights"
    hub.drop_once.add(BIG)
    rc, ev, err = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest), "--allow-network")
    assert rc == 0, err[-3000:]
    gets = hub.requests("GET", f"/{REPO}/resolve/main/{BIG}")
    size = len(hub.files[BIG])
    assert len(gets) == 2 and gets[0]["range"] is None, gets
    assert gets[1]["range"] == f"bytes={size // 2}-", gets  # every byte received is kept
    assert f"resuming at byte {size // 2}" in err
    progress = [e for e in ev if e["event"] == "progress" and e["file"] == BIG]
    assert progress[-1]["bytes"] == progress[-1]["total"] == size  # not double-counted across the retry
    same_as_fixture(dest)
    assert not list(dest.rglob("*.part*"))
    assert ev[-1] == {"event": "done", "ok": True}


def test_a_stopped_download_resumes_in_the_next_run(hub, tmp_path):
    """Stopping the command mid-file (Blender's Stop terminates it) keeps the finished files and the partial
    one; the next run fetches the finished files no more (a HEAD only) and asks for the rest of the partial
    file with a Range request."""
    dest = tmp_path / "weights"
    required = _required_files()
    assert required[-1] == BIG  # the stall hits the last file: all others are finished by then
    hub.stall.add(BIG)
    proc = subprocess.Popen([*WEIGHTS, "download", "--repo", REPO, "--dest", str(dest), "--allow-network"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=hub_env(hub, tmp_path))
    try:
        assert hub.stalled.wait(40), "the download never reached the stalled file"
        partial = dest / f"{BIG}.part"
        deadline = time.monotonic() + 10
        while not (partial.is_file() and partial.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # let the client take in the half that was sent
        proc.terminate()
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not (dest / BIG).exists()
    same_as_fixture(dest, required[:-1])
    kept = partial.stat().st_size
    assert 0 < kept < len(hub.files[BIG])
    hub.stall.clear()
    hub.release.set()
    hub.clear()

    rc, ev, err = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest), "--allow-network")
    assert rc == 0, err[-3000:]
    gets = hub.requests("GET")
    assert [(r["path"], r["range"]) for r in gets] == [(f"/{REPO}/resolve/main/{BIG}", f"bytes={kept}-")]
    assert len(hub.requests("HEAD")) == len(required)  # finished files: a HEAD only
    same_as_fixture(dest)
    assert not list(dest.rglob("*.part*"))
    assert ev[-1] == {"event": "done", "ok": True}


def test_a_partial_file_of_another_version_starts_over(hub, tmp_path):
    """Partial bytes are resumed only for the file version (ETag) they came from; damaged content is refused."""
    dest = tmp_path / "weights"
    (dest / BIG).parent.mkdir(parents=True)
    (dest / f"{BIG}.part").write_bytes(b"x" * 1000)
    (dest / f"{BIG}.part.etag").write_text("an-older-version")
    rc, ev, err = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest), "--allow-network")
    assert rc == 0, err[-3000:]
    assert [r["range"] for r in hub.requests("GET", f"/{REPO}/resolve/main/{BIG}")] == [None]
    same_as_fixture(dest)
    # Same ETag but wrong bytes: the SHA-256 check catches it, deletes the file and fails clearly.
    (dest / BIG).unlink()
    etag = FakeHub.etag(BIG, hub.files[BIG])
    (dest / f"{BIG}.part").write_bytes(b"y" * (len(hub.files[BIG]) - 10))
    (dest / f"{BIG}.part.etag").write_text(etag)
    rc, ev, err = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--dest", str(dest), "--allow-network")
    assert rc == 1 and ev[-1]["event"] == "error" and "damaged" in ev[-1]["message"]
    assert not (dest / BIG).exists() and not (dest / f"{BIG}.part").exists()


# -- (d) from_pretrained with a hub id -----------------------------------------------------------------------------
def test_from_pretrained_downloads_a_hub_id_then_loads_it_offline(hub, tmp_path, fixture_model, capsys,
                                                                  monkeypatch):
    import huggingface_hub.constants
    from holopart_blender.engine.holopart.loading import from_pretrained
    cache = tmp_path / "cache"
    [first] = load_via_hub(hub, tmp_path, cache, (REPO, None, True))
    assert first.get("digest") == fixture_model["digest"], first.get("error")
    folder = Path(first["folder"])
    assert folder == cache / "models--owner--tiny" / "snapshots" / COMMIT
    same_as_fixture(folder)
    paths = [r["path"] for r in hub.requests()]
    assert f"/api/models/{REPO}/revision/main" in paths and f"/api/models/{REPO}/tree/{COMMIT}" in paths
    fetched = sorted(r["path"] for r in hub.requests("GET", f"/{REPO}/resolve/"))
    assert fetched == sorted(f"/{REPO}/resolve/{COMMIT}/{n}" for n in _required_files())
    assert not any(name in p for p in paths for name in EXTRAS)  # not the README, not the pickle

    hub.stop()  # from here on nothing answers
    model = from_pretrained(REPO, cache_dir=cache, allow_network=False)
    assert model.folder == folder and digest(model) == fixture_model["digest"]
    # `weights status` without --dest looks in the Hugging Face cache (offline); HF_HUB_CACHE, as read at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    rc, ev = weights_in_process(capsys, "status", "--repo", REPO)
    assert rc == 0 and ev[-1]["found"] and ev[-1]["path"] == str(folder)


# -- (e) a revision or repo that does not exist --------------------------------------------------------------------
def test_an_unknown_revision_or_repo_is_a_clear_weights_error(hub, tmp_path):
    cache = tmp_path / "cache"
    bad_revision, bad_repo = load_via_hub(hub, tmp_path, cache, (REPO, "no-such-rev", True),
                                          ("owner/missing", None, True))
    assert bad_revision["error"].startswith(f"cannot download '{REPO}': RevisionNotFoundError"), bad_revision
    assert "no-such-rev" in bad_revision["error"] and "revision" in bad_revision["hint"]
    assert bad_repo["error"].startswith("cannot download 'owner/missing': RepositoryNotFoundError"), bad_repo
    assert "repo id" in bad_repo["hint"]
    assert not list(cache.rglob("*.safetensors"))

    dest = tmp_path / "weights"
    rc, ev, _ = weights_cmd(hub, tmp_path, "download", "--repo", REPO, "--revision", "no-such-rev", "--dest",
                            str(dest), "--allow-network")
    assert rc == 1 and ev[-1]["event"] == "error", ev
    assert ev[-1]["message"].startswith("RevisionNotFoundError") and "no-such-rev" in ev[-1]["message"]
    assert not list(dest.rglob("*.json")) and not list(dest.rglob("*.safetensors"))


# -- (f) the Blender Download operator, with online access turned on ---------------------------------------------
def test_blender_download_operator_runs_the_real_command_with_online_access_on(hub, tmp_path, monkeypatch):
    """In real Blender (the bpy module), with the Allow Online Access preference switched on the way a user does
    it, Download Weights runs the weights command in the engine environment (a venv seeing this project's
    packages, as in test_blender_environment) against the local hub, reports progress, and Check
    Installation then finds the weights. (With online access off it refuses: test_blender_operators.)"""
    for key, value in hub_env(hub, tmp_path).items():
        if key.startswith("HF_") or key == "NO_PROXY":
            monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(key)
    out = run_blender(f"""
        from holopart_blender.blender import setup_operators
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        manager = ready_environment(prefs)
        assert not bpy.app.online_access
        bpy.context.preferences.system.use_online_access = True
        assert bpy.app.online_access and setup_operators.offline_reason() == ""
        prefs.weights_source = "HUB"
        prefs.weights_repo = {REPO!r}
        seen = []
        report = setup_operators._weights_progress
        def spy(task, line):
            report(task, line)
            seen.append((task.progress, task.message))
        setup_operators._weights_progress = spy
        assert bpy.ops.holopart.download_weights() == {{"FINISHED"}}
        task = setup_operators.tasks["weights"]
        assert bpy.ops.holopart.refresh_status() == {{"FINISHED"}}
        emit(ok=task.ok, error=task.error, message=task.message, progress=task.progress, seen=seen,
             log=task.log_path.read_text(), dest=str(session.weights_download_folder(prefs)),
             status=dict(setup_operators.weights_status), python=str(manager.python))
    """, tmp_path, timeout=120)
    assert out["ok"], (out["error"], out["log"][-3000:])
    assert out["message"] == "done" and out["progress"] == 1.0
    dest = Path(out["dest"])
    assert dest.is_relative_to(tmp_path / "blender_user") and dest.parts[-3:] == ("weights", "owner--tiny", "main")
    same_as_fixture(dest)
    assert f"$ {out['python']} -m holopart_blender.engine.holopart.weights download --repo {REPO} --dest {dest} " \
           "--allow-network" in out["log"]
    required = _required_files()
    progress = [p for p, _ in out["seen"]]
    assert progress == sorted(progress) and 0 <= progress[0] and progress[-1] == pytest.approx(1.0), progress
    messages = [m for _, m in out["seen"]]
    assert f"{required[0]} (1/{len(required)})" in messages and f"{BIG} ({len(required)}/{len(required)})" in messages
    assert out["status"]["found"] and out["status"]["summary"] == f"installed in {dest}"
    assert len(hub.requests("GET", f"/{REPO}/resolve/main/")) == len(required)
