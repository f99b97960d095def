"""The component configs of a HoloPart weight folder (``vae/config.json`` and friends), read and checked.

Every size of the model comes from these files; the defaults below are the official code's defaults and are
used only for keys a file leaves out. Keys starting with ``_`` (``_class_name``, ``_diffusers_version``) are
metadata; any other unknown key, or a value this implementation cannot honour, is a ``WeightsError``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from ...core.errors import WeightsError

COMPONENTS = ("vae", "part_encoder", "transformer", "scheduler")
CONFIG_FILES = {"vae": "config.json", "part_encoder": "config.json", "transformer": "config.json",
                "scheduler": "scheduler_config.json"}
WEIGHT_FILE = "diffusion_pytorch_model.safetensors"


def _check(condition: bool, component: str, message: str) -> None:
    if not condition:
        raise WeightsError(f"{component}/ config: {message}",
                           "these weights do not have the HoloPart architecture this engine implements")


@dataclass(frozen=True)
class _Config:
    @classmethod
    def from_dict(cls, data: dict, component: str):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if not k.startswith("_") and k not in names)
        _check(not unknown, component, f"unknown key(s) {', '.join(unknown)}")
        try:
            config = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise WeightsError(f"{component}/ config: {exc}", "the config file is damaged") from exc
        config.validate(component)
        return config

    def validate(self, component: str) -> None:
        pass

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class VAEConfig(_Config):
    in_channels: int = 3
    latent_channels: int = 64
    num_attention_heads: int = 8
    width_encoder: int = 512
    width_decoder: int = 1024
    num_layers_encoder: int = 8
    num_layers_decoder: int = 16
    embedding_type: str = "frequency"
    embed_frequency: int = 8
    embed_include_pi: bool = False

    def validate(self, component: str) -> None:
        _check(self.in_channels == 3, component, f"in_channels must be 3 (xyz), got {self.in_channels}")
        _check(self.embedding_type == "frequency", component, f"embedding_type '{self.embedding_type}' unsupported")
        for width in (self.width_encoder, self.width_decoder):
            _check(width % self.num_attention_heads == 0, component,
                   f"width {width} is not a multiple of {self.num_attention_heads} heads")


@dataclass(frozen=True)
class PartEncoderConfig(_Config):
    position_channels: int = 3
    part_feature_channels: int = 3
    whole_feature_channels: int = 4
    dim: int = 512
    num_attention_heads: int = 8
    num_layers: int = 8
    num_tokens: int = 512
    embedding_type: str = "frequency"
    embed_frequency: int = 8
    embed_include_pi: bool = False
    part_local: bool = False
    init_weights: str | None = None
    noise_level: object = None  # training-time augmentation; inference uses strength 0, so it has no effect

    def validate(self, component: str) -> None:
        _check(self.position_channels == 3, component, "position_channels must be 3 (xyz)")
        _check(self.part_feature_channels == 3, component, "part_feature_channels must be 3 (normals)")
        _check(self.whole_feature_channels == 4, component, "whole_feature_channels must be 4 (normals + mask)")
        _check(self.embedding_type == "frequency", component, f"embedding_type '{self.embedding_type}' unsupported")
        _check(self.part_local, component, "part_local must be true (the local encoder is required)")
        _check(self.dim % self.num_attention_heads == 0, component, "dim is not a multiple of the heads")


@dataclass(frozen=True)
class TransformerConfig(_Config):
    num_attention_heads: int = 16
    width: int = 2048
    in_channels: int = 64
    num_layers: int = 21
    cross_attention_dim: int = 512
    cross_attention_2_dim: int = 512
    use_cross_attention: bool = False
    use_cross_attention_2: bool = True

    def validate(self, component: str) -> None:
        _check(self.use_cross_attention and self.use_cross_attention_2, component,
               "use_cross_attention and use_cross_attention_2 must both be true (local and whole-shape conditions)")
        _check(self.width % self.num_attention_heads == 0, component, "width is not a multiple of the heads")
        _check(self.width % 2 == 0, component, "width must be even (sinusoidal time features)")


@dataclass(frozen=True)
class SchedulerConfig(_Config):
    num_train_timesteps: int = 1000
    shift: float = 1.0
    use_dynamic_shifting: bool = False

    def validate(self, component: str) -> None:
        _check(not self.use_dynamic_shifting, component, "use_dynamic_shifting is not supported")
        _check(self.shift > 0, component, f"shift must be positive, got {self.shift}")


CONFIG_CLASSES = {"vae": VAEConfig, "part_encoder": PartEncoderConfig, "transformer": TransformerConfig,
                  "scheduler": SchedulerConfig}
# The scheduler class whose update sign this implementation uses (diffusers' FlowMatchEuler has the opposite).
SCHEDULER_CLASS = "RectifiedFlowScheduler"


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise WeightsError(f"missing file {path}", "the weight folder is incomplete; download the weights again")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {path}: {exc}", "the file is damaged; download the weights again") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{path} does not hold a JSON object", "the file is damaged; download the weights again")
    return data


def read_config(folder: Path, component: str):
    """The checked config of one component of the weight folder ``folder``."""
    data = read_json(folder / component / CONFIG_FILES[component])
    if component == "scheduler":
        name = data.get("_class_name", SCHEDULER_CLASS)
        _check(name == SCHEDULER_CLASS, component,
               f"scheduler class '{name}' is not {SCHEDULER_CLASS} (its update sign would differ)")
    return CONFIG_CLASSES[component].from_dict(data, component)
