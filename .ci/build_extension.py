"""Build the Blender extension zips with Blender's own tool, one per platform and Python ABI, and optionally a
static extension repository (the zips plus ``index.json``) that any web server or folder can host.

    .venv/bin/python .ci/build_extension.py                              # this platform, both ABIs -> dist/
    .venv/bin/python .ci/build_extension.py --platforms all --repository OUT_DIR

Each zip targets one Blender platform and one Python ABI, so Blender picks the one that fits:

    Python 3.11  Blender 4.2 to 5.0  (blender_version_min 4.2.0, blender_version_max 5.1.0)
    Python 3.13  Blender 5.1 and later (blender_version_min 5.1.0)

Steps: fetch the wheels of the CPU engines' dependencies (numpy comes with Blender) into a wheelhouse
(``.cache/wheelhouse/PLATFORM/cpXY/``, once; later builds reuse it), choosing for each package the wheel for the
oldest operating system Blender supports (manylinux 2.28 or older; macOS 11 where such a wheel exists, else
the next oldest); stage the package, ``vendor_requirements.txt``, ``LICENSE``, the wheels' own licence files
(``licenses/``) and ``blender_manifest.toml`` with the version (from ``holopart_blender/__init__.py``), the
Blender range, the platform and the wheels under ``build/extension/``; run ``blender_ext.py build`` and
``validate`` on every zip; with ``--repository``, run ``blender_ext.py server-generate`` on the folder.
The wheels are pinned to the versions installed in this environment, the ones the tests ran on. Build
tooling lives here rather than in the package so that it is never shipped inside the zip.

Size budget: a zip may be at most ``SIZE_BUDGET_MB`` (the build fails above it); the zips of 0.1.0 are 49-60 MB.
Nearly all of it is the wheels (SciPy about 60 %, scikit-image 20-25 %, Pillow 10-12 %); the package, its
licence and the wheels' licences take about 0.2 MB.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "holopart_blender"

# What the CPU engines import (scipy, trimesh, scikit-image) and scikit-image's own requirements.
BUNDLED = ["scipy", "scikit-image", "trimesh", "networkx", "pillow", "imageio", "tifffile", "lazy_loader",
           "packaging"]
# Python ABI -> the Blender releases that embed it: (blender_version_min, blender_version_max or None).
PYTHONS = {"3.11": ("4.2.0", "5.1.0"), "3.13": ("5.1.0", None)}
# Blender platform -> pip platform tags to try, oldest operating system first. pip also accepts older tags
# than the one given (manylinux_2_28 takes 2_17 wheels, macosx_11_0 takes 10_x wheels) and prefers the newest
# of those, so the first tag that has a wheel gives the wheel for the oldest OS that has one.
PLATFORMS = {
    "linux-x64": ["manylinux_2_28_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": [f"macosx_{v}_0_arm64" for v in (11, 12, 13, 14, 15)],
    "macos-x64": [f"macosx_{v}_0_x86_64" for v in (11, 12, 13, 14, 15)],
}
SIZE_BUDGET_MB = 70
LICENSE_NAME = re.compile(r"(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)


def version() -> str:
    """The one version number: ``__version__`` in ``holopart_blender/__init__.py`` (pyproject.toml reads it too)."""
    found = re.search(r'^__version__ = "([^"]+)"$', (PACKAGE / "__init__.py").read_text(), re.MULTILINE)
    if found is None:
        sys.exit("holopart_blender/__init__.py has no __version__ line")
    return found.group(1)


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


def fetch_wheels(blender_platform: str, python: str, wheelhouse: Path) -> list[Path]:
    """The bundled wheels for one platform and Python version, downloaded once into ``wheelhouse``."""
    folder = wheelhouse / blender_platform / f"cp{python.replace('.', '')}"
    marker = folder / "complete.json"
    wanted = {"pins": pins(), "tags": PLATFORMS[blender_platform]}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return sorted(folder.glob("*.whl"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for pin in wanted["pins"]:
        for tag in wanted["tags"]:
            pip = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                                  "--only-binary=:all:", "--python-version", python, "--platform", tag,
                                  "-d", str(folder), pin], capture_output=True, text=True)
            if pip.returncode == 0:
                break
        else:
            sys.exit(f"no wheel of {pin} for {blender_platform} / Python {python} (tags {', '.join(wanted['tags'])}); "
                     f"pip said: {(pip.stderr.strip().splitlines() or ['nothing'])[-1]}")
    marker.write_text(json.dumps(wanted))
    return sorted(folder.glob("*.whl"))


def copy_licenses(wheel: Path, dest: Path) -> None:
    """A wheel's licence files (its ``.dist-info`` licence files and ``licenses/`` folder) into ``dest``."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            info_dir, _, rest = name.partition("/")
            if not info_dir.endswith(".dist-info") or not rest or name.endswith("/"):
                continue
            if rest.startswith("licenses/") or ("/" not in rest and LICENSE_NAME.match(rest)):
                target = dest / info_dir.removesuffix(".dist-info") / rest.removeprefix("licenses/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))


def stage(stage_dir: Path, wheels: list[Path], blender_platform: str, python: str) -> None:
    """The extension's source folder for one platform and Python: the package, the licences, the wheels, and
    the manifest with the version, the Blender range, the platform and the wheels."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(PACKAGE, stage_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "vendor_requirements.txt", stage_dir)  # what the managed engine environment installs
    shutil.copy2(ROOT / "LICENSE", stage_dir)
    (stage_dir / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy2(wheel, stage_dir / "wheels" / wheel.name)
        copy_licenses(wheel, stage_dir / "licenses")
    version_min, version_max = PYTHONS[python]
    manifest = (ROOT / "blender_manifest.toml").read_text()
    head, sep, tables = manifest.partition("\n[")  # top-level keys must come before the first table
    extra = (f'version = "{version()}"\nblender_version_min = "{version_min}"\n'
             + (f'blender_version_max = "{version_max}"\n' if version_max else "")
             + f'platforms = ["{blender_platform}"]\nwheels = [\n'
             + "".join(f'  "./wheels/{wheel.name}",\n' for wheel in wheels) + "]\n")
    (stage_dir / "blender_manifest.toml").write_text(head.rstrip() + "\n\n" + extra + sep + tables)


def zip_name(blender_platform: str, python: str) -> str:
    return f"holopart_blender-{version()}-py{python.replace('.', '')}-{blender_platform.replace('-', '_')}.zip"


def build(platforms: list[str], pythons: list[str], out: Path, wheelhouse: Path) -> list[Path]:
    script = blender_ext_script()
    out.mkdir(parents=True, exist_ok=True)
    zips = []
    for blender_platform in platforms:
        for python in pythons:
            wheels = fetch_wheels(blender_platform, python, wheelhouse)
            stage_dir = ROOT / "build" / "extension" / f"{blender_platform}-py{python}" / "holopart_blender"
            stage(stage_dir, wheels, blender_platform, python)
            zip_path = out / zip_name(blender_platform, python)
            for old in out.glob(zip_name(blender_platform, python).replace(version(), "*", 1)):
                old.unlink()  # this platform and ABI's zip of any version: a repository lists one of each
            subprocess.run([sys.executable, str(script), "build", "--source-dir", str(stage_dir),
                            "--output-filepath", str(zip_path)], check=True)
            subprocess.run([sys.executable, str(script), "validate", str(zip_path)], check=True)
            size_mb = zip_path.stat().st_size / 1e6
            if size_mb > SIZE_BUDGET_MB:
                sys.exit(f"{zip_path.name} is {size_mb:.1f} MB, over the {SIZE_BUDGET_MB} MB budget")
            zips.append(zip_path)
    return zips


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platforms", nargs="+", default=[current_platform()],
                        help=f"Blender platforms to build for, or 'all' ({', '.join(PLATFORMS)})")
    parser.add_argument("--pythons", nargs="+", default=list(PYTHONS), choices=list(PYTHONS),
                        help="Python ABIs to build for (default: all)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zips (default: dist/)")
    where.add_argument("--repository", type=Path,
                       help="folder for a static extension repository: the zips plus index.json and index.html")
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / ".cache" / "wheelhouse",
                        help="where downloaded wheels are kept between builds")
    args = parser.parse_args(argv)
    platforms = list(PLATFORMS) if args.platforms == ["all"] else args.platforms
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown:
        parser.error(f"unknown platform(s) {', '.join(unknown)}; choose from {', '.join(PLATFORMS)} or all")
    out = args.repository or args.out
    for zip_path in build(platforms, args.pythons, out, args.wheelhouse):
        print(f"{zip_path}  {zip_path.stat().st_size / 1e6:.1f} MB")
    if args.repository:
        subprocess.run([sys.executable, str(blender_ext_script()), "server-generate", "--repo-dir", str(out),
                        "--html"], check=True)
        print(f"{out / 'index.json'}: add it in Blender as a remote repository (its URL, or file://{out.resolve()}/index.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
