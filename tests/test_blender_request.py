"""The request the Blender side builds from plain values and the worker's engine listing (no Blender)."""

from __future__ import annotations

from holopart_blender.blender.request import build_request

LISTING = {"completion": {
    "holopart": {"settings": [{"name": n} for n in ("steps", "guidance", "seed", "resolution", "device", "weights")]},
    "geometric": {"settings": [{"name": n} for n in ("keep_visible", "resolution")]},
    "hull": {"settings": []},
}}
VALUES = {"seed": 7, "steps": 0, "guidance": 2.5, "resolution": 64, "device": "cuda", "weights": "/w"}


def test_each_engine_gets_only_its_settings_and_zero_means_default():
    holopart = build_request("complete", "holopart", VALUES, LISTING)
    assert holopart.settings == {"seed": 7, "guidance": 2.5, "resolution": 64, "device": "cuda", "weights": "/w"}
    assert build_request("complete", "geometric", VALUES, LISTING).settings == {"resolution": 64}
    assert build_request("complete", "hull", VALUES, LISTING).settings == {}
    assert build_request("complete", "unknown", VALUES, LISTING).settings == {}


def test_auto_gets_the_settings_of_every_engine_and_the_request_fields():
    request = build_request("amodal", "auto", {**VALUES, "resolution": 0}, LISTING, segmentation_engine="spectral",
                            parts=[0, 2])
    assert request.settings == {"seed": 7, "guidance": 2.5, "device": "cuda", "weights": "/w"}
    assert (request.operation, request.engine, request.segmentation_engine, request.parts) == \
        ("amodal", "auto", "spectral", [0, 2])
