"""Shared test fixtures: where the shared data lives, and small real meshes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HOLOPART_SHARED", ROOT.parent / "shared"))
BENCHMARK = SHARED / "benchmark" / "parts"
REFERENCE = SHARED / "fixtures" / "holopart_reference"


@pytest.fixture(scope="session")
def benchmark_dir() -> Path:
    if not BENCHMARK.is_dir():
        pytest.fail(f"benchmark assets not found at {BENCHMARK} (set HOLOPART_SHARED)")
    return BENCHMARK


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference fixtures not found at {REFERENCE} (set HOLOPART_SHARED)")
    return REFERENCE
