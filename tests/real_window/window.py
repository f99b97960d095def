# Helpers for the scripts that real-blender.sh runs in a real Blender window (see tests/test_real_window.py):
# context overrides, real key presses (xdotool), screenshots, `RESULT {json}` lines, Python errors raised
# inside Blender's draw and timer callbacks, and the timer that steps through a scenario generator.
import json
import os
import subprocess
import sys
import time
import traceback

import bpy

SHOTS = "/work/out/real_window"
os.makedirs(SHOTS, exist_ok=True)
T0 = time.monotonic()
checks = []
callback_errors = []  # exceptions Blender printed from draw/timer callbacks (it reports them via sys.excepthook)
_excepthook = sys.excepthook


def _record(kind, value, tb):
    callback_errors.append("".join(traceback.format_exception_only(kind, value)).strip())
    _excepthook(kind, value, tb)


sys.excepthook = _record


def result(name, ok, **info):
    checks.append(bool(ok))
    print("RESULT " + json.dumps({"check": name, "ok": bool(ok), "t": round(time.monotonic() - T0, 1), **info},
                                 default=str), flush=True)


def view3d():
    w = bpy.context.window_manager.windows[0]
    a = next(a for a in w.screen.areas if a.type == "VIEW_3D")
    return dict(window=w, screen=w.screen, area=a, region=next(r for r in a.regions if r.type == "WINDOW"))


def _pointer_to(x, y_from_bottom):
    """Moves the pointer to window coordinates (Blender's: y from the bottom); X gives keys to the window under it."""
    subprocess.run(["xdotool", "mousemove", str(x), str(bpy.context.window_manager.windows[0].height - y_from_bottom)],
                   check=True)


def key(*keys):
    """Presses keys with the pointer in the middle of the 3D view."""
    r = view3d()["region"]
    _pointer_to(r.x + r.width // 2, r.y + r.height // 2)
    subprocess.run(["xdotool", "key", *keys], check=True)


def key_clear_of_popups(*keys):
    """Generator: ``key`` after closing any report popup. An operator's error opens one under the pointer (the
    middle of the 3D view), and while the pointer is over it the popup takes the keys: in CI a job stopped by
    the server's time limit left one there and the next Ctrl+Z never reached the undo. Blender closes the popup
    when the pointer moves well away from it; the pause lets its main loop see that move on its own."""
    r = view3d()["region"]
    _pointer_to(r.x + 10, r.y + 10)
    yield 0.5
    key(*keys)


def shot(name):
    subprocess.run(["import", "-window", "root", f"{SHOTS}/{name}.png"], check=False)


def wait_until(cond, timeout):
    """Generator: polls ``cond`` every 0.2 s; yields delays to the timer; ends when true or timed out."""
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        yield 0.2


def run(scenario, cleanup=lambda: None):
    """Step through the generator ``scenario()`` on a timer (it yields seconds until its next step), then
    print the verdict and exit: 0 when every check passed."""
    steps = scenario()

    def tick():
        try:
            return next(steps)
        except StopIteration:
            pass
        except Exception:
            traceback.print_exc()
            result("script_error", False, error=traceback.format_exc().splitlines()[-1])
        ok = checks and all(checks)
        print(f"REAL_WINDOW {'PASSED' if ok else 'FAILED'} {sum(checks)}/{len(checks)} in "
              f"{time.monotonic() - T0:.1f} s", flush=True)
        sys.stdout.flush()
        cleanup()
        os._exit(0 if ok else 1)

    bpy.app.timers.register(tick, first_interval=2.0)
