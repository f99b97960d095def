"""The engine as a pip package: `pip install .` gives a `holopart` command that works from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import holopart_blender
from blender_harness import ROOT


def test_pip_install_gives_a_holopart_command(tmp_path):
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site),
                              str(ROOT)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    command = site / "bin" / "holopart"
    assert command.is_file()
    # Only the engine package is installed: no developer tooling, no tests.
    assert (site / "holopart_blender" / "engine" / "cli.py").is_file()
    assert not (site / "devtools").exists() and not (site / "tests").exists()
    assert (site / f"holopart_blender-{holopart_blender.__version__}.dist-info").is_dir()  # the one version number
    env = {**os.environ, "PYTHONPATH": str(site)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listing = subprocess.run([sys.executable, str(command), "engines"], cwd=elsewhere, env=env, capture_output=True,
                             text=True, timeout=300)
    assert listing.returncode == 0, listing.stderr[-2000:]
    engines = json.loads(listing.stdout)
    assert engines["completion:geometric"]["available"] is True
    # The README's example, from another folder.
    example = subprocess.run([sys.executable, str(command), "complete", str(ROOT / "examples" / "table.ply"), "--labels",
                              str(ROOT / "examples" / "table.npy"), "--out", "out/"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=300)
    assert example.returncode == 0, example.stderr[-2000:]
    assert len(json.loads((elsewhere / "out" / "table_complete.parts.json").read_text())["parts"]) == 5
    weights = subprocess.run([sys.executable, str(command), "weights", "status", "--dest", str(tmp_path / "none")],
                             cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    status = json.loads([line for line in weights.stdout.splitlines() if line.startswith("{")][-1])
    assert status["event"] == "status" and status["found"] is False


def test_the_engine_runs_blas_on_one_thread_unless_the_user_chose():
    """numpy's OpenBLAS gets one thread when the engine is imported first (as the worker and command line
    do), and keeps the user's own choice."""
    probe = "import holopart_blender.engine, numpy, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    for given, expected in ((None, "1"), ("2", "2")):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        if given:
            env["OPENBLAS_NUM_THREADS"] = given
        out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == expected
