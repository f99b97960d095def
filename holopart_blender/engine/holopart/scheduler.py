"""The rectified-flow scheduler: the timestep schedule and the Euler update (the sampling loop, guidance,
progress and cancelling are the pipeline's, ``pipeline.denoise``).

Convention of the released model: x_σ = (1 − σ)·x0 + σ·ε, the transformer predicts v ≈ x0 − ε, and an Euler
step from σ_i to σ_(i+1) is x ← x + (σ_i − σ_(i+1))·v (the opposite sign to diffusers' FlowMatchEuler).
"""

from __future__ import annotations

import numpy as np
import torch

from .config import SchedulerConfig


def schedule(steps: int, config: SchedulerConfig) -> tuple[np.ndarray, np.ndarray]:
    """(timesteps (steps,), sigmas (steps + 1,)) as float32: σ_i = 1 − i/n, shifted, then a final 0."""
    sigmas = 1.0 - np.arange(steps, dtype=np.float64) / steps
    s = config.shift
    sigmas = s * sigmas / (1.0 + (s - 1.0) * sigmas)
    timesteps = (sigmas * config.num_train_timesteps).astype(np.float32)
    return timesteps, np.append(sigmas, 0.0).astype(np.float32)


def euler_step(x: torch.Tensor, velocity: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """One Euler step, computed in float32 and returned in the sample's dtype."""
    return (x.float() + (sigma - sigma_next) * velocity.float()).to(x.dtype)
