"""The worker protocol: versioned JSON messages, one per line, over the worker's stdin and stdout.

Job data never travels in messages: a job message names a job folder (see ``jobfolder``). This module is
pure standard library so the Blender side can use it. The full description is in docs/protocol.md.

Client -> worker: ``job`` {id, folder}, ``cancel`` {id}, ``engines`` {}, ``ping`` {}, ``shutdown`` {}.
Worker -> client: ``hello`` {pid, python, protocol}, ``heartbeat`` {} (every second), ``accepted`` {id}, ``progress`` {id, stage, fraction,
message}, ``done`` {id, folder, summary}, ``error`` {id, kind, message, hint}, ``cancelled`` {id},
``engines`` {completion, segmentation}, ``pong`` {}, ``log`` {level, message}.
"""

from __future__ import annotations

import json

PROTOCOL_VERSION = 1

CLIENT_MESSAGES = {"job", "cancel", "engines", "ping", "shutdown"}
WORKER_MESSAGES = {"hello", "heartbeat", "accepted", "progress", "done", "error", "cancelled", "engines", "pong", "log"}
FINAL_JOB_EVENTS = {"done", "error", "cancelled"}


class ProtocolError(ValueError):
    """A line that is not a valid message of this protocol version."""


def encode(type_: str, **fields) -> bytes:
    """One message as a line of UTF-8 JSON."""
    return (json.dumps({"v": PROTOCOL_VERSION, "type": type_, **fields}, ensure_ascii=False) + "\n").encode("utf-8")


def decode(line: bytes | str, allowed: set[str]) -> dict:
    """Parse and check one line; raise ProtocolError with the reason."""
    try:
        message = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message must be a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version {message.get('v')!r}, expected {PROTOCOL_VERSION}")
    if message.get("type") not in allowed:
        raise ProtocolError(f"unknown message type {message.get('type')!r}")
    return message
