"""Building blocks shared by the VAE, the part encoder and the diffusion transformer.

Module and parameter names follow the official weight files (``attn1.to_q.weight``, ``ff.net.0.proj.weight``,
``to_out.0.bias``, ...), so a state dict loads with no renaming.

Per-head QKV layout of the official attention (needed for its weights to work): the Q, K and V projections
are stacked to width 3·d and viewed as (heads, 3·head_dim), so head h takes q, k, v from consecutive slices
of its own 3·head_dim block; for cross-attention K and V are stacked to 2·d and split the same way. Here
that is one matrix product with the stacked weights followed by a ``view(..., heads, 3, head_dim)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierEmbedding(nn.Module):
    """[x, sin(x_j·f_k), cos(x_j·f_k)] with f_k = 2^k (·π if asked), products laid out axis-major.

    The frequencies are not parameters (no state-dict entry); they are made on the fly. Features are
    computed in float32 from the coordinates as given (pass float32 ones: bfloat16 rounds 1.0 to 2^-8) and
    returned in ``dtype`` (default: the input's).
    """

    def __init__(self, num_frequencies: int = 8, include_pi: bool = False, in_channels: int = 3):
        super().__init__()
        self.num_frequencies, self.include_pi, self.in_channels = num_frequencies, include_pi, in_channels

    @property
    def out_channels(self) -> int:
        return self.in_channels * (1 + 2 * self.num_frequencies)

    def forward(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        freqs = 2.0 ** torch.arange(self.num_frequencies, device=x.device, dtype=torch.float32)
        if self.include_pi:
            freqs = freqs * math.pi
        x32 = x.float()
        products = (x32[..., :, None] * freqs).flatten(-2)  # slot j·F + k = x_j · f_k (exact: powers of two)
        # sin and cos in float64, rounded once to float32: torch's multi-threaded float32 kernels gave some
        # elements 1.5e-4 off (depending on how the work was split), this is the correctly rounded value.
        wide = products.double()
        return torch.cat([x32, wide.sin().float(), wide.cos().float()], dim=-1).to(dtype or x.dtype)


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the module dtype, cast back to the input dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension (head_dim) with a learned weight; statistics in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32.to(x.dtype) * self.weight


class Attention(nn.Module):
    """Multi-head attention without biases on Q/K/V, with the official per-head layout (module docstring).

    ``kv_dim`` set makes it a cross-attention over a context of that width; ``qk_norm`` adds RMS norms on q
    and k per head; ``norm_cross`` adds a LayerNorm on the context before K/V.
    """

    def __init__(self, dim: int, heads: int, kv_dim: int | None = None, qk_norm: bool = False,
                 norm_cross: bool = False):
        super().__init__()
        self.heads, self.head_dim, self.is_cross = heads, dim // heads, kv_dim is not None
        kv_dim = kv_dim or dim
        if qk_norm:
            self.norm_q = RMSNorm(self.head_dim)
            self.norm_k = RMSNorm(self.head_dim)
        if norm_cross:
            self.norm_cross = nn.LayerNorm(kv_dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(kv_dim, dim, bias=False)
        self.to_v = nn.Linear(kv_dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def _split(self, x: torch.Tensor, parts: int) -> tuple[torch.Tensor, ...]:
        """(B, N, parts·d) -> ``parts`` tensors (B, heads, N, head_dim), official layout."""
        b, n, _ = x.shape
        x = x.view(b, n, self.heads, parts, self.head_dim).permute(3, 0, 2, 1, 4)
        return tuple(x.unbind(0))

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, heads, M, head_dim) of a cross-attention context; reusable across queries."""
        if hasattr(self, "norm_cross"):
            context = self.norm_cross(context)
        k, v = self._split(F.linear(context, torch.cat([self.to_k.weight, self.to_v.weight])), 2)
        if hasattr(self, "norm_k"):
            k = self.norm_k(k)
        return k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.is_cross:
            q = self._split(self.to_q(x), 1)[0]
            k, v = kv if kv is not None else self.context_kv(context)
        else:
            q, k, v = self._split(F.linear(x, torch.cat([self.to_q.weight, self.to_k.weight, self.to_v.weight])), 3)
            if hasattr(self, "norm_k"):
                k = self.norm_k(k)
        if hasattr(self, "norm_q"):
            q = self.norm_q(q)
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.to_out[0](out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class _GELUProj(nn.Module):
    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class FeedForward(nn.Module):
    """Linear(d→4d), exact GELU, Linear(4d→d); indices 0 and 2 as in the weight files (1 is a no-op dropout)."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([_GELUProj(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class Block(nn.Module):
    """Pre-norm residual block: [long skip] → [self-attn] → [cross-attn 1] → [cross-attn 2] → FFN.

    Each optional stage exists only when asked for. The second cross-attention is applied to the output of
    the first (sequential). The long skip is ``skip_norm(skip_linear(cat[skip, h]))`` (norm after the linear).
    """

    def __init__(self, dim: int, heads: int, self_attention: bool = True, cross_dim: int | None = None,
                 cross_2_dim: int | None = None, qk_norm: bool = False, norm_cross: bool = False,
                 skip: bool = False):
        super().__init__()
        if self_attention:
            self.norm1 = FP32LayerNorm(dim)
            self.attn1 = Attention(dim, heads, qk_norm=qk_norm)
        if cross_dim is not None:
            self.norm2 = FP32LayerNorm(dim)
            self.attn2 = Attention(dim, heads, cross_dim, qk_norm=qk_norm, norm_cross=norm_cross)
        if cross_2_dim is not None:
            self.norm2_2 = FP32LayerNorm(dim)
            self.attn2_2 = Attention(dim, heads, cross_2_dim, qk_norm=qk_norm, norm_cross=norm_cross)
        self.norm3 = FP32LayerNorm(dim)
        self.ff = FeedForward(dim)
        if skip:
            self.skip_norm = FP32LayerNorm(dim)
            self.skip_linear = nn.Linear(2 * dim, dim)

    def forward(self, h: torch.Tensor, context: torch.Tensor | None = None, context_2: torch.Tensor | None = None,
                skip: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if hasattr(self, "skip_linear"):
            h = self.skip_norm(self.skip_linear(torch.cat([skip, h], dim=-1)))
        if hasattr(self, "attn1"):
            h = h + self.attn1(self.norm1(h))
        if hasattr(self, "attn2"):
            h = h + self.attn2(self.norm2(h), context, kv)
        if hasattr(self, "attn2_2"):
            h = h + self.attn2_2(self.norm2_2(h), context_2)
        return h + self.ff(self.norm3(h))


class PointSetEncoder(nn.Module):
    """Cross-attention from query points to a point cloud, then self-attention blocks, then a LayerNorm.

    With ``kv_channels`` None the queries and the cloud share one ``proj_in`` (VAE encoder, local part
    encoder); otherwise they have ``q_proj_in`` and ``kv_proj_in`` (whole-shape part encoder). Inputs are
    already Fourier-embedded features.
    """

    def __init__(self, in_channels: int, width: int, heads: int, num_layers: int, kv_channels: int | None = None):
        super().__init__()
        if kv_channels is None:
            self.proj_in = nn.Linear(in_channels, width)
        else:
            self.q_proj_in = nn.Linear(in_channels, width)
            self.kv_proj_in = nn.Linear(kv_channels, width)
        self.blocks = nn.ModuleList(
            [Block(width, heads, self_attention=False, cross_dim=width, norm_cross=True)]
            + [Block(width, heads) for _ in range(num_layers)])
        self.norm_out = nn.LayerNorm(width)

    def forward(self, queries: torch.Tensor, cloud: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "proj_in"):
            q, kv = self.proj_in(queries), self.proj_in(cloud)
        else:
            q, kv = self.q_proj_in(queries), self.kv_proj_in(cloud)
        h = self.blocks[0](q, kv)
        for block in self.blocks[1:]:
            h = block(h)
        return self.norm_out(h)


def gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[b, index[b]] for every batch row b: (B, N, C), (B, T) -> (B, T, C)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))
