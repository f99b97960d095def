"""``holopart serve`` (Ray Serve) on 127.0.0.1 with real HTTP, driven from real Blender and from the remote client.

One server for the module: started as the command a studio runs, stopped (with its Ray instance) after.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from blender_harness import run_blender
from holopart_blender.engine import cli, meshfiles
from holopart_blender.wire import jobfolder
from holopart_blender.wire.client import PACKAGE_PARENT
from holopart_blender.wire.remote import RemoteClient, is_local_network
from holopart_blender.wire.request import JobRequest

TOKEN = "correct-horse-battery-staple-0123456789"
MAX_BODY_MB = 4
MAX_JOB_SECONDS = 10  # every other job here takes a second or two


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    (folder / "token.txt").write_text(TOKEN + "\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "holopart_blender.engine.cli", "serve", "--port", str(port),
                             "--token-file", str(folder / "token.txt"), "--max-body-mb", str(MAX_BODY_MB),
                             "--max-job-seconds", str(MAX_JOB_SECONDS)],
                            env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)}, cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log: collections.deque = collections.deque(maxlen=200)
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            log.append(line)
            if "ready" in line and "holopart serve" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(300):
        proc.kill()
        pytest.fail("holopart serve did not start:\n" + "".join(log))
    yield f"http://127.0.0.1:{port}"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def call(url, path, token=None, body=None):
    """(status, JSON answer) of one request."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url + path, data=body, headers=headers, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def job_body(tmp_path, benchmark_dir, name="drawer", request=None):
    folder = tmp_path / f"job_{name}"
    jobfolder.write_job(folder, meshfiles.load_job(benchmark_dir / f"{name}.glb"),
                        request or JobRequest("complete", "geometric"))
    return jobfolder.pack(folder, jobfolder.JOB_FILES)


def test_requests_without_the_token_or_with_a_wrong_one_are_refused(server, benchmark_dir, tmp_path):
    body = job_body(tmp_path, benchmark_dir)
    for path, data in (("/v1/ping", None), ("/v1/engines", None), ("/v1/jobs", body)):
        status, answer = call(server, path, body=data)
        assert (status, answer["kind"], answer["message"]) == (401, "unauthorized", "this server needs its access token")
        for wrong in ("", TOKEN[:-1], TOKEN + "x", "x" * len(TOKEN)):
            status, answer = call(server, path, token=wrong, body=data)
            assert (status, answer["kind"], answer["message"]) == (401, "unauthorized", "the access token is wrong")
    status, ping = call(server, "/v1/ping", token=TOKEN)
    assert status == 200 and ping["max_body_bytes"] == MAX_BODY_MB * 1_000_000
    # With the token, what the local worker refuses is refused, and so are bodies over the limit.
    assert call(server, "/v1/jobs", TOKEN, b"not a zip")[1]["kind"] == "bad_input"
    status, answer = call(server, "/v1/jobs", TOKEN, job_body(tmp_path, benchmark_dir, request=JobRequest(
        "complete", "holopart", {"weights": "/etc"})))
    assert status == 400 and "may not set weights" in answer["message"]
    status, answer = call(server, "/v1/jobs", TOKEN, b"0" * (MAX_BODY_MB * 1_000_000 + 1))
    assert (status, answer["kind"]) == (413, "too_large")
    assert call(server, "/v1/jobs/0123/events", TOKEN)[1]["kind"] == "unknown_job"


