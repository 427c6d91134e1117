"""VideoRequest validation: every way a request can be wrong names the field and says what is allowed; an
accepted request comes back with the catalog's defaults filled in.

DNS is a dict-backed fake (``fake_resolver``); the unit conftest blocks the real network.
"""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

import pytest

from functions.common.errors import InvalidRequestError
from functions.common.video_request import (
    CameraControl,
    ImageInput,
    VideoRequest,
    parse_video_request,
)
from functions.providers.catalog import Mode, ModelSpec, load_catalog
from tests.fixtures.images import (
    gif_bytes,
    jpeg_bytes,
    noisy_png_bytes,
    padded_to,
    png_bytes,
    webp_bytes,
)

# --- Given: a fake DNS -----------------------------------------------------------------------------------

PUBLIC_IMAGE_URL = "https://images.example.com/fox.png"
PUBLIC_CALLBACK_URL = "https://hooks.example.com/videogen"

FAKE_DNS: dict[str, list[str]] = {
    "images.example.com": ["93.184.216.34"],
    "hooks.example.com": ["93.184.216.35", "2606:2800:220:1:248:1893:25c8:1946"],
    "loopback.test": ["127.0.0.1"],
    "ten.test": ["10.20.30.40"],
    "imds.test": ["169.254.169.254"],
    "imds-v6.test": ["fd00:ec2::254"],
    "loopback-v6.test": ["::1"],
    "multicast.test": ["224.0.0.251"],
    "split.test": ["93.184.216.34", "10.0.0.7"],
}


def fake_resolver(hostname: str) -> list[str]:
    """hostname -> addresses from FAKE_DNS; an unknown name fails the way getaddrinfo does."""
    try:
        return list(FAKE_DNS[hostname])
    except KeyError:
        raise socket.gaierror(socket.EAI_NONAME, f"fake DNS has no record for {hostname}") from None


CATALOG = load_catalog()


def spec_of(model_id: str) -> ModelSpec:
    spec = CATALOG.get(model_id)
    assert spec is not None, model_id
    return spec


# --- Given: request builders ------------------------------------------------------------------------------

PROMPT = "a red fox trots through fresh snow at dawn"
KLING_PNG = png_bytes(512, 512)  # big enough for Kling's 300x300 minimum
SMALL_PNG = png_bytes(64, 64)


def text_request(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, **fields}


def image_request(model: str, image: Any = KLING_PNG, **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "image": image, **fields}


def frames_request(model: str, count: int, **fields: Any) -> dict[str, Any]:
    return {"model": model, "prompt": PROMPT, "images": [KLING_PNG] * count, **fields}


def with_callback(url: str) -> dict[str, Any]:
    return text_request("veo3-fast", callback_url=url)


def with_image_url(url: str) -> dict[str, Any]:
    return image_request("veo3-fast", image=url)


def parse(data: Any) -> VideoRequest:
    return parse_video_request(data, resolve=fake_resolver)


