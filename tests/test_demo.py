"""The README's main job: the demo runs headless Blender on the shipped asset and its picture shows what the
engine added (orange faces on the completed parts only, from above and from below)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from blender_harness import ROOT


def orange_pixels(panel: np.ndarray) -> int:
    hue, saturation, value = panel[..., 0] * 360 / 255, panel[..., 1] / 255, panel[..., 2] / 255
    return int(((hue > 10) & (hue < 45) & (saturation > 0.5) & (value > 0.2)).sum())


def test_demo_picture_shows_the_added_surface(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environ["BLENDER_USER_RESOURCES"] = str(tmp_path / "blender_user")
    done = subprocess.run([sys.executable, "-m", "devtools.demo", "--out", str(tmp_path / "demo")], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "completed 5 parts" in done.stdout
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {"demo.blend", "before_after.png", "segment_preview.png"}
    picture = np.asarray(Image.open(tmp_path / "demo" / "before_after.png").convert("HSV")).astype(int)
    height, width = 360, 480  # a 2 x 2 grid of renders (input | completed; from above / from below), then the caption
    assert picture.shape[0] > 2 * height and picture.shape[1] == 2 * width
    panels = {(row, col): picture[row * height:(row + 1) * height, col * width:(col + 1) * width]
              for row in (0, 1) for col in (0, 1)}
    assert orange_pixels(panels[0, 0]) == 0 and orange_pixels(panels[1, 0]) == 0  # the input: nothing added
    assert orange_pixels(panels[0, 1]) > 100 and orange_pixels(panels[1, 1]) > 100  # leg tops; sockets under the top
