"""Worker start-up time, per-job overhead and job-folder export/import cost for a large mesh.

    .venv/bin/python tests/benchmarks/bench_worker.py [--faces 1000000] [--repeat 3]

Overhead = the client's wall time for a job minus the engine's own time (``timings.complete``), with the
``visible`` engine (returns the input segments, so the result is as large as the input). Target: under 1 s
for 1M faces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from holopart_blender.wire import jobfolder  # noqa: E402
from holopart_blender.engine.api import JobRequest  # noqa: E402
from holopart_blender.wire.client import WorkerClient  # noqa: E402
from holopart_blender.core.partjob import Mesh, PartJob  # noqa: E402
from meshgen import grid  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    client = WorkerClient()
    t0 = time.perf_counter()
    client.start()
    while (event := client.wait_event(timeout=60))["type"] != "hello":
        pass
    print(f"worker start-up (spawn to hello): {time.perf_counter() - t0:.3f} s")

    n = int(np.sqrt(args.faces / 2)) + 1
    vertices, faces = grid(n)
    labels = (np.arange(len(faces)) * 8 // len(faces)).astype(np.int32)  # 8 parts
    job = PartJob(Mesh(vertices, faces), labels)
    print(f"mesh: {len(faces):,} faces, {len(vertices):,} vertices, 8 parts")
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.repeat):
            t0 = time.perf_counter()
            jobfolder.write_job(folder, job, JobRequest("complete", "visible"))
            t_write = time.perf_counter() - t0
            t0 = time.perf_counter()
            event = client.run(folder, timeout=600)
            t_run = time.perf_counter() - t0
            assert event["type"] == "done", event
            t0 = time.perf_counter()
            result = jobfolder.read_result(folder)
            sum(len(p.faces) for p in result.parts)  # touch the arrays
            t_read = time.perf_counter() - t0
            engine = event["summary"]["timings"]["complete"]
            overhead = t_write + (t_run - engine) + t_read
            print(f"run {i + 1}: write job {t_write:.3f} s | worker round trip {t_run:.3f} s of which engine "
                  f"{engine:.3f} s | read result {t_read:.3f} s | overhead {overhead:.3f} s")
        small = PartJob(Mesh(*grid(20)), np.zeros(2 * 19 * 19, np.int32))
        times = []
        for _ in range(10):
            jobfolder.write_job(folder, small, JobRequest("complete", "visible"))
            t0 = time.perf_counter()
            event = client.run(folder, timeout=60)
            times.append(time.perf_counter() - t0 - event["summary"]["timings"]["complete"])
        print(f"per-job overhead, small mesh (round trip minus engine), median of 10: {np.median(times) * 1000:.1f} ms")
    client.close()


if __name__ == "__main__":
    main()