def rejection_of(data: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        parse(data)
    return caught.value


# --- bad input: one table, every case names the field and the reason --------------------------------------

OVERSIZE_FOR_RUNWAY = padded_to(png_bytes(64, 64), 5 * 1024 * 1024 + 1)
NOT_SIMPLE_WITH_CONFIG = {"type": "down_back", "config": {"zoom": 5}}
TWO_AXES = {"type": "simple", "config": {"pan": 3, "zoom": 5}}
SSRF_CASES = [
    ("http", "http://images.example.com/fox.png", "must be an https:// URL (got scheme 'http')"),
    ("credentials", "https://user:secret@images.example.com/fox.png", "must not carry credentials"),
    ("loopback", "https://loopback.test/x", "host 'loopback.test' resolves to a non-public address (127.0.0.1)"),
    ("ten-net", "https://ten.test/x", "host 'ten.test' resolves to a non-public address (10.20.30.40)"),
    (
        "imds",
        "https://imds.test/latest/meta-data",
        "host 'imds.test' resolves to a non-public address (169.254.169.254)",
    ),
    ("imds-v6", "https://imds-v6.test/x", "host 'imds-v6.test' resolves to a non-public address (fd00:ec2::254)"),
    ("loopback-v6", "https://loopback-v6.test/x", "host 'loopback-v6.test' resolves to a non-public address (::1)"),
    ("multicast", "https://multicast.test/x", "host 'multicast.test' resolves to a non-public address (224.0.0.251)"),
    ("public-and-private", "https://split.test/x", "host 'split.test' resolves to a non-public address (10.0.0.7)"),
    ("unresolvable", "https://nowhere.test/x", "host 'nowhere.test' does not resolve"),
]

BAD_REQUESTS = [
    # model and fields
    pytest.param(
        text_request("gpt-video"),
        "model",
        "model: unknown model 'gpt-video'; allowed: veo3-fast, sora-2, sora-2-pro, kling-v1-6",
        id="model-unknown",
    ),
    pytest.param(
        text_request("veo3-fast", durration=8),
        "durration",
        "durration: unknown field; allowed fields: model, prompt, images, seconds",
        id="field-unknown",
    ),
    pytest.param({"model": "veo3-fast"}, "prompt", "prompt: is required", id="prompt-missing"),
    pytest.param({"model": "veo3-fast", "prompt": "  \n\t "}, "prompt", "prompt: must not be blank", id="prompt-blank"),
    pytest.param(
        {"model": "kling-v1-6", "prompt": "x" * 501},
        "prompt",
        "prompt: 501 characters is too long for kling-v1-6; allowed: at most 500",
        id="prompt-too-long-kling",
    ),
    pytest.param(
        {"model": "gen3a_turbo", "prompt": "x" * 513, "image": SMALL_PNG},
        "prompt",
        "prompt: 513 characters is too long for gen3a_turbo; allowed: at most 512",
        id="prompt-too-long-runway",
    ),
    # duration and format
    pytest.param(
        text_request("kling-v1-6", seconds=7),
        "seconds",
        "seconds: 7 is not allowed for kling-v1-6; allowed: 5, 10",
        id="seconds-kling-7",
    ),
    pytest.param(
        text_request("sora-2", seconds=10),
        "seconds",
        "seconds: 10 is not allowed for sora-2; allowed: 4, 8, 12",
        id="seconds-sora-10",
    ),
    pytest.param(
        text_request("veo3-fast", seconds=5),
        "seconds",
        "seconds: 5 is not allowed for veo3-fast; allowed: 8",
        id="seconds-veo-5",
    ),
    pytest.param(
        text_request("veo3-fast", size="640x480"),
        "size",
        "size: 640x480 is not allowed for veo3-fast; allowed: 1280x720, 720x1280",
        id="size-veo-640x480",
    ),
    pytest.param(
        text_request("sora-2", size="1792x1024"),
        "size",
        "size: 1792x1024 is not allowed for sora-2; allowed: 1280x720, 720x1280",
        id="size-sora2-pro-only",
    ),
    pytest.param(
        text_request("kling-v1-6", aspect_ratio="4:3"),
        "aspect_ratio",
        "aspect_ratio: 4:3 is not allowed for kling-v1-6; allowed: 16:9, 1:1, 9:16",
        id="aspect-ratio-kling-4-3",
    ),
    pytest.param(
        text_request("veo3-fast", size="1280x720", aspect_ratio="9:16"),
        "aspect_ratio",
        "aspect_ratio: 9:16 contradicts size 1280x720; give one of them",
        id="size-and-aspect-ratio-contradict",
    ),
    # input mode and image count
    pytest.param(
        text_request("gen3a_turbo"),
        "images",
        "images: gen3a_turbo generates from an image only: give an image; allowed: image-to-video (one image)",
        id="runway-text-mode",
    ),
    pytest.param(
        frames_request("kling-v2-master", 2),
        "images",
        "images: kling-v2-master does not do first-and-last-frame video (two images); "
        "allowed: text-to-video (no image); image-to-video (one image)",
        id="first-last-to-kling-v2-master",
    ),
    pytest.param(
        frames_request("sora-2", 2),
        "images",
        "images: sora-2 does not do first-and-last-frame video (two images)",
        id="first-last-to-sora",
    ),
    pytest.param(
        frames_request("veo3-fast", 3),
        "images",
        "images: at most 2 images (first and last frame) (got 3)",
        id="three-images",
    ),
    pytest.param(
        {**text_request("veo3-fast"), "image": PUBLIC_IMAGE_URL, "images": [PUBLIC_IMAGE_URL]},
        "image",
        "image: give either image or images, not both",
        id="image-and-images",
    ),
    # options
    pytest.param(
        text_request("kling-v1-6", cfg_scale=1.5),
        "cfg_scale",
        "cfg_scale: Input should be less than or equal to 1 (got 1.5)",
        id="cfg-scale-above-1",
    ),
    pytest.param(
        text_request("kling-v1-6", cfg_scale=-0.1),
        "cfg_scale",
        "cfg_scale: Input should be greater than or equal to 0 (got -0.1)",
        id="cfg-scale-below-0",
    ),
    pytest.param(
        text_request("kling-v2-master", cfg_scale=0.5),
        "cfg_scale",
        "cfg_scale: not supported by kling-v2-master; options it supports: negative_prompt, camera_control, mode",
        id="cfg-scale-on-kling-v2-master",
    ),
    pytest.param(
        text_request("veo3-fast", cfg_scale=0.5),
        "cfg_scale",
        "cfg_scale: not supported by veo3-fast; options it supports: none",
        id="cfg-scale-on-veo",
    ),
    pytest.param(
        text_request("veo3-fast", negative_prompt="blurry"),
        "negative_prompt",
        "negative_prompt: not supported by veo3-fast; options it supports: none",
        id="negative-prompt-on-veo",
    ),
    pytest.param(
        text_request("kling-v1-6", negative_prompt="n" * 201),
        "negative_prompt",
        "negative_prompt: 201 characters is too long for kling-v1-6; allowed: at most 200",
        id="negative-prompt-too-long-kling",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control=NOT_SIMPLE_WITH_CONFIG),
        "camera_control",
        "camera_control: config is only allowed with type 'simple' (type is 'down_back')",
        id="camera-config-with-preset-type",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control={"type": "simple"}),
        "camera_control",
        "camera_control: type 'simple' needs a config with exactly one non-zero axis",
        id="camera-simple-without-config",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control=TWO_AXES),
        "camera_control",
        "config must set exactly one of horizontal, vertical, pan, tilt, roll, zoom to a non-zero value in "
        "-10..10 (non-zero now: pan, zoom)",
        id="camera-two-axes",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control={"type": "simple", "config": {"zoom": 11}}),
        "camera_control.config.zoom",
        "camera_control.config.zoom: Input should be less than or equal to 10 (got 11)",
        id="camera-axis-above-10",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control={"type": "simple", "config": {"tilt": -10.5}}),
        "camera_control.config.tilt",
        "Input should be greater than or equal to -10 (got -10.5)",
        id="camera-axis-below-minus-10",
    ),
    pytest.param(
        text_request("kling-v1-6", camera_control={"type": "orbit"}),
        "camera_control.type",
        "Input should be 'simple', 'down_back', 'forward_up', 'right_turn_forward' or 'left_turn_forward' "
        "(got 'orbit')",
        id="camera-type-unknown",
    ),
    pytest.param(
        text_request("veo3-fast", camera_control={"type": "down_back"}),
        "camera_control",
        "camera_control: not supported by veo3-fast",
        id="camera-on-veo",
    ),
    pytest.param(
        text_request("kling-v1-6", mode="turbo"),
        "mode",
        "mode: Input should be 'std' or 'pro' (got 'turbo')",
        id="mode-not-std-or-pro",
    ),
    pytest.param(
        text_request("veo3-fast", mode="pro"),
        "mode",
        "mode: not supported by veo3-fast; options it supports: none",
        id="mode-on-veo",
    ),
    pytest.param(
        text_request("veo3-fast", seed=-1),
        "seed",
        "seed: Input should be greater than or equal to 0 (got -1)",
        id="seed-negative",
    ),
    pytest.param(
        text_request("veo3-fast", seed=2**32),
        "seed",
        "seed: Input should be less than or equal to 4294967295 (got 4294967296)",
        id="seed-too-large",
    ),
    pytest.param(
        text_request("kling-v1-6", seed=42),
        "seed",
        "seed: not supported by kling-v1-6; options it supports: negative_prompt, cfg_scale, camera_control, mode",
        id="seed-on-kling",
    ),
    pytest.param(
        text_request("sora-2", seed=42),
        "seed",
        "seed: not supported by sora-2; options it supports: none",
        id="seed-on-sora",
    ),
    # callback_url and image URL: no SSRF
    *[
        pytest.param(with_callback(url), "callback_url", f"callback_url: {reason}", id=f"callback-{name}")
        for name, url, reason in SSRF_CASES
    ],
    *[
        pytest.param(with_image_url(url), "images[0].url", f"images[0].url: {reason}", id=f"image-url-{name}")
        for name, url, reason in SSRF_CASES
    ],
    pytest.param(
        with_callback("https://loopback.test/x"),
        "callback_url",
        "only public internet addresses are allowed",
        id="callback-says-what-is-allowed",
    ),
    # image bytes
    pytest.param(
        image_request("veo3-fast", image=gif_bytes(64, 64)),
        "images[0]",
        "images[0]: is not a PNG, JPEG or WebP image (checked by its first bytes)",
        id="image-gif",
    ),
    pytest.param(
        image_request("veo3-fast", image=bytes(range(256)) * 4),
        "images[0]",
        "images[0]: is not a PNG, JPEG or WebP image",
        id="image-random-bytes",
    ),
    pytest.param(
        image_request("veo3-fast", image=png_bytes(400, 300)[:40]),
        "images[0]",
        "images[0]: looks like PNG but is damaged or truncated",
        id="image-truncated-png-header",
    ),
    pytest.param(
        image_request("kling-v1-6", image=webp_bytes(512, 512)),
        "images[0]",
        "images[0]: WEBP is not accepted by kling-v1-6; allowed: PNG, JPEG",
        id="image-webp-to-kling",
    ),
    pytest.param(
        image_request("gen3a_turbo", image=OVERSIZE_FOR_RUNWAY),
        "images[0]",
        "images[0]: 5242881 bytes is too large for gen3a_turbo; allowed: at most 5242880 bytes",
        id="image-over-runway-5mb",
    ),
    pytest.param(
        image_request("kling-v1-6", image=png_bytes(299, 600)),
        "images[0]",
        "images[0]: 299x600 is too small for kling-v1-6; allowed: at least 300x300",
        id="image-under-300-for-kling",
    ),
    pytest.param(
        {"model": "kling-v1-6", "prompt": PROMPT, "images": [KLING_PNG, png_bytes(512, 200)]},
        "images[1]",
        "images[1]: 512x200 is too small for kling-v1-6",
        id="last-frame-under-300-for-kling",
    ),
    pytest.param(
        image_request("sora-2", image=png_bytes(640, 360)),
        "images[0]",
        "images[0]: 640x360 does not match size 1280x720; sora-2 needs the reference image to have the "
        "video's exact size",
        id="sora-reference-size-mismatch",
    ),
    pytest.param(
        image_request("veo3-fast", image="not base64 at all!"),
        "images[0]",
        "images[0]: is neither an https URL, a data URI nor valid base64",
        id="image-invalid-base64",
    ),
    pytest.param(
        image_request("veo3-fast", image="data:image/png,rawpixels"),
        "images[0]",
        "images[0]: is a data URI but not a base64 one (expected data:image/...;base64,...)",
        id="image-data-uri-not-base64",
    ),
    pytest.param(
        image_request("veo3-fast", image={"url": PUBLIC_IMAGE_URL, "data": base64.b64encode(SMALL_PNG).decode()}),
        "images[0]",
        "give exactly one of url (https) or data",
        id="image-url-and-data",
    ),
    # metadata
    pytest.param(
        text_request("veo3-fast", metadata={f"k{i}": "v" for i in range(17)}),
        "metadata",
        "metadata: at most 16 keys (got 17)",
        id="metadata-too-many-keys",
    ),
    pytest.param(
        text_request("veo3-fast", metadata={"note": "v" * 513}),
        "metadata",
        "metadata: value of 'note' is longer than 512 characters",
        id="metadata-value-too-long",
    ),
    pytest.param(
        text_request("veo3-fast", metadata={"k" * 65: "v"}),
        "metadata",
        "must be 1 to 64 characters",
        id="metadata-key-too-long",
    ),
    pytest.param(
        text_request("veo3-fast", metadata={"attempt": 3}),
        "metadata.attempt",
        "metadata.attempt: Input should be a valid string (got 3)",
        id="metadata-value-not-string",
    ),
    # fallback models
    pytest.param(
        text_request("veo3-fast", fallback_models=["veo4"]),
        "fallback_models[0]",
        "fallback_models[0]: unknown model 'veo4'; allowed: veo3-fast, sora-2",
        id="fallback-unknown",
    ),
    pytest.param(
        text_request("veo3-fast", fallback_models=["kling-v1-6", "kling-v1-6"]),
        "fallback_models[1]",
        "fallback_models[1]: kling-v1-6 is listed twice (or is the main model)",
        id="fallback-duplicated",
    ),
    pytest.param(
        text_request("veo3-fast", fallback_models=["veo3-fast"]),
        "fallback_models[0]",
        "fallback_models[0]: veo3-fast is listed twice (or is the main model)",
        id="fallback-is-main-model",
    ),
    pytest.param(
        text_request("veo3-fast", fallback_models=["sora-2", "sora-2-pro", "kling-v1-6", "kling-v2-master"]),
        "fallback_models",
        "fallback_models: at most 3 (got 4)",
        id="fallback-more-than-3",
    ),
    pytest.param(
        text_request("veo3-fast", fallback_models=["kling-v1-6", "gen3a_turbo"]),
        "fallback_models[1]",
        "fallback_models[1]: gen3a_turbo generates from an image only: give an image",
        id="fallback-cannot-do-text",
    ),
    pytest.param(
        frames_request("veo3-fast", 2, fallback_models=["kling-v2-master"]),
        "fallback_models[0]",
        "fallback_models[0]: kling-v2-master does not do first-and-last-frame video (two images)",
        id="fallback-cannot-do-first-last",
    ),
    # polling bounds
    pytest.param(
        text_request("veo3-fast", poll_interval_seconds=0),
        "poll_interval_seconds",
        "poll_interval_seconds: Input should be greater than or equal to 1 (got 0)",
        id="poll-interval-zero",
    ),
    pytest.param(
        text_request("veo3-fast", max_wait_seconds=10),
        "max_wait_seconds",
        "max_wait_seconds: Input should be greater than or equal to 30 (got 10)",
        id="max-wait-too-small",
    ),
]


