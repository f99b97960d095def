"""Find or download the HoloPart weights; one JSON object per output line (for the Blender preferences).

    python -m holopart_blender.engine.holopart.weights status   [--repo R] [--revision V] [--dest DIR]
    python -m holopart_blender.engine.holopart.weights download [--repo R] [--revision V] [--dest DIR] --allow-network

``status`` never uses the network: it reports whether the weights are complete in ``--dest`` (a folder) or in
the Hugging Face cache. ``download`` fetches the files the model needs (configs and safetensors only) into
``--dest``, or into the Hugging Face cache without it; an interrupted download resumes where it stopped
(huggingface_hub keeps the partial file). Events: ``{"event": "status" | "file" | "progress" | "done" |
"error", ...}``; the exit status is 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from ..errors import WeightsError
from .loading import DEFAULT_REPO, REQUIRED_FILES, check_files, resolve_weights


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def status(repo: str, revision: str | None, dest: Path | None) -> bool:
    try:
        folder = dest if dest is not None else resolve_weights(repo, revision)
        missing = check_files(folder) if folder.is_dir() else list(REQUIRED_FILES)
    except WeightsError as exc:
        emit("status", repo=repo, revision=revision, found=False, path=None, missing=list(REQUIRED_FILES),
             message=exc.message)
        return False
    emit("status", repo=repo, revision=revision, found=not missing, path=str(folder), missing=missing,
         message="complete" if not missing else f"{len(missing)} file(s) missing")
    return not missing


def _progress_bar(file: str, index: int, count: int):
    """A tqdm class that reports a file's bytes as throttled ``progress`` events instead of drawing a bar."""
    from tqdm.auto import tqdm

    class JsonProgress(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.update(disable=False, file=io.StringIO())
            super().__init__(*args, **kwargs)
            self._last = 0.0

        def display(self, *args, **kwargs):
            return True

        def update(self, n=1):
            super().update(n)
            now = time.monotonic()
            if now - self._last >= 0.5 or (self.total and self.n >= self.total):
                self._last = now
                emit("progress", file=file, index=index, count=count, bytes=int(self.n),
                     total=int(self.total or 0))

    return JsonProgress


def download(repo: str, revision: str | None, dest: Path | None) -> bool:
    from huggingface_hub import hf_hub_download
    try:
        for i, name in enumerate(REQUIRED_FILES):
            emit("file", file=name, index=i, count=len(REQUIRED_FILES))
            hf_hub_download(repo, name, revision=revision, local_dir=dest,
                            tqdm_class=_progress_bar(name, i, len(REQUIRED_FILES)))
    except Exception as exc:  # noqa: BLE001 - network, auth and disk errors all end the download
        emit("error", message=f"{type(exc).__name__}: {exc}", hint="check the network connection and retry; "
             "finished files are kept and a partial file resumes")
        return False
    ok = status(repo, revision, dest)
    emit("done", ok=ok)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m holopart_blender.engine.holopart.weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("status", "download"))
    parser.add_argument("--repo", default=DEFAULT_REPO, help=f"hub repo id (default {DEFAULT_REPO})")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default: latest)")
    parser.add_argument("--dest", type=Path, default=None, help="folder for the weights (default: the HF cache)")
    parser.add_argument("--allow-network", action="store_true", help="required for download")
    args = parser.parse_args(argv)
    if args.command == "status":
        return 0 if status(args.repo, args.revision, args.dest) else 1
    if not args.allow_network:
        emit("error", message="downloading needs network access", hint="pass --allow-network")
        return 1
    return 0 if download(args.repo, args.revision, args.dest) else 1


if __name__ == "__main__":
    sys.exit(main())