def test_the_server_does_not_start_without_a_usable_token_file(tmp_path, capsys):
    (tmp_path / "short.txt").write_text("too-short\n")
    assert cli.main(["serve", "--token-file", str(tmp_path / "short.txt")]) == 2
    assert cli.main(["serve", "--token-file", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err
    assert "shorter than 16 characters" in err and "no such token file" in err


def test_online_access_decides_only_beyond_the_local_network():
    for url in ("http://127.0.0.1:8700", "http://localhost:8700", "http://[::1]:8700", "http://192.168.1.20:8700",
                "http://10.0.0.5", "https://172.16.4.1", "http://gpu-server:8700", "http://render.local:8700"):
        assert is_local_network(url), url
    for url in ("http://203.0.113.7:8700", "https://gpu.example.com", "http://8.8.8.8", "http://172.32.0.1"):
        assert not is_local_network(url), url


def test_blender_completes_on_the_server_as_it_does_locally(server, tmp_path):
    out = run_blender(f"""
        prefs = bpy.context.preferences.addons["holopart_blender"].preferences
        def run_both(op, **kw):
            results = {{}}
            for where in ("LOCAL", "REMOTE"):
                prefs.engine_location = where
                src = two_cubes_joined(op + where)
                if op == "part":
                    select_faces(src, [0, 1, 2])
                    assert bpy.ops.holopart.complete_part(engine="geometric") == {{"FINISHED"}}
                    bpy.ops.object.mode_set(mode="OBJECT")
                else:
                    assert bpy.ops.holopart.complete_all(engine="geometric") == {{"FINISHED"}}
                results[where] = [(np.array([tuple(v.co) for v in o.data.vertices]).tolist(), len(o.data.polygons))
                                  for o in result_objects(op + where)]
            return results
        prefs.server_url = {server!r}
        prefs.server_token = {TOKEN!r}
        assert prefs.server_token == {TOKEN!r}
        part, whole = run_both("part"), run_both("all")
        assert part["LOCAL"] == part["REMOTE"] and len(part["REMOTE"]) == 1
        assert whole["LOCAL"] == whole["REMOTE"] and len(whole["REMOTE"]) == 2
        # Progress and cancel of a running remote job, as the modal operator drives them.
        prefs.engine_location = "REMOTE"
        client = session.worker_client(prefs)
        src = two_cubes_joined("Cancelled")
        job = Job(client, export.read_source(src, bpy.context.evaluated_depsgraph_get(), "attribute"),
                  operators.make_request(prefs, bpy.context.scene.holopart, "amodal", "geometric"))
        job.start()
        job.cancel()
        import time
        deadline = time.monotonic() + 120
        while job.drain() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        job.finish()
        events = []
        final = Job(client, export.read_source(src, bpy.context.evaluated_depsgraph_get(), "attribute"),
                    operators.make_request(prefs, bpy.context.scene.holopart, "amodal", "geometric")).run(events.append)
        # The token is in the user folder's file alone: not in the saved .blend, not in the saved preferences.
        bpy.ops.wm.save_as_mainfile(filepath=str(Path("scene.blend").resolve()))
        bpy.ops.wm.save_userpref()
        userpref = Path(bpy.utils.resource_path("USER")) / "config" / "userpref.blend"
        emit(cancelled=job.final["type"], final=final["type"], progress=[e["fraction"] for e in events
                                                                          if e["type"] == "progress"],
             in_blend={TOKEN!r}.encode() in Path("scene.blend").read_bytes(),
             in_userpref={TOKEN!r}.encode() in userpref.read_bytes(), token_file=str(session.token_file()),
             mode=oct(session.token_file().stat().st_mode & 0o777))
        # Beyond the local network, Blender's online access decides (off in a background Blender).
        prefs.server_url = "https://gpu.example.com:8700"
        assert not bpy.app.online_access
        src = two_cubes_joined("Offline")
        try:
            bpy.ops.holopart.complete_all()
            refused = ""
        except RuntimeError as exc:
            refused = str(exc)
        emit(refused=refused)
    """, tmp_path)
    assert out["cancelled"] == "cancelled" and out["final"] == "done"
    assert out["progress"] and all(0.0 <= f <= 1.0 for f in out["progress"])
    assert not out["in_blend"] and not out["in_userpref"] and out["mode"] == "0o600"
    assert "online access is off" in out["refused"]


def test_a_body_over_the_size_limit_is_refused_and_a_job_past_the_time_limit_is_stopped(server, benchmark_dir, tmp_path):
    large = tmp_path / "large"  # first, one over the body limit: refused before it runs
    jobfolder.write_job(large, meshfiles.load_job(benchmark_dir / "mini_cheetah.glb"), JobRequest())
    final = RemoteClient(server, TOKEN).run(large, timeout=120)
    assert (final["type"], final["kind"]) == ("error", "too_large") and f"{MAX_BODY_MB} MB" in final["message"]
    folder = tmp_path / "slow"
    slow = JobRequest("complete", "geometric", {"keep_visible": False, "resolution": 512})  # minutes of voxels
    jobfolder.write_job(folder, meshfiles.load_job(benchmark_dir / "r2d2.glb"), slow)
    t0 = time.monotonic()
    final = RemoteClient(server, TOKEN).run(folder, timeout=120)
    assert (final["type"], final["kind"]) == ("error", "timeout"), final
    assert f"limit of {MAX_JOB_SECONDS} s" in final["message"]
    assert MAX_JOB_SECONDS <= time.monotonic() - t0 < MAX_JOB_SECONDS + 30


def test_a_killed_replica_gives_a_clear_error_and_the_next_job_works(server, benchmark_dir, tmp_path):
    client = RemoteClient(server, TOKEN)
    replica = call(server, "/v1/ping", TOKEN)[1]["pid"]
    folder = tmp_path / "job"
    jobfolder.write_job(folder, meshfiles.load_job(benchmark_dir / "a1.glb"), JobRequest("amodal", "geometric"))
    job_id = client.submit(folder)
    while True:
        event = client.wait_event(timeout=120)
        assert event is not None, "no event from the server"
        if event["type"] == "progress":
            os.kill(replica, signal.SIGKILL)
            break
        assert event["type"] == "accepted", event
    while True:
        event = client.wait_event(timeout=180)
        assert event is not None, "the killed job never ended"
        if event.get("id") == job_id and event["type"] in ("done", "error", "cancelled"):
            break
    assert (event["type"], event["kind"]) == ("error", "server_lost_job")
    assert "restarted during the job" in event["message"] and "run the job again" in event["hint"]
    drawer = tmp_path / "drawer"
    jobfolder.write_job(drawer, meshfiles.load_job(benchmark_dir / "drawer.glb"), JobRequest("complete", "geometric"))
    final = client.run(drawer, timeout=240)
    assert final["type"] == "done", final
    assert len(jobfolder.read_result(drawer).parts) == 3
    assert call(server, "/v1/ping", TOKEN)[1]["pid"] != replica
