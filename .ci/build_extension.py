"""Build the Blender extension zip(s) with Blender's own tool, bundling the CPU engines' wheels.

    .venv/bin/python .ci/build_extension.py                      # this machine's platform -> dist/
    .venv/bin/python .ci/build_extension.py --platforms all      # every supported platform, one zip each

Steps: fetch the wheels of the CPU engines' dependencies (numpy comes with Blender) for each platform and
Python ABI from the package registry into ``.cache/wheels/`` (once; later builds reuse them), stage the
``holopart_blender`` package and ``vendor_requirements.txt`` with ``blender_manifest.toml`` (plus a ``wheels`` list and ``platforms``) under
``build/extension/``, then run ``blender_ext.py build --split-platforms`` and ``blender_ext.py validate`` on
every zip. The wheels are pinned to the versions installed in this environment, the ones the tests ran on.
Build tooling lives here rather than in the package so that it is never shipped inside the zip.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "holopart_blender"

# What the CPU engines import (scipy, trimesh, scikit-image) and scikit-image's own requirements.
BUNDLED = ["scipy", "scikit-image", "trimesh", "networkx", "pillow", "imageio", "tifffile", "lazy_loader",
           "packaging"]
# Blender 4.2-5.0 embed Python 3.11; Blender 5.1 and later embed 3.13.
PYTHONS = ("3.11", "3.13")
# Blender platform name -> pip platform tag (pip also accepts older manylinux/macOS tags for these).
PLATFORMS = {
    "linux-x64": "manylinux_2_28_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_14_0_arm64",
    "macos-x64": "macosx_14_0_x86_64",
}


def blender_ext_script() -> Path:
    """Blender's extension tool, shipped inside the bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the bpy module is not installed here (run .ci/setup)")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        sys.exit("blender_ext.py not found inside the bpy package")
    return found[-1]


def current_platform() -> str:
    system, machine = platform.system().lower(), platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    return f"{ {'darwin': 'macos', 'windows': 'windows'}.get(system, 'linux') }-{arch}"


def pins() -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in BUNDLED]


def fetch_wheels(blender_platform: str, python: str, cache: Path) -> list[Path]:
    """The bundled wheels for one platform and Python version, downloaded once into ``cache``."""
    folder = cache / blender_platform / f"cp{python.replace('.', '')}"
    marker = folder / "complete.json"
    wanted = pins()
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return sorted(folder.glob("*.whl"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--python-version", python, "--platform", PLATFORMS[blender_platform], "-d", str(folder),
                    *wanted], check=True)
    marker.write_text(json.dumps(wanted))
    return sorted(folder.glob("*.whl"))


def stage(stage_dir: Path, wheels: list[Path], platforms: list[str]) -> None:
    """The extension's source folder: the package, the manifest with wheels and platforms, the wheels."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(PACKAGE, stage_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "vendor_requirements.txt", stage_dir)  # what the managed engine environment installs
    (stage_dir / "wheels").mkdir()
    names = []
    for wheel in wheels:
        if not (stage_dir / "wheels" / wheel.name).exists():
            shutil.copy2(wheel, stage_dir / "wheels" / wheel.name)
            names.append(wheel.name)
    manifest = (ROOT / "blender_manifest.toml").read_text()
    head, sep, tables = manifest.partition("\n[")  # top-level keys must come before the first table
    extra = f"platforms = {json.dumps(platforms)}\nwheels = [\n" + "".join(
        f'  "./wheels/{name}",\n' for name in sorted(names)) + "]\n"
    (stage_dir / "blender_manifest.toml").write_text(head.rstrip() + "\n\n" + extra + sep + tables)


def build(platforms: list[str], out: Path, cache: Path) -> list[Path]:
    script = blender_ext_script()
    wheels = [w for p in platforms for py in PYTHONS for w in fetch_wheels(p, py, cache)]
    stage_dir = ROOT / "build" / "extension" / "holopart_blender"
    stage(stage_dir, wheels, platforms)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("holopart_blender-*.zip"):
        old.unlink()
    subprocess.run([sys.executable, str(script), "build", "--source-dir", str(stage_dir), "--output-dir", str(out),
                    "--split-platforms"], check=True)
    zips = sorted(out.glob("holopart_blender-*.zip"))
    for zip_path in zips:
        subprocess.run([sys.executable, str(script), "validate", str(zip_path)], check=True)
    return zips


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platforms", nargs="+", default=[current_platform()],
                        help=f"Blender platforms to build for, or 'all' ({', '.join(PLATFORMS)})")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zips (default: dist/)")
    parser.add_argument("--wheels-cache", type=Path, default=ROOT / ".cache" / "wheels")
    args = parser.parse_args(argv)
    platforms = list(PLATFORMS) if args.platforms == ["all"] else args.platforms
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown:
        parser.error(f"unknown platform(s) {', '.join(unknown)}; choose from {', '.join(PLATFORMS)} or all")
    for zip_path in build(platforms, args.out, args.wheels_cache):
        print(f"{zip_path}  {zip_path.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
