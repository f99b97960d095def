"""The clean-room HoloPart against the reference cases computed by the official code (shared fixtures).

The tiny model is loaded through the same ``from_pretrained`` as the released weights. Tolerances are the
fixture README's: max abs error ≤ 1e-4·max(1, max|expected|) per array, 1e-3·(...) for the sampled latents.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from holopart_blender.engine.holopart.config import SchedulerConfig
from holopart_blender.engine.holopart.loading import from_pretrained
from holopart_blender.engine.holopart.pipeline import denoise, farthest_point_sample
from holopart_blender.engine.holopart.scheduler import schedule
from holopart_blender.engine.holopart.transformer import timestep_features
from holopart_blender.engine.reference import run_cases

from conftest import ROOT


def _load(path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _mismatches(expected: dict, actual: dict) -> list[str]:
    out = []
    for name, want in expected.items():
        if name not in actual:
            out.append(f"{name}: missing")
            continue
        got = np.asarray(actual[name])
        if got.shape != want.shape:
            out.append(f"{name}: shape {got.shape} != {want.shape}")
            continue
        tol = (1e-3 if name.startswith("sample.") else 1e-4) * max(1.0, float(np.abs(want).max()))
        err = float(np.abs(got.astype(np.float64) - want).max())
        if err > tol:
            out.append(f"{name}: max error {err:.3g} > {tol:.3g}")
    return out


@pytest.fixture(scope="module")
def expected(reference_dir):
    return _load(reference_dir / "expected.npz")


@pytest.fixture(scope="module")
def inputs(reference_dir):
    return _load(reference_dir / "inputs.npz")


@pytest.fixture(scope="module")
def extras(reference_dir):
    return _load(reference_dir / "extras.npz")


@pytest.fixture(scope="module")
def model(reference_dir):
    return from_pretrained(str(reference_dir / "model"))


def test_every_case_matches(reference_dir, expected):
    outputs, errors = run_cases(reference_dir)
    assert not errors, errors
    assert not _mismatches(expected, outputs)
    assert set(outputs) == set(expected)


@torch.inference_mode()
def test_intermediates_match(model, inputs, extras):
    """The debugging intermediates: decoder tokens, time features and token, a shifted schedule."""
    tokens = model.vae.decoder_tokens(torch.from_numpy(inputs["vae_decode.latents"]))
    t = torch.from_numpy(inputs["transformer.timestep"])
    features = timestep_features(t, model.transformer.config.width)
    timesteps, sigmas = schedule(4, SchedulerConfig(shift=3.0))
    assert not _mismatches(
        {k: extras[k] for k in ("vae_decode.kv_cache", "transformer.temb_sinusoidal", "transformer.temb",
                                "schedule_shift3.timesteps", "schedule_shift3.sigmas")},
        {"vae_decode.kv_cache": tokens.numpy(), "transformer.temb_sinusoidal": features.numpy(),
         "transformer.temb": model.transformer.time_token(t, torch.float32).numpy(),
         "schedule_shift3.timesteps": timesteps, "schedule_shift3.sigmas": sigmas})


@pytest.mark.parametrize("case, cloud, pre", [
    ("vae_encode", "vae_encode.points", "vae_encode.preselect_idx"),
    ("part_encoder", "part_encoder.part", "part_encoder.context_preselect_idx"),
    ("part_encoder", "part_encoder.part_local", "part_encoder.local_preselect_idx"),
])
def test_farthest_point_sampling_matches(inputs, extras, case, cloud, pre):
    """FPS over the official pre-draw reproduces the fixture's query indices (start at 0, ties to first)."""
    index = {"vae_encode.points": "vae_encode.query_idx", "part_encoder.part": "part_encoder.context_query_idx",
             "part_encoder.part_local": "part_encoder.local_query_idx"}[cloud]
    points = torch.from_numpy(inputs[cloud][..., :3])
    preselect = torch.from_numpy(extras[pre])
    picked = farthest_point_sample(points[:, preselect], inputs[index].shape[1])
    np.testing.assert_array_equal(preselect[picked].numpy(), inputs[index])


def test_reference_command(reference_dir, expected, tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "holopart_blender.engine.reference", str(reference_dir), str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    actual = _load(out / "outputs.npz")
    assert set(actual) == set(expected)
    assert not _mismatches(expected, actual)


def test_reference_command_fails_on_a_case_it_cannot_run(reference_dir, inputs, tmp_path):
    case_dir = tmp_path / "cases"
    case_dir.mkdir()
    (case_dir / "model").symlink_to(reference_dir / "model")
    np.savez(case_dir / "inputs.npz", **{"embed.points": inputs["embed.points"],
                                         "vae_decode.latents": inputs["vae_decode.latents"]})  # queries missing
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "holopart_blender.engine.reference", str(case_dir), str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert "case vae_decode failed: missing input 'queries'" in run.stderr and "Traceback" not in run.stderr
    assert {"embed.out", "schedule.50.timesteps"} <= set(_load(out / "outputs.npz"))


@pytest.mark.parametrize("dtype, tolerance", [(torch.bfloat16, 0.1), (torch.float16, 0.02)])
@torch.inference_mode()
def test_reduced_precision_stays_close(reference_dir, inputs, expected, dtype, tolerance):
    """The GPU precisions, run on the CPU: the weights cast on load, norms and Euler updates in float32.
    The guided sampler and the decoder stay within a few 8- or 11-bit mantissa steps of the official float32."""
    low = from_pretrained(str(reference_dir / "model"), dtype=dtype)
    assert {p.dtype for p in low.transformer.parameters()} == {dtype}
    tensor = lambda name: torch.from_numpy(inputs[name]).to(dtype)  # noqa: E731
    latents = denoise(low, tensor("sample.noise"), tensor("sample.local_tokens"), tensor("sample.context_tokens"),
                      4, 3.5)
    decoded = low.vae.query(low.vae.kv_cache(tensor("vae_decode.latents")),
                            torch.from_numpy(inputs["vae_decode.queries"]))
    for got, want in ((latents, expected["sample.latents"]), (decoded, expected["vae_decode.out"])):
        assert got.dtype == dtype and torch.isfinite(got).all()
        error = float(np.abs(got.float().numpy() - want).max())
        assert error <= tolerance * max(1.0, float(np.abs(want).max())), error
