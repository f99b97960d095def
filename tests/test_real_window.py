"""The Blender side in a real Blender window (issue #21): the first job's UI time, Esc, the Cancel button,
Ctrl+Z after a run and after a failure, with real key presses (xdotool) under Xvfb, with the local worker and
with a `holopart serve` server on 127.0.0.1; and Blender without numpy.

Skipped unless the real-Blender chroot exists. To enable it (root, the Debian mirror; once, about 1-2 min):

    shared/tools/real-blender.sh setup --with-numpy
    # the CPU engines' packages in the chroot's Python (the worker runs on it):
    mkdir -p /tmp/rb && shared/tools/real-blender.sh shell /tmp/rb apt-get install -y \\
        --no-install-recommends python3-scipy python3-skimage python3-trimesh
    .venv/bin/python -m pytest tests/test_real_window.py

``REAL_BLENDER_ROOT`` (default ``/var/cache/real-blender``) and ``REAL_BLENDER_TOOL`` (default
``../shared/tools/real-blender.sh``) point elsewhere. The repository root is the run's WORKDIR (mounted at
/work); screenshots land in out/real_window/. The scripts are
tests/real_window/modal_operators.py (the modal operators, the first job's UI time, the sidebar's draw) and
tests/real_window/no_numpy.py (the numpy-free fallback); tests/real_window/window.py holds their helpers.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from test_remote_engine import TOKEN, server  # noqa: F401 - the module's `holopart serve` fixture

ROOT = Path(__file__).resolve().parents[1]
CHROOT = Path(os.environ.get("REAL_BLENDER_ROOT", "/var/cache/real-blender"))
TOOL = Path(os.environ.get("REAL_BLENDER_TOOL", ROOT.parent / "shared" / "tools" / "real-blender.sh"))
CHECKS = ["first_job_ui", "worker_listing", "essentials_lookup", "invoke_progress", "esc_cancels", "cancel_button", "complete_all_done",
          "complete_all_undo", "failure_answered", "failure_undo",
          "no_callback_errors"]


def _skip_reason() -> str | None:
    if not TOOL.is_file():
        return f"no real-blender tool at {TOOL} (set REAL_BLENDER_TOOL)"
    if not (CHROOT / "usr" / "bin" / "blender").exists():
        return (f"no real-Blender chroot at {CHROOT}: run `shared/tools/real-blender.sh setup --with-numpy` "
                "as root (or set REAL_BLENDER_ROOT)")
    if os.geteuid() != 0:
        return "real-blender.sh run needs root (mount, chroot)"
    return None


def _run(script: str, checks: list[str], args: tuple[str, ...] = ()) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, REAL_BLENDER_ROOT=str(CHROOT), REAL_BLENDER_TIMEOUT="540")
    proc = subprocess.run(["bash", str(TOOL), "run", str(ROOT), script, *args],
                          capture_output=True, text=True, env=env, timeout=600)
    output = proc.stdout + proc.stderr
    log = ROOT / "out" / "real_window" / (Path(script).stem + ("_remote" if args else "") + ".log")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(output)
    results = {}
    for line in output.splitlines():
        if line.startswith("RESULT "):
            entry = json.loads(line[len("RESULT "):])
            results[entry["check"]] = entry
    failed = {name: entry for name, entry in results.items() if not entry["ok"]}
    assert not failed, f"failed checks: {json.dumps(failed, indent=1)}\n--- output tail ---\n{output[-6000:]}"
    missing = [name for name in checks if name not in results]
    assert not missing, f"checks that never ran: {missing}\n--- output tail ---\n{output[-6000:]}"
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{output[-6000:]}"


def test_modal_operators_in_a_real_window():
    _run("tests/real_window/modal_operators.py", CHECKS)


@pytest.fixture
def remote_server(request):
    """``holopart serve`` on 127.0.0.1 (the chroot shares this machine's network), started only when the
    real-window set-up exists."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    return request.getfixturevalue("server")


def test_modal_operators_on_a_remote_server(remote_server, tmp_path):
    """The same scenario with Engine: Remote Server: progress, a real Esc and the Cancel button reach the
    server's job, and results come back."""
    token = ROOT / "out" / "real_window" / "token.txt"  # inside the WORKDIR, which the chroot mounts at /work
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text(TOKEN)
    _run("tests/real_window/modal_operators.py", CHECKS,
         ("--remote", remote_server, "/work/" + str(token.relative_to(ROOT))))


def test_numpy_free_fallback_in_a_real_window():
    """Blender without numpy: the fallback registers, borrows the engine environment's numpy, and Complete
    Part works (tests/real_window/no_numpy.py)."""
    _run("tests/real_window/no_numpy.py", ["fallback_registered", "fallback_without_environment",
                                           "fallback_borrows_numpy", "fallback_complete_part"])