@pytest.mark.parametrize(("data", "param", "fragment"), BAD_REQUESTS)
def test_bad_request_names_the_field_and_the_reason(data: dict[str, Any], param: str, fragment: str) -> None:
    # Given a request that is wrong in exactly one way (data)
    # When it is parsed
    error = rejection_of(data)
    # Then the error names the field at fault and says why / what is allowed
    assert error.param == param
    assert fragment in error.message
    assert error.to_dict() == {"code": "invalid_request", "message": error.message, "param": param}


def test_bad_request_table_is_large_and_its_ids_are_unique() -> None:
    ids = [case.id for case in BAD_REQUESTS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def test_invalid_json_body_is_a_request_error_without_a_field() -> None:
    # Given a body that is not JSON
    # When it is parsed
    error = rejection_of('{"model": "veo3-fast", "prompt": ')
    # Then no field is blamed and the message says it is not JSON
    assert error.param is None
    assert error.message.startswith("the body is not valid JSON")


def test_a_request_error_lists_every_pydantic_error_in_details() -> None:
    # Given a request with two field errors
    data = text_request("veo3-fast", seed=-1, poll_interval_seconds=0)
    # When it is parsed
    error = rejection_of(data)
    # Then the first is the message and all are in details
    assert error.param == "seed"
    assert [e["loc"] for e in error.details["errors"]] == [["seed"], ["poll_interval_seconds"]]


# --- bugs found while writing these tests (these tests fail until the code is fixed) -----------------------


@pytest.mark.parametrize(
    ("data", "param", "allowed_names"),
    [
        pytest.param(
            text_request("kling-v1-6", camera_control={"type": "simple", "config": {"zoom": 5, "speed": 1}}),
            "camera_control.config.speed",
            ["horizontal", "vertical", "pan", "tilt", "roll", "zoom"],
            id="camera-config",
        ),
        pytest.param(
            image_request("veo3-fast", image={"url": PUBLIC_IMAGE_URL, "mime": "image/png"}),
            "images[0].mime",
            ["url", "data", "media_type", "filename"],
            id="image",
        ),
    ],
)
def test_unknown_nested_field_lists_the_nested_models_fields(
    data: dict[str, Any], param: str, allowed_names: list[str]
) -> None:
    # Given an unknown field inside a nested object
    # When the request is parsed
    error = rejection_of(data)
    # Then the field is named and the message lists the fields that object allows (not the top-level ones)
    assert error.param == param
    listed = error.message.partition("allowed fields: ")[2].split(", ")
    assert set(allowed_names) <= set(listed)
    assert "fallback_models" not in listed


def test_malformed_callback_url_is_blamed_on_callback_url() -> None:
    # Given a callback URL that urllib cannot even split (unclosed IPv6 bracket)
    data = with_callback("https://[::1/hook")
    # When the request is parsed
    error = rejection_of(data)
    # Then the error names callback_url, as for every other bad URL
    assert error.param == "callback_url"
    assert error.message.startswith("callback_url: ")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param(
            {"model": "veo3-fast", "prompt": "x" * 600, "fallback_models": ["kling-v1-6"]},
            "at most 500",
            id="prompt-too-long-for-fallback",
        ),
        pytest.param(
            image_request("veo3-fast", image=webp_bytes(512, 512), fallback_models=["kling-v1-6"]),
            "PNG, JPEG",
            id="webp-to-kling-fallback",
        ),
    ],
)
def test_fallback_that_cannot_take_the_request_is_refused_up_front(data: dict[str, Any], fragment: str) -> None:
    # Given a request valid for its main model but not for its fallback (prompt length / image format)
    # When the request is parsed
    error = rejection_of(data)
    # Then the fallback is refused before anything is spent, not when it is finally tried
    assert error.param == "fallback_models[0]"
    assert fragment in error.message


