"""Content hashes of files: the weights' check against the hub and the batch's result keys."""

from __future__ import annotations

import hashlib
import os

BLOCK = 8 << 20  # bytes read at a time


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex, read in blocks (a multi-GB weights file never sits in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()
