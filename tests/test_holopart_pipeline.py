"""The HoloPart engine end to end on CPU with the tiny reference model on a real asset, the surface
extraction on a known field, and the loader's errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from holopart_blender.engine import api, meshfiles
from holopart_blender.engine.engines import completion_engine
from holopart_blender.core.errors import WeightsError
from holopart_blender.engine.holopart.loading import from_pretrained
from holopart_blender.engine.holopart.pipeline import (BOUND, LOCAL_EXTENT, extract_field, extraction_levels,
                                                       mesh_surface, surface_box)
from holopart_blender.core.progress import Progress

from conftest import ROOT

# Few steps, points and tokens and a two-level extraction: fast, and every code path of the full settings.
FAST = dict(steps=2, points=1024, resolution=64, latent_tokens=32, decimate=3000, batch_size=2)


@pytest.fixture(scope="module")
def lamp(benchmark_dir):
    return meshfiles.load_job(benchmark_dir / "lamp.glb")


def _run(job, reference_dir, **settings):
    events = []
    result = api.complete_parts(job, "holopart", {"weights": str(reference_dir / "model"), **FAST, **settings},
                                progress=Progress(lambda stage, f, message: events.append((stage, f, message))))
    return result, events


def test_end_to_end_one_mesh_per_part_in_the_object_frame(lamp, reference_dir):
    result, events = _run(lamp, reference_dir)
    assert [p.label for p in result.parts] == lamp.labels
    assert [p.name for p in result.parts] == [lamp.part_name(k) for k in lamp.labels]
    usable = lamp.mesh.check().usable
    for part in result.parts:
        assert part.engine == "holopart" and 0 < len(part.faces) <= FAST["decimate"]
        assert np.isfinite(part.vertices).all() and part.faces.max() < len(part.vertices)
        segment = lamp.mesh.vertices[lamp.mesh.faces[(lamp.face_labels == part.label) & usable]].reshape(-1, 3)
        lo, hi = segment.min(0), segment.max(0)
        # The decoding domain is the local frame's [-1.05, 1.05]^3, the frame putting the segment's samples
        # within ±0.665: in the object's frame it lies within the segment's box grown by 1.05/0.665 of its
        # largest half-extent (plus 2% for the vertices that quadric decimation moves).
        grow = 1.02 * BOUND / LOCAL_EXTENT * (hi - lo).max() / 2
        assert (part.vertices >= lo - grow).all() and (part.vertices <= hi + grow).all()
        assert np.ptp(part.vertices, axis=0).max() > 0.1 * (segment.max(0) - segment.min(0)).max()
        assert {"sample", "encode", "denoise", "extract", "mesh"} <= set(part.timings)
    fractions = [f for _, f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = " ".join(m for _, _, m in events)
    assert "denoising step 2/2" in messages and "surface level 2/2" in messages


def test_same_seed_same_meshes_other_seed_other_meshes(lamp, reference_dir):
    parts = [0]
    first = api.complete_parts(lamp, "holopart", {"weights": str(reference_dir / "model"), **FAST}, parts=parts)
    again = api.complete_parts(lamp, "holopart", {"weights": str(reference_dir / "model"), **FAST}, parts=parts)
    other = api.complete_parts(lamp, "holopart", {"weights": str(reference_dir / "model"), **FAST, "seed": 7},
                               parts=parts)
    np.testing.assert_array_equal(first.parts[0].vertices, again.parts[0].vertices)
    np.testing.assert_array_equal(first.parts[0].faces, again.parts[0].faces)
    assert first.parts[0].vertices.shape != other.parts[0].vertices.shape or \
        not np.array_equal(first.parts[0].vertices, other.parts[0].vertices)


def test_coarse_to_fine_extraction_is_exact_on_a_known_field():
    """A sphere of radius 0.5 off the origin: refined field equals the true one where it was decoded, the
    mesh is closed and its vertices lie on the sphere in local coordinates (no 504/512 shrink)."""
    center = torch.tensor([0.1, -0.2, 0.05])
    queried = []

    def field(p):
        queried.append(len(p))
        return 10.0 * (0.5 - torch.linalg.norm(p - center, dim=-1))

    resolution = 128
    assert extraction_levels(resolution) == [32, 64, 128]
    values = extract_field(field, resolution, torch.device("cpu"), 50_000, Progress())
    n = resolution + 1
    assert values.shape == (n, n, n) and sum(queried) < n ** 3 / 4
    vertices, faces, notes = mesh_surface(surface_box(values), resolution, 0)
    import trimesh
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight and mesh.volume > 0
    radius = np.linalg.norm(vertices - center.numpy(), axis=1)
    assert np.abs(radius - 0.5).max() < 2e-3


def _copy_model(reference_dir, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(reference_dir / "model", folder)
    return folder


def test_missing_file_is_reported(reference_dir, tmp_path):
    folder = _copy_model(reference_dir, tmp_path)
    (folder / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(WeightsError) as err:
        from_pretrained(str(folder))
    assert "transformer/diffusion_pytorch_model.safetensors" in err.value.message
    assert "scheduler/scheduler_config.json" in err.value.message


def test_wrong_shapes_are_all_reported_before_loading(reference_dir, tmp_path):
    folder = _copy_model(reference_dir, tmp_path)
    path = folder / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(path)
    tensors["decoder.proj_out.weight"] = torch.zeros(2, 48)
    del tensors["post_quant.bias"]
    save_file(tensors, path)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    (folder / "transformer" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 16}))
    with pytest.raises(WeightsError) as err:
        from_pretrained(str(folder))
    message = err.value.message
    assert "vae: decoder.proj_out.weight has shape [2, 48], the architecture needs [1, 48]" in message
    assert "vae: missing tensor post_quant.bias [48]" in message
    assert "transformer: blocks.0.attn2.to_k.weight has shape [64, 32], the architecture needs [64, 16]" in message


def test_pickle_checkpoint_is_refused(reference_dir, tmp_path):
    folder = _copy_model(reference_dir, tmp_path)
    path = folder / "part_encoder" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(path), folder / "part_encoder" / "diffusion_pytorch_model.bin")
    path.unlink()
    with pytest.raises(WeightsError, match="pickle"):
        from_pretrained(str(folder))
    with pytest.raises(WeightsError, match="pickle"):
        from_pretrained(str(folder / "part_encoder" / "diffusion_pytorch_model.bin"))


def test_hub_weights_need_network_or_cache(tmp_path):
    with pytest.raises(WeightsError) as err:
        from_pretrained("VAST-AI/HoloPart", cache_dir=tmp_path)
    assert "not downloaded" in err.value.message and "download" in err.value.hint


def test_engine_availability(reference_dir, tmp_path):
    engine = completion_engine("holopart")
    assert engine.availability({"weights": str(reference_dir / "model")}) == (True, "")
    ok, reason = engine.availability({"weights": str(tmp_path / "nothing")})
    assert not ok and "no weight folder" in reason


def test_weights_command_status(reference_dir, tmp_path):
    def status(dest):
        run = subprocess.run([sys.executable, "-m", "holopart_blender.engine.holopart.weights", "status",
                              "--dest", str(dest)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        return run.returncode, json.loads(run.stdout.splitlines()[-1])

    code, event = status(reference_dir / "model")
    assert code == 0 and event["found"] and event["missing"] == []
    code, event = status(tmp_path)
    assert code == 1 and not event["found"] and "model_index.json" in event["missing"]


def test_faces_of_no_part_are_in_no_mask(lamp, reference_dir, monkeypatch):
    """One part labelled, the rest -1 (context): only the part's share of the whole surface is masked."""
    from holopart_blender.core.meshmath import face_areas
    from holopart_blender.core.partjob import PartJob
    from holopart_blender.engine.holopart import pipeline

    seen = []
    conditions = pipeline.part_conditions
    monkeypatch.setattr(pipeline, "part_conditions", lambda *a: seen.append(conditions(*a)) or seen[-1])
    label = lamp.labels[0]
    job = PartJob(lamp.mesh, np.where(lamp.face_labels == label, label, -1))
    api.complete_parts(job, "holopart", {"weights": str(reference_dir / "model"), **FAST, "steps": 1,
                                         "resolution": 32})
    usable = lamp.mesh.check().usable
    area = face_areas(lamp.mesh.vertices, lamp.mesh.faces)
    share = area[usable & (lamp.face_labels == label)].sum() / area[usable].sum()
    mask = seen[0].whole[0, :, 6]
    assert share < 0.8 and abs(mask.mean() - share) < 0.05, (mask.mean(), share)