# --- accepted requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "seconds", "size", "mode"),
    [
        pytest.param(text_request("veo3-fast"), 8, "1280x720", None, id="veo3-fast"),
        pytest.param(text_request("sora-2"), 4, "1280x720", None, id="sora-2"),
        pytest.param(text_request("kling-v1-6"), 5, "1280x720", "std", id="kling-v1-6"),
        pytest.param(text_request("kling-v2-5-turbo"), 5, "1280x720", "std", id="kling-v2-5-turbo"),
        pytest.param(image_request("gen3a_turbo"), 5, "1280x768", None, id="gen3a_turbo"),
    ],
)
def test_omitted_fields_are_filled_from_the_catalog(
    data: dict[str, Any], seconds: int, size: str, mode: str | None
) -> None:
    # Given a request with only model, prompt (and the image a model needs)
    # When it is parsed
    request = parse(data)
    # Then seconds, size (canonical WxH) and Kling's mode come from the catalog
    assert (request.seconds, request.size, request.mode) == (seconds, size, mode)
    assert request.fallback_models == []
    assert request.metadata is None


def test_kling_mode_given_is_kept() -> None:
    request = parse(text_request("kling-v1-6", mode="pro", seconds=10))
    assert (request.mode, request.seconds) == ("pro", 10)


