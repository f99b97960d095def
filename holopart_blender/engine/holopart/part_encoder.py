"""The two conditioning encoders of a part: whole-shape context (``encoder_context``) and local (``encoder_local``).

- context: queries are points of the part in object coordinates (xyz + normal, 54 features after the
  embedding), the cloud is the whole shape with the part mask (xyz + normal + mask, 55 features);
- local: queries and cloud are the part's points in its local frame (one shared ``proj_in``).
Both give ``num_tokens`` tokens of width ``dim``: the transformer's cross-attention contexts.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import PartEncoderConfig
from .layers import FourierEmbedding, PointSetEncoder, gather_rows


class PartEncoder(nn.Module):
    def __init__(self, config: PartEncoderConfig):
        super().__init__()
        self.config = config
        self.embedder = FourierEmbedding(config.embed_frequency, config.embed_include_pi, config.position_channels)
        features = self.embedder.out_channels
        part_in = features + config.part_feature_channels
        whole_in = features + config.whole_feature_channels
        self.encoder_local = PointSetEncoder(part_in, config.dim, config.num_attention_heads, config.num_layers)
        self.encoder_context = PointSetEncoder(part_in, config.dim, config.num_attention_heads, config.num_layers,
                                               kv_channels=whole_in)

    def _features(self, points: torch.Tensor) -> torch.Tensor:
        """Embedded xyz (from the coordinates as given) and the other channels, in the module dtype."""
        dtype = self.encoder_local.proj_in.weight.dtype
        return torch.cat([self.embedder(points[..., :3], dtype), points[..., 3:].to(dtype)], dim=-1)

    def forward(self, part: torch.Tensor, part_local: torch.Tensor, whole: torch.Tensor,
                context_idx: torch.Tensor, local_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context tokens, local tokens) for a batch of parts.

        part (B, N, 6) object-frame xyz + normal; part_local (B, N, 6) the same in the part's local frame;
        whole (B, M, 7) whole-shape xyz + normal + mask; context_idx / local_idx (B, T) query rows.
        Give float32 inputs: they are cast to the module dtype after the Fourier embedding.
        """
        part_f, local_f = self._features(part), self._features(part_local)
        context = self.encoder_context(gather_rows(part_f, context_idx), self._features(whole))
        local = self.encoder_local(gather_rows(local_f, local_idx), local_f)
        return context, local
