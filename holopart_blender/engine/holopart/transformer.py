"""The part diffusion transformer: a U-skip transformer over latent tokens with a prepended time token.

Each block: self-attention, cross-attention to the local part tokens (``attn2``), then to the whole-shape
context tokens (``attn2_2``), FFN; all attentions with RMS qk-norm. Blocks before the middle push their
output, blocks after it pop the most recent (LIFO) as a long skip. The output is the velocity (data − noise).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import TransformerConfig
from .layers import Block


def timestep_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features (B, dim) of float timesteps: [sin | cos], frequencies exp(−ln(1e4)·k/(dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TimeMLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.linear_1 = nn.Linear(width, 4 * width)
        self.linear_2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x)))


class Transformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        width, heads, layers = config.width, config.num_attention_heads, config.num_layers
        self.time_proj = TimeMLP(width)
        self.proj_in = nn.Linear(config.in_channels, width)
        self.middle = layers // 2
        self.blocks = nn.ModuleList([
            Block(width, heads, cross_dim=config.cross_attention_dim, cross_2_dim=config.cross_attention_2_dim,
                  qk_norm=True, skip=i > self.middle)
            for i in range(layers)])
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, config.in_channels)

    def time_token(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.time_proj(timestep_features(timestep, self.config.width).to(dtype))

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor, local: torch.Tensor,
                context: torch.Tensor) -> torch.Tensor:
        """Velocity (B, T, C) for latents (B, T, C) at float timesteps (B,) in [0, 1000].

        ``local`` feeds ``attn2`` and ``context`` (whole-shape tokens) feeds ``attn2_2``.
        """
        h = self.proj_in(latents)
        h = torch.cat([self.time_token(timestep, h.dtype)[:, None], h], dim=1)
        skips = []
        for i, block in enumerate(self.blocks):
            h = block(h, local, context, skips.pop() if i > self.middle else None)
            if i < self.middle:
                skips.append(h)
        return self.proj_out(self.norm_out(h)[:, -latents.shape[1]:])
