"""``holopart batch`` on a real local Ray instance (2 CPUs), shared by this module's tests and shut down after.

The development objects used are the smallest ones (each completes in under a second), so the module adds
about a minute to the suite (on this shared machine: 65 s).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import ray

from holopart_blender.engine import batch, cli
from holopart_blender.wire.client import PACKAGE_PARENT

SMALL = ("bicycle", "drawer", "lamp", "laikago", "square_table")


@pytest.fixture(scope="module")
def cluster():
    batch.start_ray(cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def library(benchmark_dir, tmp_path_factory):
    """The small development objects (one in a subfolder) and what the command line writes for them."""
    root = tmp_path_factory.mktemp("batch")
    lib = root / "lib"
    (lib / "sub").mkdir(parents=True)
    for name in SMALL[:-1]:
        shutil.copy(benchmark_dir / f"{name}.glb", lib / f"{name}.glb")
    shutil.copy(benchmark_dir / f"{SMALL[-1]}.glb", lib / "sub" / f"{SMALL[-1]}.glb")
    reference = root / "reference"
    assert cli.main(["amodal", str(lib), "--out", str(reference), "--engine", "geometric", "--quiet"]) == 0
    assert cli.main(["amodal", str(lib / "sub"), "--out", str(reference / "sub"), "--engine", "geometric",
                     "--quiet"]) == 0
    return lib, reference


def without_timings(path):
    data = json.loads(path.read_text())
    data.pop("timings")
    for part in data["parts"]:
        part.pop("timings")
    return data


def assert_same_as_reference(out, reference):
    names = sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
    assert len(names) == 2 * len(SMALL)
    for name in names:
        if name.suffix == ".glb":
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name
        else:  # the metadata sidecar: equal but for the measured times
            assert without_timings(out / name) == without_timings(reference / name), name


def rows(out):
    with open(out / "batch.csv", newline="") as handle:
        return {r["input"].rsplit("/", 1)[-1]: r for r in csv.DictReader(handle)}


def test_batch_writes_the_command_lines_files_and_a_rerun_skips_them(cluster, library, tmp_path):
    lib, reference = library
    out = tmp_path / "out"
    assert cli.main(["batch", str(lib), "--out", str(out), "--engine", "geometric", "--quiet"]) == 0
    assert_same_as_reference(out, reference)
    table = rows(out)
    assert sorted(table) == sorted(f"{n}.glb" for n in SMALL)
    for name, row in table.items():
        meta = json.loads((reference / ("sub" if name.startswith(SMALL[-1]) else "") /
                           f"{name[:-4]}_amodal.parts.json").read_text())
        assert row["status"] == "done" and row["engine"] == "geometric" and row["error"] == ""
        assert int(row["parts"]) == len(meta["parts"]) and float(row["seconds"]) > 0
    summary = json.loads((out / "batch.json").read_text())
    assert summary["totals"] == {"done": len(SMALL)} and summary["request"]["operation"] == "amodal"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.glb")}
    assert cli.main(["batch", str(lib), "--out", str(out), "--engine", "geometric", "--quiet"]) == 0
    assert {r["status"] for r in rows(out).values()} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.glb")} == before
    # Another request is another key: nothing is skipped.
    assert cli.main(["batch", str(lib), "--out", str(out), "--engine", "geometric", "--set", "convex=0.05",
                     "--quiet"]) == 0
    assert {r["status"] for r in rows(out).values()} == {"done"}


def test_a_killed_batch_resumes_where_it_stopped(cluster, library, tmp_path):
    lib, reference = library
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "holopart_blender.engine.cli", "batch", str(lib), "--out",
                               str(out), "--engine", "geometric", "--address", cluster, "--actors", "1", "--quiet"],
                              env={**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((out / batch.RECORDS).glob("*.json")) and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished = len(list((out / batch.RECORDS).glob("*.json")))
    assert 1 <= finished < len(SMALL), (finished, driver.stderr.read()[-2000:])
    assert not (out / "batch.csv").exists()  # it died before the summary
    assert cli.main(["batch", str(lib), "--out", str(out), "--engine", "geometric", "--quiet"]) == 0
    statuses = [r["status"] for r in rows(out).values()]
    assert statuses.count("skipped") == finished and statuses.count("done") == len(SMALL) - finished
    assert_same_as_reference(out, reference)


def test_a_failing_asset_in_the_middle_is_reported_and_the_others_go_on(cluster, benchmark_dir, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("bicycle", "drawer", "lamp"):
        shutil.copy(benchmark_dir / f"{name}.glb", lib / f"{name}.glb")
    (lib / "broken.obj").write_text("v 0 0 0\nf 1 2 3\n")
    # A manifest with per-asset settings: an unreadable file and a wrong setting fail those assets alone.
    manifest = tmp_path / "assets.jsonl"
    manifest.write_text("\n".join(json.dumps(e) for e in [
        {"path": "lib/bicycle.glb", "settings": {"resolution": 96}},
        {"path": "lib/broken.obj"},
        {"path": "lib/drawer.glb", "settings": {"no_such_setting": 1}},
        {"path": "lib/lamp.glb"}]) + "\n")
    out = tmp_path / "out"
    assert cli.main(["batch", str(manifest), "--out", str(out), "--engine", "geometric", "--quiet"]) == 1
    table = rows(out)
    assert [table[n]["status"] for n in ("bicycle.glb", "broken.obj", "drawer.glb", "lamp.glb")] == \
        ["done", "failed", "failed", "done"]
    assert table["broken.obj"]["error"].startswith("bad_input: cannot read broken.obj")
    assert "no_such_setting" in table["drawer.glb"]["error"]
    assert not (out / "lib" / "broken_amodal.glb").exists() and (out / "lib" / "lamp_amodal.glb").is_file()
    assert json.loads((out / "lib" / "bicycle_amodal.parts.json").read_text())["parts"][0]["settings"]["resolution"] == 96
    # An asset past --timeout is stopped and reported.
    (tmp_path / "one.csv").write_text("path\nlib/drawer.glb\n")
    out = tmp_path / "timeout_out"
    assert cli.main(["batch", str(tmp_path / "one.csv"), "--out", str(out), "--engine", "geometric", "--timeout",
                     "0.001", "--quiet"]) == 1
    row = rows(out)["drawer.glb"]
    assert row["status"] == "timeout" and row["error"] == "timeout: stopped after 0.001 s"
    assert cli.main(["batch", str(lib / "drawer.glb"), "--out", str(out), "--quiet"]) == 2  # not a folder or manifest


def test_a_killed_engine_actor_costs_only_its_assets_in_flight(cluster, library, tmp_path):
    lib, reference = library
    out = tmp_path / "out"
    codes = []
    driver = threading.Thread(target=lambda: codes.append(cli.main(
        ["batch", str(lib), "--out", str(out), "--engine", "geometric", "--actors", "1", "--quiet"])))
    driver.start()
    deadline = time.monotonic() + 240
    while not list((out / batch.RECORDS).glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.02)
    # The actor's process is titled "ray::EngineActor.run" while it completes an asset and "ray::EngineActor"
    # between two: kill it in either state (the first asset is done, so the others are still to come).
    actors = [int(line.split()[0]) for line in subprocess.run(["ps", "-eo", "pid,args"], capture_output=True,
                                                             text=True).stdout.splitlines()
              if "ray::EngineActor" in line]
    assert len(actors) == 1, actors
    os.kill(actors[0], signal.SIGKILL)
    assert len(list((out / batch.RECORDS).glob("*.json"))) < len(SMALL)  # it died with assets left
    driver.join(240)
    assert codes == [0]  # Ray restarted the actor and ran its assets again
    assert {r["status"] for r in rows(out).values()} == {"done"}
    assert_same_as_reference(out, reference)
