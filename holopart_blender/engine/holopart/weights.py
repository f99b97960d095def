"""Find or download the HoloPart weights; one JSON object per output line (for the Blender preferences).

    python -m holopart_blender.engine.holopart.weights status   [--repo R] [--revision V] [--dest DIR]
    python -m holopart_blender.engine.holopart.weights download [--repo R] [--revision V] [--dest DIR] --allow-network

``status`` never uses the network: it reports whether the weights are complete in ``--dest`` (a folder) or in
the Hugging Face cache. ``download`` fetches the files the model needs (configs and safetensors only).

- Into ``--dest`` (what the Blender preferences do) the download is **resumable**: a file's bytes go to
  ``NAME.part`` beside a ``NAME.part.etag`` naming the file version they belong to; a later run (or a retry
  after a dropped connection, up to 5 per file) asks the hub only for the rest with an HTTP Range request.
  A finished file is checked (size, and the SHA-256 for the weight files, whose hub ETag is their SHA-256)
  before it takes its final name, and finished files are not fetched again.
- Without ``--dest`` the files go to the Hugging Face cache through ``huggingface_hub.hf_hub_download``,
  where ``from_pretrained(repo_id)`` finds them; there an interrupted file starts over.

No torch import: this runs in seconds, also from Blender's Check Installation. Events: ``{"event": "status" |
"file" | "progress" | "done" | "error", ...}``; the exit status is 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path

from ...core.errors import WeightsError
from ...core.hashing import file_sha256
from .files import DEFAULT_REPO, REQUIRED_FILES, check_files, resolve_weights

CHUNK_BYTES = 1 << 20
RETRIES = 5
PROGRESS_SECONDS = 0.5


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


class _Reporter:
    """Throttled ``progress`` events for one file (always one at the end)."""

    def __init__(self, file: str, index: int, count: int):
        self.fields = {"file": file, "index": index, "count": count}
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_SECONDS or done >= total:
            self._last = now
            emit("progress", **self.fields, bytes=int(done), total=int(total))


def _progress_bar(report: _Reporter):
    """A tqdm class that feeds ``report`` instead of drawing a bar (for ``hf_hub_download``)."""
    from tqdm.auto import tqdm

    class JsonProgress(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.update(disable=False, file=io.StringIO())
            super().__init__(*args, **kwargs)

        def display(self, *args, **kwargs):
            return True

        def update(self, n=1):
            super().update(n)
            report(self.n, self.total or self.n)

    return JsonProgress


def fetch(repo: str, revision: str | None, name: str, dest: Path, report) -> None:
    """Download ``name`` of ``repo`` into ``dest / name``, resuming a partial file (module docstring)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    meta = get_hf_file_metadata(hf_hub_url(repo, name, revision=revision or None))
    target = dest / name
    if target.is_file() and target.stat().st_size == meta.size:
        report(meta.size, meta.size)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    part, stamp = target.with_name(target.name + ".part"), target.with_name(target.name + ".part.etag")
    if part.exists() and (not stamp.is_file() or stamp.read_text() != meta.etag or part.stat().st_size > meta.size):
        part.unlink()  # bytes of another version of the file (or damaged): start over
    stamp.write_text(meta.etag)
    for attempt in range(RETRIES):
        offset = part.stat().st_size if part.exists() else 0
        if offset == meta.size:
            break
        headers = build_hf_headers()
        if offset:
            headers["Range"] = f"bytes={offset}-"
            print(f"{name}: resuming at byte {offset}", file=sys.stderr, flush=True)
        try:
            with urllib.request.urlopen(urllib.request.Request(meta.location, headers=headers), timeout=60) as response:
                if offset and response.status != 206:
                    offset = 0  # the server ignored the Range: take the whole file
                with open(part, "ab" if offset else "wb") as out:
                    # read1: what has arrived (a stall or a Stop loses nothing received); b"" at the end, also
                    # when the connection closes early. Flushed each time, so even a hard kill keeps the bytes.
                    while chunk := response.read1(CHUNK_BYTES):
                        out.write(chunk)
                        out.flush()
                        offset += len(chunk)
                        report(offset, meta.size)
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts are OSErrors
            print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        if offset != meta.size and attempt < RETRIES - 1:
            time.sleep(1.0)
    got = part.stat().st_size if part.exists() else 0
    if got != meta.size:
        raise WeightsError(f"{name}: the connection kept dropping ({got} of {meta.size} bytes)",
                           "download again: it resumes where it stopped")
    if re.fullmatch(r"[0-9a-f]{64}", meta.etag or "") and file_sha256(part) != meta.etag:
        part.unlink()
        raise WeightsError(f"the downloaded {name} is damaged (its SHA-256 does not match the hub's)",
                           "download again")
    os.replace(part, target)
    stamp.unlink()


def download(repo: str, revision: str | None, dest: Path | None) -> bool:
    from huggingface_hub import hf_hub_download
    try:
        for i, name in enumerate(REQUIRED_FILES):
            emit("file", file=name, index=i, count=len(REQUIRED_FILES))
            report = _Reporter(name, i, len(REQUIRED_FILES))
            if dest is not None:
                fetch(repo, revision, name, dest, report)
            else:
                hf_hub_download(repo, name, revision=revision, tqdm_class=_progress_bar(report))
    except Exception as exc:  # noqa: BLE001 - network, auth and disk errors all end the download
        emit("error", message=f"{type(exc).__name__}: {exc}",
             hint="check the repo id, the revision and the network connection, then download again: "
             + ("it resumes where it stopped" if dest is not None else "finished files are kept"))
        return False
    ok = status(repo, revision, dest)
    emit("done", ok=ok)
    return ok


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m holopart_blender.engine.holopart.weights", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("status", "download"))
    parser.add_argument("--repo", default=DEFAULT_REPO, help=f"hub repo id (default {DEFAULT_REPO})")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default: latest)")
    parser.add_argument("--dest", type=Path, default=None,
                        help="folder for the weights (resumable); default: the Hugging Face cache")
    parser.add_argument("--allow-network", action="store_true", help="required for download")
    args = parser.parse_args(argv)
    if args.command == "status":
        return 0 if status(args.repo, args.revision, args.dest) else 1
    if not args.allow_network:
        emit("error", message="downloading needs network access", hint="pass --allow-network")
        return 1
    if threading.current_thread() is threading.main_thread():
        # Blender's Stop terminates this process: unwind (closing the partial file cleanly, and letting
        # huggingface_hub delete its temporary file in the cache case) instead of dying mid-write.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return 0 if download(args.repo, args.revision, args.dest) else 1


if __name__ == "__main__":
    sys.exit(main())
