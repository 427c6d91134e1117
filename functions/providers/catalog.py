"""The model catalog: catalog.json read into typed, validated objects.

Everything that differs between models (modes, durations, sizes, limits, options, price, latency, polling
bounds) is data in catalog.json. Code asks the catalog; it never branches on a model id.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CATALOG_PATH = Path(__file__).with_name("catalog.json")


class Dialect(StrEnum):
    VIDEOS = "videos"
    KLING = "kling"
    RUNWAY = "runway"


class Mode(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FIRST_LAST = "first_last"


OptionName = Literal["negative_prompt", "cfg_scale", "camera_control", "mode", "seed"]
ImageFormat = Literal["png", "jpeg", "webp"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecondsSpec(_Frozen):
    allowed: tuple[int, ...]
    default: int
    sent: bool = Field(description="False where the provider takes no duration (Veo) and renders its own length.")

    @model_validator(mode="after")
    def _default_is_allowed(self) -> SecondsSpec:
        if self.default not in self.allowed:
            raise ValueError(f"default {self.default} is not in allowed {self.allowed}")
        return self


class VideoFormat(_Frozen):
    size: str = Field(pattern=r"^\d+x\d+$", description="The OpenAI-style WxH this format is known by.")
    provider_value: str = Field(description="What the dialect sends: Veo 16x9, Kling aspect_ratio, Runway ratio.")
    accepts: tuple[str, ...] = Field(default=(), description="Other sizes and aspect ratios that mean this format.")

    def matches(self, value: str) -> bool:
        return value in (self.size, self.provider_value, *self.accepts)

    @property
    def width(self) -> int:
        return int(self.size.split("x")[0])

    @property
    def height(self) -> int:
        return int(self.size.split("x")[1])


class ImageSpec(_Frozen):
    max_count: int
    formats: tuple[ImageFormat, ...]
    max_bytes: int
    min_side: int
    must_match_size: bool


class PerSecondPrice(_Frozen):
    kind: Literal["per_second"]
    usd: float
    note: str | None = None

    def estimate(self, seconds: int, mode: str | None) -> float:
        return round(self.usd * seconds, 4)


class PerTaskPrice(_Frozen):
    kind: Literal["per_task"]
    usd: float
    note: str | None = None

    def estimate(self, seconds: int, mode: str | None) -> float:
        return self.usd


class PerTaskTablePrice(_Frozen):
    kind: Literal["per_task_table"]
    table: dict[str, float] = Field(description='Keyed "mode:seconds", e.g. "std:5".')
    note: str | None = None

    def estimate(self, seconds: int, mode: str | None) -> float:
        return self.table[f"{mode}:{seconds}"]


Price = Annotated[PerSecondPrice | PerTaskPrice | PerTaskTablePrice, Field(discriminator="kind")]


class LatencySpec(_Frozen):
    min_seconds: int
    typical_seconds: int
    max_seconds: int


class PollingSpec(_Frozen):
    first_wait_seconds: int
    min_interval_seconds: int
    max_interval_seconds: int
    max_wait_seconds: int
    stuck_queue_seconds: int
    not_found_grace_seconds: int = Field(
        description="How long 'task_not_exist' counts as still initialising after the create."
    )


class Deprecation(_Frozen):
    since: str
    note: str


class ModelSpec(_Frozen):
    id: str
    label: str
    dialect: Dialect
    provider_model: str
    modes: tuple[Mode, ...]
    seconds: SecondsSpec
    formats: tuple[VideoFormat, ...]
    default_size: str
    prompt_max_chars: int
    negative_prompt_max_chars: int | None = None
    options: tuple[OptionName, ...]
    default_mode: Literal["std", "pro"] | None = None
    images: ImageSpec
    price: Price
    latency: LatencySpec
    polling: PollingSpec
    deprecated: Deprecation | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if not any(f.size == self.default_size for f in self.formats):
            raise ValueError(f"default_size {self.default_size} is not one of the formats")
        if "mode" in self.options and self.default_mode is None:
            raise ValueError("a model with the 'mode' option needs a default_mode")
        if isinstance(self.price, PerTaskTablePrice):
            modes = ("std", "pro") if "mode" in self.options else (self.default_mode,)
            missing = [f"{m}:{s}" for m in modes for s in self.seconds.allowed if f"{m}:{s}" not in self.price.table]
            if missing:
                raise ValueError(f"price table lacks {missing}")
        return self

    def format_for(self, value: str) -> VideoFormat | None:
        """The format a user's size or aspect ratio names, or None."""
        return next((f for f in self.formats if f.matches(value)), None)

    @property
    def default_format(self) -> VideoFormat:
        return next(f for f in self.formats if f.size == self.default_size)

    def supports(self, mode: Mode) -> bool:
        return mode in self.modes

    def estimate_cost_usd(self, seconds: int, mode: str | None = None) -> float:
        return self.price.estimate(seconds, mode or self.default_mode)


class Catalog(_Frozen):
    models: dict[str, ModelSpec]

    def get(self, model_id: str) -> ModelSpec | None:
        return self.models.get(model_id)

    def ids(self) -> list[str]:
        return list(self.models)


def parse_catalog(raw: dict[str, object]) -> Catalog:
    models = raw["models"]
    assert isinstance(models, dict)
    return Catalog(models={model_id: ModelSpec(id=model_id, **spec) for model_id, spec in models.items()})


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """The catalog, read once per process."""
    return parse_catalog(json.loads(path.read_text(encoding="utf-8")))
