"""Batches that shrink on out-of-memory: used by the model pipeline and by any engine that batches work."""

from __future__ import annotations

from typing import Sequence

from .errors import OutOfMemory, is_out_of_memory
from .progress import Progress


def run_batched(items: Sequence, batch_size: int, run, progress: Progress | None = None) -> list:
    """Run ``run(batch) -> list`` over ``items`` in batches, halving the batch on out-of-memory.

    The smaller batch size is kept for the rest of the items. At batch size 1 the error is final.
    """
    out: list = []
    i, size = 0, max(1, int(batch_size))
    while i < len(items):
        batch = list(items[i:i + size])
        try:
            out.extend(run(batch))
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(exc):
                raise
            if size == 1:
                raise OutOfMemory("out of memory even with one part per batch",
                                  "use the CPU device, a lower resolution, or close other programs") from exc
            _free_accelerator_memory()
            size = max(1, size // 2)
            if progress is not None:
                progress(i / len(items), f"out of memory: retrying with batch size {size}")
            continue
        i += len(batch)
    return out


def _free_accelerator_memory() -> None:
    import sys
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