@pytest.mark.parametrize(
    ("model", "fields", "canonical"),
    [
        pytest.param("veo3-fast", {"size": "16:9"}, "1280x720", id="veo-size-16:9"),
        pytest.param("veo3-fast", {"aspect_ratio": "9:16"}, "720x1280", id="veo-aspect-9:16"),
        pytest.param("veo3-fast", {"size": "16x9"}, "1280x720", id="veo-native-16x9"),
        pytest.param("veo3-fast", {"size": "9x16"}, "720x1280", id="veo-native-9x16"),
        pytest.param("veo3-fast", {"size": "1920x1080"}, "1280x720", id="veo-1080p-means-16:9"),
        pytest.param("veo3-fast", {"size": "1280x720", "aspect_ratio": "16:9"}, "1280x720", id="veo-agreeing"),
        pytest.param("sora-2", {"aspect_ratio": "9:16"}, "720x1280", id="sora-aspect-9:16"),
        pytest.param("sora-2-pro", {"size": "1024x1792"}, "1024x1792", id="sora-pro-tall"),
        pytest.param("kling-v1-6", {"aspect_ratio": "1:1"}, "720x720", id="kling-aspect-1:1"),
        pytest.param("kling-v1-6", {"size": "1024x1024"}, "720x720", id="kling-1024-square"),
        pytest.param("gen3a_turbo", {"size": "1280:768"}, "1280x768", id="runway-native-1280:768"),
        pytest.param("gen3a_turbo", {"size": "768:1280"}, "768x1280", id="runway-native-768:1280"),
        pytest.param("gen3a_turbo", {"aspect_ratio": "16:9"}, "1280x768", id="runway-aspect-16:9"),
        pytest.param("gen3a_turbo", {"size": "720x1280"}, "768x1280", id="runway-720x1280"),
    ],
)
def test_size_and_aspect_ratio_map_to_the_canonical_size(model: str, fields: dict[str, str], canonical: str) -> None:
    # Given a size or aspect ratio in any of the spellings the model's formats accept
    data = image_request(model, image=SMALL_PNG, **fields) if model == "gen3a_turbo" else text_request(model, **fields)
    # When it is parsed
    request = parse(data)
    # Then size is the format's canonical WxH
    assert request.size == canonical
    assert spec_of(model).format_for(request.size) is not None


