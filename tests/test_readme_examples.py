"""The README's command-line examples, run as written on the shipped example input: each succeeds, and the
completions close the holes the example's hidden faces left (the example shows what the engine does)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from blender_harness import ROOT

PREFIX = ".venv/bin/python -m holopart_blender.engine.cli "


def readme_commands() -> list[str]:
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.strip().startswith(PREFIX)]


def test_readme_examples_run_as_written(tmp_path):
    commands = readme_commands()
    assert [c.split()[3] for c in commands] == ["complete", "complete", "amodal", "engines"]
    # A folder laid out like the checkout (its outputs land here, not in the checkout's out/).
    for name in (".venv", "holopart_blender", "examples"):
        (tmp_path / name).symlink_to(ROOT / name)
    for command in commands:
        done = subprocess.run(shlex.split(command), cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    reports = sorted((tmp_path / "out").rglob("*.parts.json"))
    assert {p.relative_to(tmp_path / "out").as_posix() for p in reports} == {
        "table_parts.parts.json", "table_complete.parts.json", "results/table_amodal.parts.json",
        "results/table_segments_amodal.parts.json"}
    for report in reports:
        parts = json.loads(report.read_text())["parts"]
        closed = [sum(int(n) for note in p["notes"] for n in re.findall(r"closed (\d+) hidden hole", note)) for p in parts]
        assert all(p["watertight"] for p in parts) and sum(closed) > 0, (report.name, closed)
    # Labelled input (segments named in the GLB, numbered in the .npy): the table's five parts, each one grown.
    for report, names in (("table_parts", ["leg1", "leg2", "leg3", "leg4", "top"]),
                          ("table_complete", [f"part_{i:03d}" for i in range(5)])):
        parts = json.loads((tmp_path / "out" / f"{report}.parts.json").read_text())["parts"]
        assert sorted(p["name"] for p in parts) == names
        assert all(p["faces"] > p["source_faces"] for p in parts)
