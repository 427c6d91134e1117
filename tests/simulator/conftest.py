"""Fixtures for the simulator's own tests: a started simulator, a controllable clock, a small client."""

from __future__ import annotations

import base64
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import pytest
import requests

from local.simulator import CometApiSimulator

API_KEY = "sk-sim"
RUNWAY_VERSION = "2024-11-06"
HTTPS_IMAGE = "https://images.example.com/first-frame.png"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """requests against the simulator with the right key and headers for each dialect."""

    def __init__(self, base_url: str, key: str = API_KEY) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # /v1/videos
    def videos_create(
        self,
        prompt: str = "a red kite over a wheat field",
        model: str = "sora-2",
        files: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        headers: dict[str, str] | None = None,
        **fields: str,
    ) -> requests.Response:
        parts: list[tuple[str, Any]] = [("prompt", (None, prompt)), ("model", (None, model))]
        parts += [(name, (None, value)) for name, value in fields.items()]
        parts += files or []
        return self.session.post(self.url("/v1/videos"), files=parts, headers=headers, timeout=5)

    def videos_get(self, video_id: str, headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.get(self.url(f"/v1/videos/{video_id}"), headers=headers, timeout=5)

    # Kling
    def kling_create(self, body: dict[str, Any], kind: str = "text2video", **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(f"/kling/v1/videos/{kind}"), json=body, timeout=5, **kwargs)

    def kling_get(self, task_id: str, kind: str = "text2video") -> requests.Response:
        return self.session.get(self.url(f"/kling/v1/videos/{kind}/{task_id}"), timeout=5)

    # Runway
    def runway_create(self, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        headers = {"X-Runway-Version": RUNWAY_VERSION, **kwargs.pop("headers", {})}
        return self.session.post(
            self.url("/runwayml/v1/image_to_video"), json=body, headers=headers, timeout=5, **kwargs
        )

    def runway_get(self, task_id: str) -> requests.Response:
        headers = {"X-Runway-Version": RUNWAY_VERSION}
        return self.session.get(self.url(f"/runwayml/v1/tasks/{task_id}"), headers=headers, timeout=5)


def kling_body(prompt: str = "a paper boat on a puddle", **fields: Any) -> dict[str, Any]:
    return {"model_name": "kling-v1-6", "prompt": prompt, "duration": "5", "aspect_ratio": "16:9", **fields}


def runway_body(prompt_text: str = "the camera drifts forward", **fields: Any) -> dict[str, Any]:
    body = {"model": "gen3a_turbo", "promptImage": HTTPS_IMAGE, "promptText": prompt_text, "duration": 5}
    return {**body, "ratio": "1280:768", **fields}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class VideoFacts:
    seconds: float
    width: int
    height: int
    codec: str


def probe(data: bytes) -> VideoFacts:
    """Decode every frame with PyAV: proves the bytes are a playable video, and says what it is."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        frames = len(list(container.decode(video=0)))
        rate = float(stream.average_rate or 8)
        return VideoFacts(
            frames / rate, stream.codec_context.width, stream.codec_context.height, stream.codec_context.name
        )


def top_level_boxes(data: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


@pytest.fixture
def sim() -> Iterator[CometApiSimulator]:
    with CometApiSimulator(time_scale=0.0) as simulator:
        yield simulator
        assert simulator.errors == []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_sim(clock: FakeClock) -> Iterator[CometApiSimulator]:
    """Real render times (time_scale 1) on a clock the test advances."""
    with CometApiSimulator(time_scale=1.0, clock=clock, media_ttl_seconds=600.0) as simulator:
        yield simulator
        assert simulator.errors == []


@pytest.fixture
def api(sim: CometApiSimulator) -> Api:
    return Api(sim.base_url)


@pytest.fixture
def timed_api(timed_sim: CometApiSimulator) -> Api:
    return Api(timed_sim.base_url)