def test_prompt_is_stripped() -> None:
    request = parse({"model": "veo3-fast", "prompt": "  \n a fox \t "})
    assert request.prompt == "a fox"


def test_prompt_limit_counts_the_stripped_prompt() -> None:
    # Given a 500-character Kling prompt padded with whitespace
    request = parse({"model": "kling-v1-6", "prompt": "  " + "x" * 500 + "  "})
    # Then it fits: the limit applies after stripping
    assert len(request.prompt) == 500


def test_blank_negative_prompt_becomes_none_on_kling() -> None:
    request = parse(text_request("kling-v1-6", negative_prompt="   "))
    assert request.negative_prompt is None


def test_kling_options_are_kept() -> None:
    # Given every Kling option at a valid value
    camera = {"type": "simple", "config": {"zoom": -10}}
    data = text_request("kling-v1-6", negative_prompt=" blur ", cfg_scale=0, camera_control=camera, mode="pro")
    # When it is parsed
    request = parse(data)
    # Then they are all there, negative_prompt stripped
    assert request.negative_prompt == "blur"
    assert request.cfg_scale == 0
    assert request.camera_control == CameraControl.model_validate(camera)
    assert request.mode == "pro"


def test_preset_camera_movement_needs_no_config() -> None:
    request = parse(text_request("kling-v1-6", camera_control={"type": "forward_up"}))
    assert request.camera_control is not None
    assert (request.camera_control.type, request.camera_control.config) == ("forward_up", None)


def test_seed_bounds_are_inclusive() -> None:
    assert parse(image_request("gen3a_turbo", image=PUBLIC_IMAGE_URL, seed=0)).seed == 0
    assert parse(image_request("gen3a_turbo", image=PUBLIC_IMAGE_URL, seed=4_294_967_295)).seed == 4_294_967_295


def test_seed_on_a_model_that_takes_none_is_refused_not_dropped() -> None:
    # Given veo3-fast, whose CometAPI endpoint documents no seed / Then a seed is refused, never silently ignored
    with pytest.raises(InvalidRequestError, match="seed: not supported by veo3-fast"):
        parse(text_request("veo3-fast", seed=7))


def test_public_callback_url_is_kept_unchanged() -> None:
    request = parse(text_request("veo3-fast", callback_url=PUBLIC_CALLBACK_URL, metadata={"order": "A-17"}))
    assert request.callback_url == PUBLIC_CALLBACK_URL
    assert request.metadata == {"order": "A-17"}


@pytest.mark.parametrize(
    "fallbacks",
    [
        pytest.param(["kling-v1-6"], id="one"),
        pytest.param(["sora-2", "kling-v1-6", "kling-v2-5-turbo"], id="three"),
    ],
)
def test_fallbacks_that_can_do_the_mode_are_accepted(fallbacks: list[str]) -> None:
    request = parse(text_request("veo3-fast", fallback_models=fallbacks))
    assert request.fallback_models == fallbacks


# --- images: shorthands and formats -----------------------------------------------------------------------


def test_image_shorthand_https_url() -> None:
    # Given image as a bare https URL
    request = parse(image_request("veo3-fast", image=PUBLIC_IMAGE_URL))
    # Then it is one image with that URL and no bytes
    assert request.images == [ImageInput(url=PUBLIC_IMAGE_URL)]
    assert request.input_mode is Mode.IMAGE


@pytest.mark.parametrize(
    "shorthand",
    [
        pytest.param("data:image/png;base64," + base64.b64encode(KLING_PNG).decode(), id="data-uri"),
        pytest.param(base64.b64encode(KLING_PNG).decode(), id="plain-base64"),
        pytest.param(KLING_PNG, id="raw-bytes"),
        pytest.param({"data": base64.b64encode(KLING_PNG).decode()}, id="object-with-base64-data"),
        pytest.param({"data": KLING_PNG, "filename": "fox.png"}, id="object-with-bytes"),
    ],
)
def test_image_shorthand_carrying_bytes(shorthand: Any) -> None:
    # Given the image bytes in any accepted shorthand
    # When the request is parsed
    request = parse(image_request("kling-v1-6", image=shorthand))
    # Then the image holds exactly those bytes, typed by their magic bytes
    [image] = request.images
    assert image.url is None
    assert image.data == KLING_PNG
    assert image.media_type == "image/png"


