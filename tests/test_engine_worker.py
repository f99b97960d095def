"""The worker as a real subprocess, driven through the client: jobs, progress, cancel, failures, crashes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from holopart_blender.engine import meshfiles
from holopart_blender.wire import jobfolder, protocol
from holopart_blender.wire.request import JobRequest
from holopart_blender.wire.client import PACKAGE_PARENT, WorkerClient
from holopart_blender.core.partjob import Mesh, PartJob
from meshgen import grid, two_boxes


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    yield c
    c.close()


@pytest.fixture(scope="module")
def chair_job(benchmark_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("chair job")
    jobfolder.write_job(folder, meshfiles.load_job(benchmark_dir / "chair.glb"), JobRequest("complete", "hull"))
    return folder


@pytest.fixture(scope="module")
def long_job(tmp_path_factory):
    """3,000 small parts: several seconds of hull work with a progress call per part."""
    vertices, faces = grid(301)
    labels = (np.arange(len(faces)) // 60).astype(np.int32)
    folder = tmp_path_factory.mktemp("long job ä")
    jobfolder.write_job(folder, PartJob(Mesh(vertices, faces), labels), JobRequest("complete", "hull"))
    return folder


def test_two_jobs_in_a_row_without_reloading(client, chair_job):
    events = []
    first = client.run(chair_job, on_event=events.append, timeout=120)
    assert first["type"] == "done", first
    pid = client.pid
    assert events[0]["type"] == "hello" and events[0]["protocol"] == protocol.PROTOCOL_VERSION
    assert any(e["type"] == "progress" for e in events)
    assert "load_hull" in first["summary"]["timings"]
    second = client.run(chair_job, timeout=120)
    assert second["type"] == "done" and client.pid == pid
    assert "load_hull" not in second["summary"]["timings"]  # the engine instance was kept
    result = jobfolder.read_result(chair_job)
    assert [p.name for p in result.parts][:2] == ["chair_seat", "chair_leg1"]
    assert all(p.watertight for p in result.parts)


def test_progress_streams_and_cancel_keeps_the_worker(client, long_job, chair_job):
    job_id = client.submit(long_job)
    progress = []
    start = time.monotonic()
    while len(progress) < 5:
        event = client.wait_event(timeout=60)
        assert event is not None and event["type"] not in ("error", "done"), event
        if event["type"] == "progress":
            progress.append((time.monotonic() - start, event))
    assert all(0.0 <= e["fraction"] <= 1.0 and e["id"] == job_id for _, e in progress)
    pid = client.pid
    client.cancel(job_id)
    while True:
        event = client.wait_event(timeout=30)
        assert event is not None, "no answer to the cancel"
        if event["type"] in protocol.FINAL_JOB_EVENTS:
            break
    assert event["type"] == "cancelled" and event["id"] == job_id
    assert client.run(chair_job, timeout=120)["type"] == "done" and client.pid == pid


def test_a_failing_job_reports_and_the_worker_goes_on(client, chair_job, tmp_path):
    job, _ = jobfolder.read_job(chair_job)
    jobfolder.write_job(tmp_path, job, JobRequest("complete", "hull", parts=[42]))
    event = client.run(tmp_path, timeout=60)
    assert event["type"] == "error" and event["kind"] == "bad_input" and "42" in event["message"] and event["hint"]
    missing = client.run(tmp_path / "no such folder", timeout=60)
    assert missing["type"] == "error" and missing["kind"] == "bad_input"
    assert client.run(chair_job, timeout=120)["type"] == "done"


def test_client_recovers_from_a_killed_worker(long_job, chair_job):
    c = WorkerClient()
    try:
        job_id = _running(c, long_job)
        old_pid = c.pid
        os.kill(old_pid, signal.SIGKILL)
        seen = []
        while not any(e["type"] == "worker_exit" for e in seen):
            event = c.wait_event(timeout=30)
            assert event is not None, "the client did not notice the dead worker"
            seen.append(event)
        crash = next(e for e in seen if e["type"] == "error")
        assert crash["id"] == job_id and crash["kind"] == "worker_crashed" and "SIGKILL" in crash["message"]
        assert "memory" in crash["hint"]  # a SIGKILL the client did not send: plausibly the OOM killer
        assert not c.running
        assert c.run(chair_job, timeout=120)["type"] == "done" and c.pid != old_pid
    finally:
        c.close()


def test_bad_protocol_lines_get_errors_not_hangs():
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT))
    lines = b"not json\n" + b'{"v": 99, "type": "ping"}\n' + protocol.encode("ping") + protocol.encode("shutdown")
    out = subprocess.run([sys.executable, "-m", "holopart_blender.engine.worker"], input=lines, env=env,
                         capture_output=True, timeout=60)
    assert out.returncode == 0
    messages = [protocol.decode(line, protocol.WORKER_MESSAGES) for line in out.stdout.splitlines()]
    messages = [m for m in messages if m["type"] != "heartbeat"]
    assert [m["type"] for m in messages] == ["hello", "error", "error", "pong"]
    assert messages[1]["kind"] == "protocol" and "JSON" in messages[1]["message"]
    assert "version" in messages[2]["message"]


def test_engines_listing(client):
    client.request_engines()
    while (event := client.wait_event(timeout=60))["type"] != "engines":
        pass
    assert event["completion"]["hull"]["available"] is True
    assert "holopart" in event["completion"]
    steps = {s["name"]: s for s in event["completion"]["holopart"]["settings"]}["steps"]
    assert (steps["default"], steps["minimum"], steps["maximum"]) == (50, 1, 1000) and steps["help"]
    assert event["auto_completion"] == ["holopart", "geometric"]
    assert event["segmentation"]["seeded"]["uses_seeds"] and not event["segmentation"]["auto"]["uses_seeds"]


def _malformed(folder, meta=None, **arrays):
    """A valid one-box job folder, then job.json fields replaced by ``meta`` and input.npz arrays by ``arrays``."""
    vertices, faces, labels = two_boxes()
    jobfolder.write_job(folder, PartJob(Mesh(vertices, faces), labels), JobRequest("complete", "hull"))
    if meta is not None:
        data = json.loads((folder / "job.json").read_text())
        data.update(meta)
        data = {k: v for k, v in data.items() if v is not DROP}
        (folder / "job.json").write_text(json.dumps(data))
    if arrays:
        data = dict(np.load(folder / "input.npz"))
        data.update(arrays)
        np.savez(folder / "input.npz", **data)
    return folder


DROP = object()


@pytest.mark.parametrize("meta, arrays, words", [
    ({"request": DROP}, {}, "no request"),
    ({"request": ["complete"]}, {}, "no request"),
    ({"part_names": ["a", "b"]}, {}, "part_names"),
    ({"request": {"operation": "complete", "engine": "hull", "parts": 0}}, {}, "'parts'"),
    ({}, {"vertices": np.zeros((12, 2))}, "'vertices'"),
    ({}, {"vertices": np.array([[1, "a", None]], object)}, "Object arrays"),
    ({}, {"faces": two_boxes()[1] + 0.5}, "'faces'"),
])
def test_malformed_job_folders_are_bad_input(client, tmp_path, meta, arrays, words):
    event = client.run(_malformed(tmp_path, meta, **arrays), timeout=60)
    assert event["type"] == "error" and event["kind"] == "bad_input", event
    assert words in event["message"] and "\n" not in event["message"]


def test_a_job_folder_deleted_mid_job_is_bad_input(client, long_job, tmp_path):
    folder = tmp_path / "doomed"
    shutil.copytree(long_job, folder)
    job_id = _running(client, folder)
    shutil.rmtree(folder)
    while (event := client.wait_event(timeout=120))["type"] not in protocol.FINAL_JOB_EVENTS:
        pass
    assert event["id"] == job_id and event["kind"] == "bad_input" and "cannot write the result" in event["message"]


def _running(client, folder) -> str:
    """Submit ``folder`` and wait until the worker reports progress on it; returns the job id."""
    job_id = client.submit(folder)
    while (event := client.wait_event(timeout=60))["type"] != "progress":
        assert event["type"] not in protocol.FINAL_JOB_EVENTS, event
    return job_id


def _final(client, job_id, seen, timeout):
    while True:
        event = client.wait_event(timeout=timeout)
        assert event is not None, f"no final event; saw {[e['type'] for e in seen]}"
        seen.append(event)
        if event.get("id") == job_id and event["type"] in protocol.FINAL_JOB_EVENTS:
            return event


def test_a_restarted_worker_is_a_new_generation(chair_job):
    c = WorkerClient()
    try:
        assert c.run(chair_job, timeout=120)["type"] == "done"
        c.close()
        seen = []
        job_id = c.submit(chair_job)  # a new worker, while the closed one's reader may still be finishing
        assert _final(c, job_id, seen, 120)["type"] == "done", seen
        os.kill(c.pid, signal.SIGKILL)  # an idle worker dies
        while c.running:  # and the next job is sent as soon as that shows, before its exit is reported
            time.sleep(0.001)
        job_id = c.submit(chair_job)
        assert _final(c, job_id, seen, 120)["type"] == "done", seen
        assert not any(e.get("kind") == "worker_crashed" for e in seen), seen
        c.submit(chair_job)  # the client knows the worker is free again
    finally:
        c.close()


def test_cancel_before_the_job_starts_is_honoured(chair_job):
    c = WorkerClient()  # a fresh worker is still importing when the job and the cancel arrive
    try:
        job_id = c.submit(chair_job)
        c.cancel(job_id)
        assert _final(c, job_id, [], 60)["type"] == "cancelled"
        assert c.run(chair_job, timeout=120)["type"] == "done"
    finally:
        c.close()


def test_the_worker_ignores_sigint(chair_job):
    c = WorkerClient()
    try:
        c.start()
        assert c.wait_event(timeout=30)["type"] == "hello"
        time.sleep(0.5)  # the worker is past its start-up, waiting for messages
        pid = c.pid
        os.kill(pid, signal.SIGINT)  # Ctrl+C in a terminal reaches the whole process group
        job_id = c.submit(chair_job)
        while (event := c.wait_event(timeout=60))["type"] != "accepted":
            pass
        os.kill(pid, signal.SIGINT)
        assert _final(c, job_id, [], 120)["type"] == "done" and c.pid == pid and c.running
    finally:
        c.close()


def test_a_hung_worker_is_reported_and_replaced(long_job, chair_job):
    c = WorkerClient()
    try:
        job_id = _running(c, long_job)
        old_pid = c.pid
        os.kill(old_pid, signal.SIGSTOP)
        stopped = time.monotonic()
        event = _final(c, job_id, [], 60)
        assert time.monotonic() - stopped < 30
        assert event["kind"] == "worker_hung" and "memory" not in event["hint"], event
        assert c.run(chair_job)["type"] == "done" and c.pid != old_pid  # no timeout: it returns on its own
    finally:
        c.close()
