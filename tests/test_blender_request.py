"""The engine listing as the Blender side reads it, and the request it builds from plain values (no Blender)."""

from __future__ import annotations

from holopart_blender.blender import listing
from holopart_blender.blender.request import build_request


def _setting(name, type_, default, **limits):
    return {"name": name, "type": type_, "default": default, "help": f"{name} help", "choices": None,
            "minimum": limits.get("minimum"), "maximum": limits.get("maximum")}


LISTING = {
    "completion": {
        "holopart": {"available": False, "reason": "no weights", "description": "the diffusion model",
                     "settings": [_setting("steps", "int", 50, minimum=1, maximum=1000),
                                  _setting("guidance", "float", 3.5, minimum=0.0, maximum=50.0),
                                  _setting("resolution", "int", 504), _setting("device", "str", "auto"),
                                  _setting("weights", "str", "repo"), _setting("dtype", "str", "auto")]},
        "geometric": {"available": True, "description": "CPU completion",
                      "settings": [_setting("keep_visible", "bool", True), _setting("resolution", "int", 128)]},
        "hull": {"available": True, "description": "convex hull", "settings": []},
    },
    "segmentation": {
        "auto": {"available": True, "description": "picks a method", "settings": [_setting("min_area", "float", 0.01)]},
        "seeded": {"available": True, "description": "grows seeds", "uses_seeds": True,
                   "settings": [_setting("sigma", "float", 0.05)]},
    },
    "auto_completion": ["holopart", "geometric"],
}


def test_choices_come_from_the_listing():
    completion = listing.choices(LISTING, "completion")
    assert [c[0] for c in completion] == ["auto", "holopart", "geometric", "hull"]
    assert completion[0][2] == "The first engine that can run here of: Holopart, Geometric"
    assert completion[1][2] == "The diffusion model (not available here: no weights)"
    assert [c[0] for c in listing.choices(LISTING, "segmentation")] == ["auto"]  # seeded grows labels: not a method
    assert len({listing.number(n) for n in ("PREFERENCES", "auto", "holopart", "geometric", "hull", "seeded")}) == 6


def test_the_panel_shows_only_the_chosen_engines_numbers_and_switches():
    assert [s["name"] for s in listing.shown_settings(LISTING, "completion", "holopart")] == \
        ["steps", "guidance", "resolution"]  # device and weights belong to the preferences; strings are not shown
    assert [s["name"] for s in listing.shown_settings(LISTING, "completion", "hull")] == []
    assert listing.candidates(LISTING, "completion", "auto") == ["holopart", "geometric"]


def test_each_engine_gets_its_changed_settings_and_the_preferences_values():
    stored = {"holopart.steps": 25, "holopart.guidance": 3.5, "geometric.resolution": 64, "seeded.sigma": 0.2}
    prefs = {"device": "cuda", "weights": "/w"}
    holopart = build_request("complete", "holopart", "auto", stored, prefs, LISTING)
    assert holopart.settings == {"steps": 25, "device": "cuda", "weights": "/w"}  # guidance is the default
    assert build_request("complete", "geometric", "auto", stored, prefs, LISTING).settings == {"resolution": 64}
    assert build_request("complete", "hull", "auto", stored, prefs, LISTING).settings == {}
    auto = build_request("amodal", "auto", "auto", {**stored, "holopart.resolution": 256}, prefs, LISTING, parts=[0, 2])
    assert auto.settings == {"steps": 25, "resolution": 256, "device": "cuda", "weights": "/w"}  # holopart first
    assert (auto.operation, auto.engine, auto.segmentation_engine, auto.parts) == ("amodal", "auto", "auto", [0, 2])
    seeded = build_request("segment", "auto", "seeded", stored, prefs, LISTING)
    assert seeded.segmentation_settings == {"sigma": 0.2}
