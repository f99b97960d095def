"""The managed engine environment: a venv with torch and the engine's requirements, plus background tasks
(installing it, downloading weights) that run a list of commands with a log file, progress and a log tail.

This module does not import bpy, so it runs and is tested in any Python. Layout under ``root``:

    env/                  the working environment; ``env/holopart-env.json`` marks it complete
    env-new/              an install in progress, renamed to ``env/`` only once it is complete and checked
    last-install.json     the outcome of the last install (ok, or failed with the reason and the log file)
    logs/                 one log per task

A failed install deletes ``env-new/`` and leaves ``env/`` as it was, so a working environment is never
lost to a broken download.
"""

from __future__ import annotations

import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "holopart-env.json"
# torch builds: the package index each choice installs torch from (None = the default index, PyPI).
TORCH_INDEXES = {
    "cuda": "https://download.pytorch.org/whl/cu128",
    "cpu": "https://download.pytorch.org/whl/cpu",
    "default": None,  # macOS: PyPI's torch has the Apple (MPS) backend built in
}
# Prints the installed version of each distribution named on the command line, and torch's accelerators.
_CHECK_SCRIPT = """
import importlib.metadata as m, json, sys
out = {"python": sys.version.split()[0], "packages": {n: m.version(n) for n in sys.argv[1:]}}
if "torch" in out["packages"]:
    import torch
    out["cuda"] = torch.cuda.is_available()
    out["mps"] = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
print(json.dumps(out))
"""


def env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def torch_build(choice: str = "auto") -> str:
    """The torch build for this machine: 'cuda' where an NVIDIA driver is present, 'default' on macOS, else 'cpu'."""
    if choice != "auto":
        if choice not in TORCH_INDEXES:
            raise ValueError(f"unknown torch build '{choice}'; choose auto, {', '.join(TORCH_INDEXES)}")
        return choice
    if platform.system() == "Darwin":
        return "default"
    return "cuda" if shutil.which("nvidia-smi") else "cpu"


def requirement_names(requirements: Path) -> list[str]:
    """Distribution names in a requirements file (comments, options and version specifiers stripped)."""
    names = []
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.append(re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0])
    return names


@dataclass
class EnvState:
    """What the environment folder holds: status is 'missing', 'installing', 'ready' or 'broken'."""

    status: str
    reason: str = ""
    info: dict = field(default_factory=dict)
    last_install: dict = field(default_factory=dict)

    def summary(self) -> str:
        if self.status == "ready":
            packages = self.info.get("packages", {})
            accel = "CUDA" if self.info.get("cuda") else "Apple MPS" if self.info.get("mps") else "CPU"
            torch = f"torch {packages['torch']} ({accel})" if "torch" in packages else "no torch"
            return f"ready: Python {self.info.get('python', '?')}, {torch}"
        return f"{self.status}: {self.reason}" if self.reason else self.status