@pytest.mark.parametrize(
    ("data", "declared", "detected"),
    [
        pytest.param(jpeg_bytes(320, 320), "image/png", "image/jpeg", id="jpeg-declared-png"),
        pytest.param(webp_bytes(64, 64), None, "image/webp", id="webp-undeclared"),
        pytest.param(png_bytes(64, 64), "image/gif", "image/png", id="png-declared-gif"),
    ],
)
def test_media_type_comes_from_the_magic_bytes(data: bytes, declared: str | None, detected: str) -> None:
    # Given image bytes whose declared type (if any) may be wrong
    image = {"data": data} if declared is None else {"data": data, "media_type": declared}
    # When the request is parsed
    request = parse(image_request("veo3-fast", image=image))
    # Then media_type is what the bytes really are
    assert request.images[0].media_type == detected


def test_data_uri_media_type_is_replaced_by_the_detected_one() -> None:
    uri = "data:image/png;base64," + base64.b64encode(jpeg_bytes(320, 320)).decode()
    request = parse(image_request("kling-v1-6", image=uri))
    assert request.images[0].media_type == "image/jpeg"


def test_first_and_last_frames_on_kling_v1_6() -> None:
    request = parse(frames_request("kling-v1-6", 2))
    assert request.input_mode is Mode.FIRST_LAST
    assert [image.media_type for image in request.images] == ["image/png", "image/png"]


def test_runway_accepts_an_image_exactly_at_its_byte_limit() -> None:
    # Given a PNG padded to exactly Runway's 5 MiB
    request = parse(image_request("gen3a_turbo", image=padded_to(png_bytes(64, 64), 5 * 1024 * 1024)))
    # Then it is accepted (the limit is inclusive)
    assert request.images[0].data is not None
    assert len(request.images[0].data) == 5 * 1024 * 1024


def test_kling_accepts_an_image_exactly_300_square() -> None:
    request = parse(image_request("kling-v1-6", image=jpeg_bytes(300, 300)))
    assert request.images[0].media_type == "image/jpeg"


def test_sora_reference_image_of_the_chosen_size_is_accepted() -> None:
    request = parse(image_request("sora-2", image=png_bytes(720, 1280), size="720x1280"))
    assert request.size == "720x1280"


def test_null_image_means_no_image() -> None:
    request = parse(text_request("veo3-fast", image=None))
    assert request.images == []
    assert request.input_mode is Mode.TEXT


# --- JSON in and out --------------------------------------------------------------------------------------


def test_parse_accepts_json_text() -> None:
    body = json.dumps(text_request("kling-v1-6", seconds=10, aspect_ratio="9:16"))
    request = parse(body)
    assert (request.model, request.seconds, request.size, request.mode) == ("kling-v1-6", 10, "720x1280", "std")


def test_json_round_trip_of_a_url_request_is_lossless() -> None:
    # Given a validated request with a URL image, options and fallbacks
    request = parse(
        image_request(
            "kling-v1-6",
            image=PUBLIC_IMAGE_URL,
            camera_control={"type": "simple", "config": {"pan": 2.5}},
            metadata={"order": "A-17"},
            fallback_models=["veo3-fast"],
        )
    )
    # When it is dumped to JSON and validated again
    again = VideoRequest.model_validate_json(request.model_dump_json(), context={"resolve": fake_resolver})
    # Then nothing changed
    assert again == request


def test_json_round_trip_keeps_image_bytes() -> None:
    # Given a validated request carrying image bytes whose base64 uses '+' and '/'
    image = noisy_png_bytes(32, 32)
    assert {"+", "/"} & set(base64.b64encode(image).decode())
    request = parse(image_request("veo3-fast", image=image))
    # When it is dumped to JSON (as it travels between the Lambdas) and validated again
    again = VideoRequest.model_validate_json(request.model_dump_json(), context={"resolve": fake_resolver})
    # Then the image bytes are the same
    assert again.images[0].data == image
    assert again == request


def test_validation_never_uses_the_real_resolver_when_a_fake_is_given() -> None:
    # Given a resolver that records the names it is asked
    asked: list[str] = []

    def recording(hostname: str) -> list[str]:
        asked.append(hostname)
        return fake_resolver(hostname)

    # When a request with an image URL and a callback URL is parsed
    parse_video_request(
        image_request("veo3-fast", image=PUBLIC_IMAGE_URL, callback_url=PUBLIC_CALLBACK_URL), resolve=recording
    )
    # Then both hosts were checked through it
    assert asked == ["images.example.com", "hooks.example.com"]


# --- for_fallback -----------------------------------------------------------------------------------------


