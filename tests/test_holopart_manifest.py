"""The full-size architecture, built from the released configs on the meta device, has exactly the tensors of
the official model (the fixtures' manifests), and the loader's check reports every difference from them."""

from __future__ import annotations

import json

import pytest
import torch

from holopart_blender.engine.holopart.config import CONFIG_CLASSES
from holopart_blender.engine.holopart.loading import build, compare_tensors

COMPONENTS = ("vae", "part_encoder", "transformer")


@pytest.fixture(scope="module")
def manifest(reference_dir):
    return json.loads((reference_dir / "full_size_manifest.json").read_text())


def _meta(component: str, entry: dict) -> torch.nn.Module:
    with torch.device("meta"):
        return build(component, CONFIG_CLASSES[component].from_dict(entry["config"], component))


@pytest.mark.parametrize("component", COMPONENTS)
def test_full_size_names_and_shapes(manifest, component):
    entry = manifest[component]
    module = _meta(component, entry)
    state = module.state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(k, s) for k, s in entry["tensors"].items()]
    assert len(state) == entry["num_tensors"]
    assert sum(v.numel() for v in state.values()) == entry["num_parameters"]


def test_loader_check_reports_each_difference(manifest):
    entry = manifest["transformer"]
    module = _meta("transformer", entry)
    tensors = {k: (tuple(s), "F16") for k, s in entry["tensors"].items()}
    assert compare_tensors(module, tensors, "transformer") == []
    del tensors["blocks.3.attn2.to_k.weight"]
    tensors["blocks.20.skip_linear.weight"] = ((2048, 2048), "F16")
    tensors["blocks.0.extra.weight"] = ((7,), "F16")
    tensors["proj_in.bias"] = ((2048,), "I64")
    assert sorted(compare_tensors(module, tensors, "transformer")) == sorted([
        "transformer: missing tensor blocks.3.attn2.to_k.weight [2048, 512]",
        "transformer: unexpected tensor blocks.0.extra.weight [7]",
        "transformer: blocks.20.skip_linear.weight has shape [2048, 2048], the architecture needs [2048, 4096]",
        "transformer: proj_in.bias has dtype I64, a float type is needed",
    ])