class EnvironmentManager:
    """Creates, repairs and inspects the engine environment under ``root``."""

    def __init__(self, root: str | os.PathLike, base_python: str | None = None):
        self.root = Path(root)
        self.base_python = base_python or sys.executable
        self.env_dir = self.root / "env"
        self.new_dir = self.root / "env-new"

    @property
    def python(self) -> Path:
        return env_python(self.env_dir)

    def state(self, installing: bool = False) -> EnvState:
        last = _read_json(self.root / "last-install.json")
        if installing:
            return EnvState("installing", "see the log below", last_install=last)
        if not self.env_dir.exists():
            return EnvState("missing", "no engine environment yet; the CPU engines still work", last_install=last)
        info = _read_json(self.env_dir / MARKER)
        if not info:
            return EnvState("broken", "the environment is incomplete (no record of a finished install); repair it",
                            last_install=last)
        if not self.python.exists():
            return EnvState("broken", f"its Python is missing ({self.python}); repair it", info, last)
        return EnvState("ready", "", info, last)

    def install_task(self, requirements: Path, wheel_folder: str | os.PathLike | None = None,
                     online: bool = False, torch: str = "auto", log_dir: Path | None = None) -> "Task":
        """A task that builds a fresh environment in ``env-new/`` and swaps it in when it is complete.

        With ``wheel_folder`` every package comes from that folder (``--no-index``); otherwise the
        package indexes are used, which needs ``online``. Nothing is downloaded when ``online`` is False.
        """
        if wheel_folder is None and not online:
            raise PermissionError("online access is off: install from a local wheel folder instead")
        requirements = Path(requirements)
        names = requirement_names(requirements)
        python = str(env_python(self.new_dir))
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        steps: list[tuple[str, list[str]]] = [("create the environment", [self.base_python, "-m", "venv", str(self.new_dir)])]
        if wheel_folder is not None:
            steps.append(("install packages from the wheel folder",
                          [*pip, "--no-index", "--find-links", str(wheel_folder), "-r", str(requirements)]))
        else:
            build = torch_build(torch)
            if "torch" in names:
                index = TORCH_INDEXES[build]
                torch_line = next(line for line in requirements.read_text().splitlines()
                                  if re.match(r"\s*torch\b", line)).split("#", 1)[0].strip()
                steps.append((f"install torch ({build} build)",
                              [*pip, torch_line, *(["--index-url", index] if index else [])]))
            steps.append(("install the engine requirements", [*pip, "-r", str(requirements)]))
        steps.append(("check the environment", [python, "-c", _CHECK_SCRIPT, *names]))
        log = (log_dir or self.root / "logs") / time.strftime("install-%Y%m%d-%H%M%S.log")
        return Task(steps, log, before=self._clear_new, after=self._swap_in, on_fail=self._failed)

    # -- task hooks ------------------------------------------------------------------------------------------
    def _clear_new(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.new_dir.exists():
            shutil.rmtree(self.new_dir)

    def _swap_in(self, task: "Task") -> None:
        info = json.loads(task.last_output.strip().splitlines()[-1])
        info["installed"] = time.strftime("%Y-%m-%d %H:%M:%S")
        (self.new_dir / MARKER).write_text(json.dumps(info, indent=1))
        old = self.root / "env-old"
        if old.exists():
            shutil.rmtree(old)
        if self.env_dir.exists():
            self.env_dir.rename(old)
        self.new_dir.rename(self.env_dir)
        shutil.rmtree(old, ignore_errors=True)
        _write_json(self.root / "last-install.json", {"ok": True, "log": str(task.log_path), "time": info["installed"]})

    def _failed(self, task: "Task") -> None:
        shutil.rmtree(self.new_dir, ignore_errors=True)
        _write_json(self.root / "last-install.json", {"ok": False, "reason": task.error, "log": str(task.log_path),
                                                      "time": time.strftime("%Y-%m-%d %H:%M:%S")})


class Task:
    """Runs commands one after another, logging their output to a file and keeping a tail for the UI.

    ``run()`` blocks; ``start()`` runs it on a thread (poll ``done``, ``progress``, ``message``, ``tail``).
    ``on_line(task, line)`` may parse progress from the output. ``cancel()`` stops the running command.
    """

    def __init__(self, steps: list[tuple[str, list[str]]], log_path: Path, before=None, after=None, on_fail=None,
                 on_line=None, env: dict | None = None):
        self.steps = steps
        self.log_path = Path(log_path)
        self._before, self._after, self._on_fail, self._on_line = before, after, on_fail, on_line
        self.env = env
        self.tail: collections.deque[str] = collections.deque(maxlen=12)
        self.progress = 0.0
        self.message = ""
        self.error = ""
        self.ok = False
        self.done = False
        self.last_output = ""
        self._proc: subprocess.Popen | None = None
        self._cancelled = False
        self._thread: threading.Thread | None = None

    def start(self) -> "Task":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancelled = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def run(self) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "w", encoding="utf-8") as log:
                if self._before:
                    self._before()
                for i, (title, command) in enumerate(self.steps):
                    self.progress, self.message = i / len(self.steps), title
                    log.write(f"\n$ {' '.join(command)}\n")
                    log.flush()
                    self._run_command(command, log)
                    if self._cancelled:
                        raise RuntimeError("cancelled")
                self.progress, self.message = 1.0, "finishing"
                if self._after:
                    self._after(self)
            self.ok = True
            self.message = "done"
        except Exception as exc:  # noqa: BLE001 - any failure ends the task with its reason shown to the user
            self.error = str(exc) or type(exc).__name__
            self.message = f"failed: {self.error}"
            if self._on_fail:
                self._on_fail(self)
        finally:
            self.done = True
        return self.ok

    def _run_command(self, command: list[str], log) -> None:
        # The commands run other interpreters: the caller's import paths must not leak into them.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(self.env or {}, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                      text=True, encoding="utf-8", errors="replace",
                                      creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        output = []
        for line in self._proc.stdout:
            log.write(line)
            log.flush()
            output.append(line)
            if line.strip():
                self.tail.append(line.rstrip()[:200])
            if self._on_line:
                self._on_line(self, line)
        code = self._proc.wait()
        self.last_output = "".join(output[-200:])
        if code != 0 and not self._cancelled:
            last = next((l.strip() for l in reversed(output) if l.strip()), "")
            raise RuntimeError(f"'{Path(command[0]).name} {' '.join(command[1:3])}' failed (exit code {code})"
                               + (f": {last[:300]}" if last else ""))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
