"""The running job: its folder, the source it was read from, and its progress as the worker reports it.

Job data travels through a job folder in the extension's user folder (``wire.jobfolder``); the newest
``KEEP_JOB_FOLDERS`` are kept for inspection. One job runs at a time (``current``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..wire import protocol
from ..wire.client import EventClient
from ..wire.jobfolder import read_result, write_job
from ..wire.request import JobRequest
from . import session
from .addon import user_folder

KEEP_JOB_FOLDERS = 5

current: "Job | None" = None  # the job in progress (one at a time)


class Job:
    """One job: its folder, the source it was read from, and its progress as reported by the worker."""

    def __init__(self, client: EventClient, source, request: JobRequest):
        self.client, self.source = client, source
        self.request = request
        self.folder = new_job_folder(user_folder() / "jobs")
        self.job_id: str | None = None
        self.fraction, self.message, self.stage = 0.0, "starting the engine", ""
        self.final: dict | None = None
        self.started = time.monotonic()
        self.cancel_time: float | None = None

    def start(self) -> None:
        """Write the job folder and send it to the worker (non-blocking)."""
        global current
        write_job(self.folder, self.source.job, self.request)
        self.job_id = self.client.submit(self.folder)
        current = self

    def run(self, on_event=None) -> dict:
        """Write the job folder and run it to the end (background mode); returns the final event."""
        def handle(event):
            self.update(event)
            if on_event is not None:
                on_event(event)

        write_job(self.folder, self.source.job, self.request)
        return self.client.run(self.folder, on_event=handle)

    def update(self, event: dict) -> None:
        if self.job_id is not None and event.get("id") not in (None, self.job_id):
            return  # late news of an earlier job
        if event["type"] == "progress":
            self.fraction, self.stage, self.message = event["fraction"], event["stage"], event["message"]
        elif event["type"] == "accepted":
            self.job_id = event["id"]
        elif event["type"] in protocol.FINAL_JOB_EVENTS and event.get("id") == self.job_id:
            self.final = event
        elif event["type"] == "engines":  # asked for by the UI while this job runs
            session.take_listing(event)

    def drain(self) -> dict | None:
        """Apply the worker's events so far; returns the final event once the job has ended."""
        for event in self.client.poll():
            self.update(event)
        return self.final

    def cancel(self) -> None:
        """Ask the worker to stop the job (it answers 'cancelled' at the engine's next progress call)."""
        self.cancel_time = self.cancel_time or time.monotonic()
        if self.job_id is not None:
            self.client.cancel(self.job_id)

    def result(self):
        return read_result(self.folder)

    def status_text(self) -> str:
        return f"HoloPart: {self.message or self.stage} ({self.fraction * 100:.0f}%) - Esc to cancel"

    def finish(self) -> None:
        global current
        if current is self:
            current = None


def new_job_folder(jobs: Path) -> Path:
    """The path for a new job folder under ``jobs``, named by a zero-padded ``time_ns`` so names sort in
    creation order; older folders are removed so that ``KEEP_JOB_FOLDERS`` remain with the new one (folders
    of the earlier date-based naming count as the oldest)."""
    jobs.mkdir(parents=True, exist_ok=True)
    folders = sorted((p for p in jobs.iterdir() if p.is_dir()), key=lambda p: (p.name.isdigit(), p.name))
    for old in folders[:max(len(folders) - (KEEP_JOB_FOLDERS - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    return jobs / f"{time.time_ns():020d}"
