"""Rectified-flow sampling: the timestep schedule, the Euler update and classifier-free guidance.

Convention of the released model: x_σ = (1 − σ)·x0 + σ·ε, the transformer predicts v ≈ x0 − ε, and an Euler
step from σ_i to σ_(i+1) is x ← x + (σ_i − σ_(i+1))·v (the opposite sign to diffusers' FlowMatchEuler).
"""

from __future__ import annotations

from typing import Callable

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


def sample(transformer: torch.nn.Module, noise: torch.Tensor, local: torch.Tensor, context: torch.Tensor,
           steps: int, guidance: float, config: SchedulerConfig,
           on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Denoise ``noise`` (B, T, C) conditioned on (local, context) tokens; returns the final latents.

    With ``guidance`` > 1 the unconditional half (zeros for both contexts) and the conditional half run in
    one batch, and v = v_uncond + guidance·(v_cond − v_uncond). ``on_step(i, steps)`` is called after each step.
    """
    timesteps, sigmas = schedule(steps, config)
    guided = guidance > 1.0
    if guided:
        local = torch.cat([torch.zeros_like(local), local])
        context = torch.cat([torch.zeros_like(context), context])
    x = noise
    for i in range(steps):
        model_in = torch.cat([x, x]) if guided else x
        t = torch.full((model_in.shape[0],), float(timesteps[i]), device=x.device, dtype=torch.float32)
        v = transformer(model_in, t, local, context)
        if guided:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + guidance * (v_cond - v_uncond)
        x = euler_step(x, v, float(sigmas[i]), float(sigmas[i + 1]))
        if on_step is not None:
            on_step(i, steps)
    return x
