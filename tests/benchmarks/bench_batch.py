"""``holopart batch`` against the sequential command line: throughput on a folder, and the cost per asset.

    nice -n 10 .venv/bin/python tests/benchmarks/bench_batch.py ../shared/benchmark/parts --engine geometric

1. The folder through ``holopart amodal FOLDER`` (one process, one asset after another) and through
   ``holopart batch FOLDER`` (a local Ray instance with ``--cpus``), both timed from the command's start to
   its end (Ray's start included); the GLBs are checked byte for byte.
2. The cost of one more asset: 1 and 1 + N copies of a 12-face cube whose work is nil (loose parts, the
   ``visible`` engine), through each command (batch with one actor); (t[1+N] - t[1]) / N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CUBE = "".join(f"v {x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1)) + "".join(
    f"f {a} {b} {c}\n" for a, b, c in ((1, 2, 4), (1, 4, 3), (5, 7, 8), (5, 8, 6), (1, 5, 6), (1, 6, 2),
                                       (3, 4, 8), (3, 8, 7), (1, 3, 7), (1, 7, 5), (2, 6, 8), (2, 8, 4)))


def timed(*args) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "holopart_blender.engine.cli", *map(str, args), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--engine", default="geometric")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--copies", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    assets = sorted(p for p in args.folder.iterdir() if p.suffix == ".glb")
    cli = timed("amodal", args.folder, "--out", tmp / "cli", "--engine", args.engine)
    batch = timed("batch", args.folder, "--out", tmp / "batch", "--engine", args.engine, "--cpus", args.cpus)
    same = all((tmp / "cli" / f"{p.stem}_amodal.glb").read_bytes() == (tmp / "batch" / f"{p.stem}_amodal.glb").read_bytes()
               for p in assets)
    summary = json.loads((tmp / "batch" / "batch.json").read_text())
    print(f"{len(assets)} assets, {args.engine}: command line {cli:.1f} s, batch ({args.cpus} CPUs) {batch:.1f} s, "
          f"throughput ratio {cli / batch:.2f}; GLBs identical: {same}; batch.json {summary['totals']}")
    costs = {}
    for count in (1, 1 + args.copies):
        folder = tmp / f"cubes{count}"
        folder.mkdir()
        for i in range(count):
            (folder / f"cube{i:03d}.obj").write_text(CUBE)
        common = ("--segmenter", "loose_parts", "--engine", "visible")
        costs[count] = (timed("amodal", folder, "--out", tmp / f"cli{count}", *common),
                        timed("batch", folder, "--out", tmp / f"batch{count}", *common, "--cpus", args.cpus,
                              "--actors", 1))
    (cli1, batch1), (clin, batchn) = costs[1], costs[1 + args.copies]
    print(f"one more asset: command line {(clin - cli1) / args.copies * 1000:.0f} ms, batch "
          f"{(batchn - batch1) / args.copies * 1000:.0f} ms (1 and {1 + args.copies} cubes: command line "
          f"{cli1:.1f} / {clin:.1f} s, batch {batch1:.1f} / {batchn:.1f} s)")


if __name__ == "__main__":
    main()
