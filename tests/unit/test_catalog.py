"""The model catalog: the shipped catalog.json is consistent, and parse_catalog refuses one that is not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from functions.providers.catalog import (
    CATALOG_PATH,
    Catalog,
    Dialect,
    Mode,
    ModelSpec,
    PerTaskTablePrice,
    load_catalog,
    parse_catalog,
)

SHIPPED_IDS = ["veo3-fast", "sora-2", "sora-2-pro", "kling-v1-6", "kling-v2-master", "kling-v2-5-turbo", "gen3a_turbo"]


def raw_catalog() -> dict[str, Any]:
    """A fresh, mutable copy of catalog.json as read from disk."""
    raw: dict[str, Any] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return copy.deepcopy(raw)


def shipped_specs() -> list[ModelSpec]:
    return list(load_catalog().models.values())


def spec_of(model_id: str) -> ModelSpec:
    spec = load_catalog().get(model_id)
    assert spec is not None, model_id
    return spec


EVERY_MODEL = [pytest.param(spec, id=spec.id) for spec in shipped_specs()]

# --- the shipped catalog ----------------------------------------------------------------------------------


def test_shipped_catalog_loads_with_every_model() -> None:
    catalog = load_catalog()
    assert isinstance(catalog, Catalog)
    assert catalog.ids() == SHIPPED_IDS
    assert all(catalog.models[model_id].id == model_id for model_id in SHIPPED_IDS)


def test_load_catalog_reads_once_per_process() -> None:
    assert load_catalog() is load_catalog()


def test_unknown_model_is_none() -> None:
    assert load_catalog().get("veo4") is None


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_default_duration_is_allowed(spec: ModelSpec) -> None:
    assert spec.seconds.default in spec.seconds.allowed
    assert list(spec.seconds.allowed) == sorted(set(spec.seconds.allowed))


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_default_size_is_one_of_the_formats(spec: ModelSpec) -> None:
    assert spec.default_size in [f.size for f in spec.formats]
    assert spec.default_format.size == spec.default_size


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_every_format_is_reached_by_its_own_names(spec: ModelSpec) -> None:
    # Given each format's canonical size, provider value and aliases
    for fmt in spec.formats:
        # Then each one leads back to that format (no earlier format shadows it)
        for name in (fmt.size, fmt.provider_value, *fmt.accepts):
            assert spec.format_for(name) == fmt, f"{spec.id}: {name!r}"
        assert (fmt.width, fmt.height) == tuple(int(part) for part in fmt.size.split("x"))


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_every_allowed_duration_and_mode_has_a_price(spec: ModelSpec) -> None:
    # Given every duration (and, where the model has the mode option, every mode)
    modes: tuple[str | None, ...] = ("std", "pro") if "mode" in spec.options else (None,)
    for seconds in spec.seconds.allowed:
        for mode in modes:
            # When the cost is estimated
            cost = spec.estimate_cost_usd(seconds, mode)
            # Then there is a positive price
            assert cost > 0, f"{spec.id} {mode}:{seconds}"


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_image_count_matches_the_modes(spec: ModelSpec) -> None:
    # first-and-last-frame is exactly the models that take two images
    assert (spec.images.max_count >= 2) == spec.supports(Mode.FIRST_LAST)
    assert spec.images.max_count <= 2


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_polling_and_latency_bounds_are_ordered(spec: ModelSpec) -> None:
    polling, latency = spec.polling, spec.latency
    assert 0 < polling.min_interval_seconds <= polling.max_interval_seconds
    assert polling.first_wait_seconds < polling.max_wait_seconds
    assert latency.min_seconds <= latency.typical_seconds <= latency.max_seconds <= polling.max_wait_seconds


@pytest.mark.parametrize("spec", EVERY_MODEL)
def test_a_model_with_the_mode_option_has_a_default_mode(spec: ModelSpec) -> None:
    assert ("mode" in spec.options) == (spec.default_mode is not None)


def test_gen3a_turbo_is_image_only() -> None:
    spec = spec_of("gen3a_turbo")
    assert spec.modes == (Mode.IMAGE,)
    assert not spec.supports(Mode.TEXT)
    assert spec.dialect is Dialect.RUNWAY


def test_sora_models_are_deprecated_and_the_others_are_not() -> None:
    deprecated = {spec.id for spec in shipped_specs() if spec.deprecated is not None}
    assert deprecated == {"sora-2", "sora-2-pro"}
    assert "veo3-fast" in spec_of("sora-2").deprecated.note  # type: ignore[union-attr]


def test_veo_takes_no_duration_on_the_wire() -> None:
    assert spec_of("veo3-fast").seconds.sent is False
    assert all(spec.seconds.sent for spec in shipped_specs() if spec.id != "veo3-fast")


# --- cost estimates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "seconds", "mode", "usd"),
    [
        pytest.param("veo3-fast", 8, None, 0.40, id="veo3-fast-8s-per-second"),
        pytest.param("sora-2", 12, None, 0.96, id="sora-2-12s-per-second"),
        pytest.param("gen3a_turbo", 5, None, 0.32, id="gen3a_turbo-5s-per-task"),
        pytest.param("gen3a_turbo", 10, None, 0.32, id="gen3a_turbo-10s-same-task-price"),
        pytest.param("kling-v1-6", 10, "pro", 0.92, id="kling-v1-6-pro-10s-table"),
        pytest.param("kling-v1-6", 5, "std", 0.13, id="kling-v1-6-std-5s-table"),
        pytest.param("kling-v1-6", 5, None, 0.13, id="kling-v1-6-default-mode-is-std"),
        pytest.param("kling-v2-master", 10, "std", 2.64, id="kling-v2-master-std-10s"),
    ],
)
def test_cost_estimate(model_id: str, seconds: int, mode: str | None, usd: float) -> None:
    assert spec_of(model_id).estimate_cost_usd(seconds, mode) == pytest.approx(usd)


def test_kling_table_matches_the_catalog_file() -> None:
    price = spec_of("kling-v1-6").price
    assert isinstance(price, PerTaskTablePrice)
    assert price.table == raw_catalog()["models"]["kling-v1-6"]["price"]["table"]


# --- parse_catalog refuses an inconsistent entry ---------------------------------------------------------


def with_change(model_id: str, path: list[str | int], value: Any) -> dict[str, Any]:
    """The shipped catalog with one value of one model replaced (value None deletes the key)."""
    raw = raw_catalog()
    target = raw["models"][model_id]
    for key in path[:-1]:
        target = target[key]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


def test_parse_catalog_accepts_the_shipped_file() -> None:
    assert parse_catalog(raw_catalog()) == load_catalog()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            with_change("kling-v1-6", ["seconds", "default"], 7),
            r"default 7 is not in allowed \(5, 10\)",
            id="default-seconds-not-allowed",
        ),
        pytest.param(
            with_change("veo3-fast", ["default_size"], "1920x1080"),
            "default_size 1920x1080 is not one of the formats",
            id="default-size-not-a-format",
        ),
        pytest.param(
            with_change("veo3-fast", ["default_size"], None),
            r"default_size\n  Field required",
            id="default-size-missing",
        ),
        pytest.param(
            with_change("kling-v1-6", ["price", "table", "pro:10"], None),
            r"price table lacks \['pro:10'\]",
            id="price-cell-missing",
        ),
        pytest.param(
            with_change("kling-v2-master", ["default_mode"], None),
            "a model with the 'mode' option needs a default_mode",
            id="mode-option-without-default-mode",
        ),
        pytest.param(
            with_change("veo3-fast", ["formats", 0, "size"], "wide"),
            "String should match pattern",
            id="format-size-not-wxh",
        ),
        pytest.param(
            with_change("veo3-fast", ["options"], ["seed", "motion_bucket"]),
            "options.1",
            id="unknown-option",
        ),
        pytest.param(
            with_change("veo3-fast", ["modes"], ["text", "video"]),
            "modes.1",
            id="unknown-mode",
        ),
        pytest.param(
            with_change("gen3a_turbo", ["price"], {"kind": "per_minute", "usd": 1.0}),
            "price",
            id="unknown-price-kind",
        ),
        pytest.param(
            with_change("gen3a_turbo", ["max_seconds"], 10),
            r"max_seconds\n  Extra inputs are not permitted",
            id="unknown-field",
        ),
    ],
)
def test_parse_catalog_refuses_an_inconsistent_entry(raw: dict[str, Any], message: str) -> None:
    # Given the shipped catalog with one entry made inconsistent
    # When it is parsed
    # Then validation fails and says what is wrong
    with pytest.raises(ValidationError, match=message):
        parse_catalog(raw)
