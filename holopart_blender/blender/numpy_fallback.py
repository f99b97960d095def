"""numpy for a Blender whose own Python has none (some Linux distribution builds, e.g. Debian's): the
Blender side borrows the numpy of the managed engine environment.

That environment is a venv made from Blender's own Python (``EnvironmentManager`` uses ``sys.executable``),
so its numpy is built for this very interpreter. Only numpy is borrowed: a finder at the end of
``sys.meta_path`` resolves the top-level name ``numpy`` (and nothing else) in the environment's
site-packages, so the venv's other packages stay invisible to Blender and a numpy that Blender finds itself
always wins. bpy-free.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

MESSAGE = ("This Blender's own Python has no numpy, which HoloPart's Blender side needs (Blender's official "
           "builds include it; some Linux distribution builds do not). Install the engine environment in the "
           "extension's preferences: HoloPart then uses its numpy. Or install your distribution's numpy for "
           "Blender's Python (Debian/Ubuntu: sudo apt install python3-numpy), or use Blender from blender.org. "
           "See docs/troubleshooting.md.")


def site_packages(env_dir: Path) -> Path | None:
    """The venv's site-packages when that venv was made by a Python of this version, else None."""
    config = env_dir / "pyvenv.cfg"
    if not config.is_file():
        return None
    values = {}
    for line in config.read_text(errors="replace").splitlines():
        key, _, value = line.partition("=")
        values[key.strip().lower()] = value.strip()
    version = values.get("version_info") or values.get("version") or ""
    if version.split(".")[:2] != [str(sys.version_info.major), str(sys.version_info.minor)]:
        return None
    if sys.platform == "win32":
        site = env_dir / "Lib" / "site-packages"
    else:
        site = env_dir / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    return site if (site / "numpy" / "__init__.py").is_file() else None


class _NumpyFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level ``numpy`` package in one folder; its submodules follow ``numpy.__path__``."""

    def __init__(self, folder: Path):
        self.folder = str(folder)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "numpy":
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.folder])


def borrowed_from() -> str | None:
    """The folder numpy is borrowed from, or None when nothing is borrowed."""
    return next((f.folder for f in sys.meta_path if isinstance(f, _NumpyFinder)), None)


def available() -> bool:
    """Whether ``import numpy`` works (Blender's own, or borrowed)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def borrow(env_dirs: list[Path]) -> str | None:
    """Make ``import numpy`` work from the first of ``env_dirs`` (venv folders) that has a numpy for this
    Python. Returns the folder used, or None (nothing changed) when none has one or it fails to import."""
    if available():
        return borrowed_from()
    for env_dir in env_dirs:
        site = site_packages(Path(env_dir))
        if site is None:
            continue
        finder = _NumpyFinder(site)
        sys.meta_path.append(finder)
        try:
            import numpy  # noqa: F401
        except ImportError:  # a broken numpy there: forget it, try the next folder
            sys.meta_path.remove(finder)
            for name in [n for n in sys.modules if n == "numpy" or n.startswith("numpy.")]:
                del sys.modules[name]
            continue
        return str(site)
    return None
