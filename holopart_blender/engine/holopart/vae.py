"""The vector-set VAE: point cloud → latent tokens (encoder) and latent tokens → inside/outside field (decoder).

Inference uses the decoder only: ``kv_cache`` runs ``post_quant`` and the self-attention blocks once per
part, and ``query`` evaluates the field at any number of points against that cache (query points do not
interact, so they can be chunked freely). The field is positive inside, negative outside, zero on the surface.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import VAEConfig
from .layers import Block, FourierEmbedding, PointSetEncoder, gather_rows

LOGVAR_RANGE = (-30.0, 20.0)


class VAEDecoder(nn.Module):
    def __init__(self, config: VAEConfig, query_channels: int):
        super().__init__()
        width, heads = config.width_decoder, config.num_attention_heads
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(config.num_layers_decoder)]
                                    + [Block(width, heads, self_attention=False, cross_dim=width, norm_cross=True)])
        self.proj_query = nn.Linear(query_channels, width)
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, 1)


class VAE(nn.Module):
    def __init__(self, config: VAEConfig, with_encoder: bool = True):
        super().__init__()
        self.config = config
        self.embedder = FourierEmbedding(config.embed_frequency, config.embed_include_pi, config.in_channels)
        features = self.embedder.out_channels
        if with_encoder:
            self.encoder = PointSetEncoder(features + 3, config.width_encoder, config.num_attention_heads,
                                           config.num_layers_encoder)
        self.decoder = VAEDecoder(config, features)
        if with_encoder:
            self.quant = nn.Linear(config.width_encoder, 2 * config.latent_channels)
        self.post_quant = nn.Linear(config.latent_channels, config.width_decoder)

    def encode(self, points: torch.Tensor, query_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior (mean, logvar) for ``points`` (B, N, 6: xyz + normal) with the query rows ``query_idx``."""
        dtype = self.post_quant.weight.dtype
        features = torch.cat([self.embedder(points[..., :3], dtype), points[..., 3:].to(dtype)], dim=-1)
        h = self.encoder(gather_rows(features, query_idx), features)
        mean, logvar = self.quant(h).chunk(2, dim=-1)
        return mean, logvar.clamp(*LOGVAR_RANGE)

    def decoder_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, T, C) through ``post_quant`` and the decoder's self-attention blocks."""
        h = self.post_quant(latents)
        for block in self.decoder.blocks[:-1]:
            h = block(h)
        return h

    def kv_cache(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything of the decoder that does not depend on the query points (the keys and values of its
        query cross-attention), computed once per part."""
        return self.decoder.blocks[-1].attn2.context_kv(self.decoder_tokens(latents))

    def query(self, cache: tuple[torch.Tensor, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        """Field values (B, Q, 1) at ``points`` (B, Q, 3): positive inside, negative outside. The points
        are embedded as given (float32 for full precision), the features cast to the module dtype."""
        h = self.decoder.proj_query(self.embedder(points, self.post_quant.weight.dtype))
        h = self.decoder.blocks[-1](h, kv=cache)
        return -self.decoder.proj_out(self.decoder.norm_out(h))

    def decode(self, latents: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.query(self.kv_cache(latents), points)