@torch.inference_mode()
def test_bfloat16_decoder_embeds_float32_lattice_points(reference_dir):
    """Lattice points of the 504 grid at |x| in [0.9, 1.05] (where a bfloat16 step is up to 0.94 cell) reach
    the decoder's Fourier embedding in float32: its features are the float32 ones, cast afterwards."""
    from holopart_blender.engine.holopart.pipeline import field_query, lattice_coordinates

    model = from_pretrained(str(reference_dir / "model"), dtype=torch.bfloat16)
    index = torch.arange(0, 505)
    index = index[lattice_coordinates(index.float(), 504).abs() >= 0.9]
    grid = torch.stack(torch.meshgrid(index, index[::7], index[::11], indexing="ij"), -1).reshape(-1, 3)
    points = lattice_coordinates(grid.float(), 504)
    seen = []
    hook = model.vae.decoder.proj_query.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    latents = torch.randn(1, 16, model.transformer.config.in_channels, generator=torch.Generator().manual_seed(0))
    values = field_query(model, latents.to(torch.bfloat16))(points)
    hook.remove()
    assert values.dtype == torch.float32 and values.shape == (len(points),) and torch.isfinite(values).all()
    features = model.vae.embedder(points)
    assert torch.equal(seen[0][0], features.to(torch.bfloat16))
    # What rounding the coordinates first would give: over half a cell off, and visibly other features.
    rounded = points.to(torch.bfloat16).float()
    assert (rounded - points).abs().max() > 0.5 * 2.1 / 504
    assert (model.vae.embedder(rounded) - features).abs().max() > 0.1