def test_for_fallback_from_kling_to_veo_drops_what_veo_does_not_take() -> None:
    # Given a 10 s Kling pro request with every Kling option and a fallback
    request = parse(
        text_request(
            "kling-v1-6",
            seconds=10,
            mode="pro",
            cfg_scale=0.7,
            negative_prompt="blur",
            camera_control={"type": "down_back"},
            fallback_models=["veo3-fast"],
        )
    )
    # When it is adapted to veo3-fast
    fallback = request.for_fallback(spec_of("veo3-fast"))
    # Then veo's only duration, the same 16:9 format, and none of Kling's options
    assert fallback.model == "veo3-fast"
    assert fallback.seconds == 8
    assert fallback.size == "1280x720"
    assert (fallback.cfg_scale, fallback.negative_prompt, fallback.camera_control, fallback.mode) == (
        None,
        None,
        None,
        None,
    )
    assert fallback.fallback_models == []
    assert fallback.prompt == request.prompt
    # And the original is untouched
    assert (request.model, request.seconds, request.mode) == ("kling-v1-6", 10, "pro")


def test_for_fallback_from_veo_to_kling_sets_kling_default_mode() -> None:
    # Given an 8 s portrait veo request
    request = parse(text_request("veo3-fast", size="9:16", fallback_models=["kling-v1-6"]))
    # When it is adapted to kling-v1-6
    fallback = request.for_fallback(spec_of("kling-v1-6"))
    # Then the nearest duration (10 is 2 away, 5 is 3), the portrait format, Kling's default mode, no seed
    assert (fallback.seconds, fallback.size, fallback.mode, fallback.seed) == (10, "720x1280", "std", None)


def test_for_fallback_between_kling_models_keeps_shared_options() -> None:
    request = parse(
        text_request(
            "kling-v1-6",
            mode="pro",
            cfg_scale=0.3,
            negative_prompt="blur",
            camera_control={"type": "simple", "config": {"roll": 4}},
            aspect_ratio="1:1",
        )
    )
    fallback = request.for_fallback(spec_of("kling-v2-master"))
    # Then cfg_scale (not a v2-master option) is dropped and everything else kept
    assert fallback.cfg_scale is None
    assert (fallback.mode, fallback.negative_prompt, fallback.camera_control) == (
        "pro",
        "blur",
        request.camera_control,
    )
    assert (fallback.size, fallback.aspect_ratio) == ("720x720", None)


def test_for_fallback_without_the_format_uses_the_fallbacks_default() -> None:
    # Given a square Kling request (veo has no square format)
    request = parse(text_request("kling-v1-6", aspect_ratio="1:1"))
    # When it is adapted to veo3-fast
    fallback = request.for_fallback(spec_of("veo3-fast"))
    # Then veo's default format
    assert fallback.size == spec_of("veo3-fast").default_size


def test_for_fallback_to_runway_maps_the_format_and_duration() -> None:
    request = parse(image_request("veo3-fast", image=PUBLIC_IMAGE_URL))
    fallback = request.for_fallback(spec_of("gen3a_turbo"))
    assert (fallback.seed, fallback.size, fallback.seconds) == (None, "1280x768", 10)
    assert fallback.images == request.images


def test_for_fallback_from_runway_drops_the_seed_a_videos_model_does_not_take() -> None:
    request = parse(image_request("gen3a_turbo", image=PUBLIC_IMAGE_URL, seed=7))
    fallback = request.for_fallback(spec_of("veo3-fast"))
    assert (fallback.seed, fallback.size, fallback.seconds) == (None, "1280x720", 8)


@pytest.mark.parametrize(
    ("main", "seconds", "fallback_model", "expected"),
    [
        pytest.param("sora-2", 4, "kling-v1-6", 5, id="4-to-kling-5"),
        pytest.param("sora-2", 8, "kling-v1-6", 10, id="8-to-kling-10"),
        pytest.param("kling-v1-6", 5, "sora-2", 4, id="5-to-sora-4"),
        pytest.param("kling-v1-6", 10, "sora-2", 12, id="10-to-sora-tie-goes-longer"),
        pytest.param("veo3-fast", 8, "sora-2", 8, id="8-to-sora-8"),
    ],
)
def test_for_fallback_picks_the_nearest_allowed_duration(
    main: str, seconds: int, fallback_model: str, expected: int
) -> None:
    request = parse(text_request(main, seconds=seconds))
    assert request.for_fallback(spec_of(fallback_model)).seconds == expected


def test_a_stored_request_is_read_back_without_resolving_its_urls_again() -> None:
    # Given a request accepted with a callback and an image URL (their hosts resolved publicly then)
    fields = {
        "model": "kling-v1-6",
        "prompt": "A lighthouse at dusk",
        "images": [{"url": "https://images.example.com/frame.png"}],
        "callback_url": "https://hooks.example.com/videos",
    }
    stored = parse_video_request(fields, resolve=lambda host: ["93.184.216.34"]).model_dump(mode="json")

    # When the workflow reads it back while DNS fails (as on every Submit and Poll), Then it still parses:
    # each URL is checked again where it is used (the image before we download it, the callback at delivery)
    def dns_down(host: str) -> list[str]:
        raise OSError(f"{host}: temporary failure in name resolution")

    again = parse_video_request(stored, resolve=dns_down, trusted=True)
    assert again.callback_url == fields["callback_url"]
    # And a request from a user is still resolved, and refused when its host does not resolve
    with pytest.raises(InvalidRequestError, match="does not resolve") as refused:
        parse_video_request(fields, resolve=dns_down)
    assert refused.value.param in ("images[0].url", "callback_url")
