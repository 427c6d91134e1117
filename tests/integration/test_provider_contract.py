"""The provider adapters' contract with CometAPI, checked on the wire against the simulator.

Every test drives the REAL adapters (``provider_for`` over a real ``ProviderHttp``) against a
``CometApiSimulator`` listening on 127.0.0.1 (port 0, time scale 0, so a render is done at the first poll),
then reads the simulator's record of what arrived. Sleeps between retries are recorded instead of slept,
except in the one test that proves a ``Retry-After: 1`` is really waited for.
"""

from __future__ import annotations

import base64
import io
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import av
import pytest
import requests
from pydantic import SecretStr

from functions.common.errors import (
    ProviderError,
    ProviderUnavailableError,
    SubmitAmbiguousError,
    UnauthorizedError,
)
from functions.common.video_request import VideoRequest, parse_video_request
from functions.providers.base import ProviderTask, TaskState, TaskStatus, VideoProvider
from functions.providers.catalog import Dialect, Mode, ModelSpec, load_catalog
from functions.providers.factory import provider_for
from functions.providers.http import HttpPolicy, ProviderHttp
from local.simulator import CometApiSimulator, ReceivedRequest
from tests.fixtures.images import png_bytes

CATALOG = load_catalog()
RUNWAY_VERSION = "2024-11-06"
WRONG_KEY = "sk-wrong-0123456789abcdef"
FIRST_COLOUR = (200, 40, 40)
LAST_COLOUR = (40, 40, 200)
SHAPES = ("reference", "tutorial", "wrapped")
API_DIALECTS = ("videos", "kling", "runway")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_POLLS = 10
BACKOFF_BASE = 0.01

# One model per dialect, for the behaviours every dialect must share.
DIALECT_MODELS = [
    pytest.param("sora-2", id="videos"),
    pytest.param("kling-v1-6", id="kling"),
    pytest.param("gen3a_turbo", id="runway"),
]
# What the simulator's task_not_exist looks like: the dialect's own 404, or CometAPI's HTTP 200 envelope.
NOT_EXIST_MARKERS = [pytest.param("not-exist", id="http-404"), pytest.param("not-exist-200", id="http-200")]


# --- loopback only ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup other than the loopback address fails the test: nothing here may leave the machine."""
    real_getaddrinfo = socket.getaddrinfo

    def loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in LOOPBACK_HOSTS:
            raise RuntimeError(f"only loopback network in these tests (asked to resolve {name!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)


# --- the simulator and the adapters ----------------------------------------------------------------------


class FakeClock:
    """Unix seconds that a test moves by hand (the adapter's ``clock``)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Adapters:
    """Builds real adapters wired to the simulator; every retry sleep lands in ``sleeps``."""

    sim: CometApiSimulator
    sleeps: list[float] = field(default_factory=list)
    sessions: list[requests.Session] = field(default_factory=list)

    def http(
        self,
        *,
        key: str | None = None,
        base_url: str | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> ProviderHttp:
        session = requests.Session()
        self.sessions.append(session)
        return ProviderHttp(
            base_url=base_url or self.sim.base_url,
            api_key=SecretStr(key or self.sim.api_key),
            policy=HttpPolicy(connect_timeout=2.0, read_timeout=5.0, backoff_base=BACKOFF_BASE),
            session=session,
            sleep=self.sleeps.append if sleep is None else sleep,
            jitter=lambda: 1.0,  # the backoff is then exactly its ceiling: 0.01, 0.02, ...
        )

    def provider(
        self,
        model_id: str,
        *,
        key: str | None = None,
        base_url: str | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> VideoProvider:
        provider = provider_for(model_id, self.http(key=key, base_url=base_url, sleep=sleep))
        if clock is None:
            return provider
        return type(provider)(provider.http, provider.catalog, clock=clock)

    def close(self) -> None:
        for session in self.sessions:
            session.close()


@pytest.fixture
def sim() -> Iterator[CometApiSimulator]:
    with CometApiSimulator(time_scale=0.0, port=0) as simulator:
        yield simulator
        assert simulator.errors == []


@pytest.fixture
def adapters(sim: CometApiSimulator) -> Iterator[Adapters]:
    built = Adapters(sim)
    yield built
    built.close()


@pytest.fixture
def job_id() -> str:
    return f"job-{uuid.uuid4().hex[:16]}"


# --- requests, images, polling, downloads ----------------------------------------------------------------


def image_size(spec: ModelSpec) -> tuple[int, int]:
    """Sora needs the video's exact size; Kling at least 300x300; the others take anything."""
    if spec.images.must_match_size:
        return spec.default_format.width, spec.default_format.height
    side = max(spec.images.min_side + 20, 64)
    return side, side


def images_for(spec: ModelSpec, mode: Mode) -> list[bytes]:
    width, height = image_size(spec)
    count = {Mode.TEXT: 0, Mode.IMAGE: 1, Mode.FIRST_LAST: 2}[mode]
    return [png_bytes(width, height, colour) for colour in (FIRST_COLOUR, LAST_COLOUR)[:count]]


def video_request(model_id: str, prompt: str, images: Sequence[bytes] | None = None) -> VideoRequest:
    """A validated request; a model that cannot do text-to-video gets one image."""
    spec = CATALOG.models[model_id]
    if images is None:
        images = images_for(spec, Mode.TEXT if spec.supports(Mode.TEXT) else Mode.IMAGE)
    return parse_video_request({"model": model_id, "prompt": prompt, "images": list(images)})


def poll_until_terminal(provider: VideoProvider, task: ProviderTask) -> list[TaskState]:
    states: list[TaskState] = []
    for _ in range(MAX_POLLS):
        states.append(provider.poll(task))
        if states[-1].status.is_terminal:
            return states
    raise AssertionError(f"task {task.task_id} did not finish in {MAX_POLLS} polls: {states[-1]!r}")


def download(provider: VideoProvider, state: TaskState) -> requests.Response:
    assert state.output_url is not None
    return requests.get(state.output_url, headers=provider.download_headers(state.output_needs_auth), timeout=10)


def mp4_seconds(data: bytes) -> float:
    """Decode every frame with PyAV: proves the bytes are a playable video, and says how long it is."""
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        assert rate is not None
        frames = sum(1 for _ in container.decode(video=0))
        return frames / float(rate)


def assert_playable_mp4(data: bytes, seconds: float) -> None:
    assert data[4:8] == b"ftyp", f"not an MP4: starts with {data[:16]!r}"
    assert mp4_seconds(data) == pytest.approx(seconds, abs=0.25)


def api_calls(sim: CometApiSimulator) -> list[ReceivedRequest]:
    """Requests to the three API dialects (not media downloads, not /_sim control)."""
    return [r for r in sim.received if r.dialect in API_DIALECTS]


def assert_every_api_call_authorized(sim: CometApiSimulator) -> None:
    calls = api_calls(sim)
    assert calls
    assert {r.header("authorization") for r in calls} == {f"Bearer {sim.api_key}"}


def statuses(records: Sequence[ReceivedRequest]) -> list[int | None]:
    return [r.status for r in records]


def created_task_ids(sim: CometApiSimulator) -> list[str]:
    return [r.task_id for r in sim.creates() if r.task_id is not None]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- 1. every catalog model, every mode it supports -------------------------------------------------------


def catalog_cases() -> list[Any]:
    return [
        pytest.param(model_id, mode, id=f"{model_id}-{mode.value}")
        for model_id in CATALOG.ids()
        for mode in CATALOG.models[model_id].modes
    ]


@pytest.mark.parametrize(("model_id", "mode"), catalog_cases())
def test_every_catalog_model_renders_a_playable_mp4(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, mode: Mode
) -> None:
    # Given a catalog model, a request in one of its modes, and its real adapter
    spec = CATALOG.models[model_id]
    request = video_request(model_id, f"A paper kite over a wheat field ({mode.value})", images_for(spec, mode))
    provider = adapters.provider(model_id)

    # When the job is submitted and polled until it ends
    task = provider.submit(request, job_id)
    states = poll_until_terminal(provider, task)

    # Then the task is the one the simulator created, and it succeeded with a URL
    assert (task.model, task.dialect) == (model_id, spec.dialect)
    assert created_task_ids(sim) == [task.task_id]
    final = states[-1]
    assert final.status is TaskStatus.SUCCEEDED
    assert final.output_url is not None
    # And the output downloads as a valid MP4 of the requested length, byte for byte what was served
    response = download(provider, final)
    assert response.status_code == 200
    assert request.seconds is not None
    assert_playable_mp4(response.content, request.seconds)
    assert response.content == sim.video_bytes_for(task.task_id)
    # And every API call carried the key, while the (presigned) media URL was fetched without it
    assert_every_api_call_authorized(sim)
    media = [r for r in sim.received if r.dialect == "media"]
    if not final.output_needs_auth:
        assert len(media) == 1
        assert media[0].header("authorization") == ""


# --- 2. the wire format ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "mode", "size", "seconds"),
    [
        pytest.param("veo3-fast", Mode.TEXT, "16x9", None, id="veo3-fast-text"),
        pytest.param("veo3-fast", Mode.IMAGE, "16x9", None, id="veo3-fast-image"),
        pytest.param("veo3-fast", Mode.FIRST_LAST, "16x9", None, id="veo3-fast-first_last"),
        pytest.param("sora-2", Mode.TEXT, "1280x720", "4", id="sora-2-text"),
        pytest.param("sora-2", Mode.IMAGE, "1280x720", "4", id="sora-2-image"),
        pytest.param("sora-2-pro", Mode.IMAGE, "1280x720", "4", id="sora-2-pro-image"),
    ],
)
def test_videos_create_is_multipart_with_the_dialects_fields(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, mode: Mode, size: str, seconds: str | None
) -> None:
    # Given a /v1/videos model and a request with 0, 1 or 2 images
    images = images_for(CATALOG.models[model_id], mode)
    prompt = "A lighthouse at dusk, waves rolling in"
    provider = adapters.provider(model_id)

    # When it is submitted
    task = provider.submit(video_request(model_id, prompt, images), job_id)

    # Then the create is real multipart/form-data with exactly the dialect's fields
    (create,) = sim.creates("videos")
    assert (create.method, create.path, create.status) == ("POST", "/v1/videos", 200)
    assert create.header("content-type").startswith("multipart/form-data; boundary=")
    expected = {"model": [model_id], "prompt": [prompt], "size": [size]}
    if seconds is not None:
        expected["seconds"] = [seconds]
    assert create.form == expected
    # And the images travel as input_reference file parts, in order (first frame, then last)
    assert [name for name, *_ in create.files] == ["input_reference"] * len(images)
    assert [data for *_, data in create.files] == images
    assert {content_type for _, _, content_type, _ in create.files} <= {"image/png"}
    assert create.task_id == task.task_id
    assert_every_api_call_authorized(sim)


@pytest.mark.parametrize(
    ("mode", "route"),
    [
        pytest.param(Mode.TEXT, "text2video", id="text"),
        pytest.param(Mode.IMAGE, "image2video", id="image"),
        pytest.param(Mode.FIRST_LAST, "image2video", id="first_last"),
    ],
)
def test_kling_create_is_json_with_kling_field_names(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, mode: Mode, route: str
) -> None:
    # Given a Kling model and a request with 0, 1 or 2 images
    images = images_for(CATALOG.models["kling-v1-6"], mode)
    prompt = "A paper boat on a puddle"
    provider = adapters.provider("kling-v1-6")

    # When it is submitted and polled
    task = provider.submit(video_request("kling-v1-6", prompt, images), job_id)
    final = poll_until_terminal(provider, task)[-1]

    # Then the create is JSON under the mode's route, in Kling's own field names and types
    (create,) = sim.creates("kling")
    assert (create.method, create.path, create.status) == ("POST", f"/kling/v1/videos/{route}", 200)
    assert create.header("content-type").startswith("application/json")
    body = create.json
    assert isinstance(body, dict)
    assert "model" not in body
    assert body["model_name"] == "kling-v1-6"
    assert body["prompt"] == prompt
    assert body["duration"] == "5"
    assert isinstance(body["duration"], str)
    assert body["aspect_ratio"] == "16:9"
    assert body["mode"] == "std"
    assert body["external_task_id"] == job_id
    # And the images are plain base64 (no data: prefix): image, then image_tail
    for name, image in zip(("image", "image_tail"), images, strict=False):
        assert not body[name].startswith("data:")
        assert body[name] == b64(image)
    assert ("image" in body, "image_tail" in body) == (len(images) >= 1, len(images) == 2)
    # And the poll asks under the same route
    polls = [r for r in api_calls(sim) if r.method == "GET"]
    assert [r.path for r in polls] == [f"/kling/v1/videos/{route}/{task.task_id}"]
    assert final.status is TaskStatus.SUCCEEDED
    assert_every_api_call_authorized(sim)


def test_runway_create_and_poll_carry_the_version_header_and_runway_fields(
    sim: CometApiSimulator, adapters: Adapters, job_id: str
) -> None:
    # Given a Runway request with one image
    image = images_for(CATALOG.models["gen3a_turbo"], Mode.IMAGE)[0]
    provider = adapters.provider("gen3a_turbo")

    # When it is submitted and polled
    task = provider.submit(video_request("gen3a_turbo", "The camera drifts forward", [image]), job_id)
    final = poll_until_terminal(provider, task)[-1]

    # Then the create is JSON with a data-URI image, a numeric duration and Runway's ratio
    (create,) = sim.creates("runway")
    assert (create.method, create.path, create.status) == ("POST", "/runwayml/v1/image_to_video", 200)
    body = create.json
    assert isinstance(body, dict)
    assert body["model"] == "gen3a_turbo"
    assert body["promptText"] == "The camera drifts forward"
    assert body["promptImage"] == f"data:image/png;base64,{b64(image)}"
    assert body["duration"] == 5
    assert type(body["duration"]) is int
    assert body["ratio"] == "1280:768"
    # And both the create and the poll carry X-Runway-Version
    calls = api_calls(sim)
    assert [(r.method, r.path) for r in calls] == [
        ("POST", "/runwayml/v1/image_to_video"),
        ("GET", f"/runwayml/v1/tasks/{task.task_id}"),
    ]
    assert {r.header("x-runway-version") for r in calls} == {RUNWAY_VERSION}
    assert final.status is TaskStatus.SUCCEEDED
    assert_every_api_call_authorized(sim)


# --- 3. response shapes ----------------------------------------------------------------------------------

# The provider's own success word each shape uses, per model: proof that the shape really was in effect.
SUCCESS_WORDS = {
    ("veo3-fast", "reference"): "completed",
    ("veo3-fast", "tutorial"): "succeeded",
    ("veo3-fast", "wrapped"): "completed",
    ("sora-2", "reference"): "completed",
    ("sora-2", "tutorial"): "succeeded",
    ("sora-2", "wrapped"): "completed",
    ("kling-v1-6", "reference"): "succeed",
    ("kling-v1-6", "tutorial"): "succeed",
    ("kling-v1-6", "wrapped"): "succeed",
    ("gen3a_turbo", "reference"): "SUCCEEDED",
    ("gen3a_turbo", "tutorial"): "succeeded",
    ("gen3a_turbo", "wrapped"): "SUCCEEDED",
}


@pytest.mark.parametrize(("model_id", "shape"), [pytest.param(m, s, id=f"{m}-{s}") for m, s in SUCCESS_WORDS])
def test_every_response_shape_normalizes_to_a_downloadable_success(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, shape: str
) -> None:
    # Given a simulator answering in one of the three documented shapes
    sim.set_shape(shape)
    provider = adapters.provider(model_id)

    # When a job is submitted and polled
    task = provider.submit(video_request(model_id, "A fox in fresh snow"), job_id)
    final = poll_until_terminal(provider, task)[-1]

    # Then it is SUCCEEDED with a URL that serves the task's video without the key
    assert final.status is TaskStatus.SUCCEEDED
    assert final.provider_status == SUCCESS_WORDS[(model_id, shape)]
    assert final.output_needs_auth is False
    if (model_id, shape) == ("gen3a_turbo", "wrapped"):
        assert final.raw["code"] == "success"
    response = download(provider, final)
    assert response.status_code == 200
    assert response.content == sim.video_bytes_for(task.task_id)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("model_id", ["veo3-fast", "sora-2"])
def test_a_success_without_url_points_at_the_content_endpoint(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, shape: str
) -> None:
    # Given a /v1/videos task that completes without video_url or output
    sim.set_shape(shape)
    provider = adapters.provider(model_id)
    task = provider.submit(video_request(model_id, "A fox in fresh snow [sim:no-url]"), job_id)

    # When it is polled to the end
    final = poll_until_terminal(provider, task)[-1]

    # Then its output is the /content endpoint, which needs the key
    assert final.status is TaskStatus.SUCCEEDED
    assert final.output_url == f"{sim.base_url}/v1/videos/{task.task_id}/content"
    assert final.output_needs_auth is True
    assert provider.download_headers(True) == {"Authorization": f"Bearer {sim.api_key}"}
    # And it downloads with the key, and only with it
    response = download(provider, final)
    assert response.status_code == 200
    assert response.content == sim.video_bytes_for(task.task_id)
    assert_playable_mp4(response.content, 8 if model_id == "veo3-fast" else 4)
    anonymous = requests.get(final.output_url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.content[4:8] != b"ftyp"


# --- 4. faults: retries, ambiguity, reconciliation -------------------------------------------------------


@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_429_with_retry_after_is_honoured_and_creates_one_task(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a create answered 429 with Retry-After: 3, then accepted
    provider = adapters.provider(model_id)
    request = video_request(model_id, "A heron lifts off [sim:429-retry-after=3]")

    # When it is submitted
    task = provider.submit(request, job_id)

    # Then the adapter waited exactly what the header said, once, and sent it again
    assert adapters.sleeps == [3.0]
    assert statuses(sim.creates()) == [429, 200]
    # And exactly one task exists: the one handed back
    assert created_task_ids(sim) == [task.task_id]


def test_429_retry_after_of_one_second_is_really_waited(
    sim: CometApiSimulator, adapters: Adapters, job_id: str
) -> None:
    # Given a create answered 429 with Retry-After: 1, and an adapter that really sleeps
    provider = adapters.provider("veo3-fast", sleep=time.sleep)
    started = time.monotonic()

    # When it is submitted
    task = provider.submit(video_request("veo3-fast", "A heron lifts off [sim:429-retry-after=1]"), job_id)

    # Then the second attempt reached the simulator at least a second after the first
    first, second = sim.creates()
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert time.monotonic() - started >= 1.0
    assert created_task_ids(sim) == [task.task_id]


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_500_and_503_on_a_create_are_retried_then_succeed(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, status: int
) -> None:
    # Given a create answered twice with a transient server error, then accepted
    provider = adapters.provider(model_id)

    # When it is submitted
    task = provider.submit(video_request(model_id, f"A heron lifts off [sim:{status}x2]"), job_id)

    # Then it was retried with backoff and one task was made
    assert statuses(sim.creates()) == [status, status, 200]
    assert adapters.sleeps == [BACKOFF_BASE, 2 * BACKOFF_BASE]
    assert created_task_ids(sim) == [task.task_id]


@pytest.mark.parametrize("status", [502, 504, 524])
@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_gateway_error_on_a_create_is_ambiguous_after_one_request(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, status: int
) -> None:
    # Given a create a gateway answers with its own HTML error page
    provider = adapters.provider(model_id)

    # When it is submitted
    # Then the outcome is unknown: SubmitAmbiguousError, and the create was not sent again
    with pytest.raises(SubmitAmbiguousError) as raised:
        provider.submit(video_request(model_id, f"A heron lifts off [sim:{status}]"), job_id)
    assert raised.value.retryable is False
    assert statuses(sim.creates()) == [status]
    assert adapters.sleeps == []


@pytest.mark.parametrize("model_id", [pytest.param("sora-2", id="videos"), pytest.param("gen3a_turbo", id="runway")])
def test_an_ambiguous_create_reaches_the_provider_once_and_cannot_be_reconciled(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a create the provider accepts but whose answer never comes back
    provider = adapters.provider(model_id)
    request = video_request(model_id, "A heron lifts off [sim:ambiguous]")

    # When it is submitted
    with pytest.raises(SubmitAmbiguousError) as raised:
        provider.submit(request, job_id)

    # Then it was sent exactly once (a task now exists upstream, never duplicated)
    (create,) = sim.creates()
    assert create.status is None
    assert create.task_id is not None
    assert raised.value.retryable is False
    assert adapters.sleeps == []
    # And this dialect has no way to find it again
    assert provider.supports_reconcile is False
    assert provider.reconcile(job_id, request) is None
    assert len(sim.creates()) == 1


@pytest.mark.parametrize("mode", [Mode.TEXT, Mode.IMAGE], ids=lambda mode: mode.value)
def test_an_ambiguous_kling_create_is_reconciled_by_external_task_id(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, mode: Mode
) -> None:
    # Given a Kling create the provider accepts but whose answer never comes back
    provider = adapters.provider("kling-v1-6")
    images = images_for(CATALOG.models["kling-v1-6"], mode)
    request = video_request("kling-v1-6", "A heron lifts off [sim:ambiguous]", images)
    with pytest.raises(SubmitAmbiguousError):
        provider.submit(request, job_id)
    (create,) = sim.creates("kling")
    assert create.status is None

    # When the job is reconciled by its id
    found = provider.reconcile(job_id, request)

    # Then it is the very task the simulator made, and it can be polled to a downloadable video
    assert found is not None
    assert found.task_id == create.task_id
    assert found.route == ("text2video" if mode is Mode.TEXT else "image2video")
    final = poll_until_terminal(provider, found)[-1]
    assert final.status is TaskStatus.SUCCEEDED
    assert download(provider, final).content == sim.video_bytes_for(found.task_id)
    # And the create was never sent again
    assert len(sim.creates()) == 1


def test_kling_reconcile_of_a_job_never_created_finds_nothing(
    sim: CometApiSimulator, adapters: Adapters, job_id: str
) -> None:
    # Given a Kling job the provider has never seen
    provider = adapters.provider("kling-v1-6")

    # When it is reconciled
    found = provider.reconcile(job_id, video_request("kling-v1-6", "A heron lifts off"))

    # Then nothing is found, and nothing was created while looking
    assert found is None
    assert sim.creates() == []


@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_create_reset_after_sending_is_ambiguous_not_blindly_resent(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a create whose connection is reset after the request went out (the simulator made nothing,
    # but the client cannot tell that apart from a provider that accepted it and then dropped the line)
    provider = adapters.provider(model_id)
    request = video_request(model_id, "A heron lifts off [sim:reset]")

    # When it is submitted
    # Then it is ambiguous and was sent exactly once: never retried blindly (DESIGN: no double billing)
    with pytest.raises(SubmitAmbiguousError):
        provider.submit(request, job_id)
    (create,) = sim.creates()
    assert (create.status, create.task_id) == (None, None)
    assert adapters.sleeps == []


def test_a_reset_kling_create_is_reconciled_as_absent_and_safely_submitted_again(
    sim: CometApiSimulator, adapters: Adapters, job_id: str
) -> None:
    # Given a Kling create whose connection was reset before the provider made anything
    provider = adapters.provider("kling-v1-6")
    request = video_request("kling-v1-6", "A heron lifts off [sim:reset]")
    with pytest.raises(SubmitAmbiguousError):
        provider.submit(request, job_id)

    # When the job is reconciled, found absent, and submitted again with the same job id
    assert provider.reconcile(job_id, request) is None
    task = provider.submit(request, job_id)

    # Then the second create succeeded and exactly one task exists
    assert statuses(sim.creates()) == [None, 200]
    assert created_task_ids(sim) == [task.task_id]
    assert poll_until_terminal(provider, task)[-1].status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_reset_poll_is_retried_then_succeeds(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a task whose first status poll has its connection reset (a poll is safe to repeat)
    provider = adapters.provider(model_id)
    task = provider.submit(video_request(model_id, "A heron lifts off [sim:poll-reset]"), job_id)

    # When it is polled
    state = provider.poll(task)

    # Then the poll was sent again and the task reads as succeeded
    assert state.status is TaskStatus.SUCCEEDED
    polls = [r for r in api_calls(sim) if r.method == "GET"]
    assert statuses(polls) == [None, 200]
    assert adapters.sleeps == [BACKOFF_BASE]


def test_a_create_that_cannot_connect_is_retried_then_unavailable(adapters: Adapters, job_id: str) -> None:
    # Given a base URL on the loopback where nothing listens (so nothing can ever be sent)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = adapters.provider("sora-2", base_url=f"http://127.0.0.1:{closed_port}")

    # When a job is submitted
    # Then every attempt is made (safe: nothing was sent) and it ends retryable, not ambiguous
    with pytest.raises(ProviderUnavailableError) as raised:
        provider.submit(video_request("sora-2", "A heron lifts off"), job_id)
    assert raised.value.retryable is True
    assert adapters.sleeps == [BACKOFF_BASE, 2 * BACKOFF_BASE, 4 * BACKOFF_BASE]


@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_poll_answering_html_is_an_error_mentioning_html(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a task whose status polls answer 200 with an HTML page
    provider = adapters.provider(model_id)
    task = provider.submit(video_request(model_id, "A heron lifts off [sim:html]"), job_id)

    # When it is polled
    # Then it is a ProviderError that says HTML came back, never a success
    with pytest.raises(ProviderError, match="HTML") as raised:
        provider.poll(task)
    assert type(raised.value) is ProviderError
    assert len([r for r in api_calls(sim) if r.method == "GET"]) == 1


@pytest.mark.parametrize("marker", NOT_EXIST_MARKERS)
@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_task_not_exist_inside_the_grace_period_is_still_queued(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, marker: str
) -> None:
    # Given a task whose first two polls say task_not_exist
    clock = FakeClock()
    provider = adapters.provider(model_id, clock=clock)
    task = provider.submit(video_request(model_id, f"A heron lifts off [sim:{marker}=2]"), job_id)

    # When it is polled inside the catalog's grace period
    states = []
    for _ in range(3):
        states.append(provider.poll(task))
        clock.advance(5.0)

    # Then the first two count as still initialising, and the third shows the real task
    assert [(s.status, s.not_found_yet, s.provider_status) for s in states[:2]] == [
        (TaskStatus.QUEUED, True, "task_not_exist"),
        (TaskStatus.QUEUED, True, "task_not_exist"),
    ]
    assert states[2].status is TaskStatus.SUCCEEDED
    assert states[2].not_found_yet is False


@pytest.mark.parametrize("marker", NOT_EXIST_MARKERS)
@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_task_not_exist_after_the_grace_period_is_an_error(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str, marker: str
) -> None:
    # Given a task the provider does not know at the first poll
    clock = FakeClock()
    provider = adapters.provider(model_id, clock=clock)
    task = provider.submit(video_request(model_id, f"A heron lifts off [sim:{marker}=2]"), job_id)
    assert provider.poll(task).not_found_yet is True

    # When it still does not know it once the catalog's grace period is over
    clock.advance(CATALOG.models[model_id].polling.not_found_grace_seconds + 1.0)

    # Then the task is reported lost upstream
    with pytest.raises(ProviderError, match="does not exist") as raised:
        provider.poll(task)
    assert type(raised.value) is ProviderError
    assert raised.value.retryable is False


@pytest.mark.parametrize("shape", SHAPES)
def test_runway_throttled_counts_as_queued(sim: CometApiSimulator, adapters: Adapters, job_id: str, shape: str) -> None:
    # Given a Runway task over the account's concurrency limit for its first two polls
    sim.set_shape(shape)
    provider = adapters.provider("gen3a_turbo")
    task = provider.submit(video_request("gen3a_turbo", "A heron lifts off [sim:throttled=2]"), job_id)

    # When it is polled to the end
    states = poll_until_terminal(provider, task)

    # Then THROTTLED reads as QUEUED, flagged as throttled (so it is never called stuck), then the task succeeds
    assert [s.status for s in states] == [TaskStatus.QUEUED, TaskStatus.QUEUED, TaskStatus.SUCCEEDED]
    assert {(s.provider_status or "").upper() for s in states[:2]} == {"THROTTLED"}
    assert [s.throttled for s in states] == [True, True, False]


def test_kling_1303_is_retried_by_the_http_policy_then_succeeds(
    sim: CometApiSimulator, adapters: Adapters, job_id: str
) -> None:
    # Given a Kling create refused twice with code 1303 (too many tasks in flight), then accepted
    provider = adapters.provider("kling-v1-6")

    # When it is submitted
    task = provider.submit(video_request("kling-v1-6", "A heron lifts off [sim:1303x2]"), job_id)

    # Then the HTTP policy retried it with backoff, and one task was made
    assert statuses(sim.creates()) == [429, 429, 200]
    assert adapters.sleeps == [BACKOFF_BASE, 2 * BACKOFF_BASE]
    assert created_task_ids(sim) == [task.task_id]


@pytest.mark.parametrize("call", ["submit", "poll"])
@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_wrong_key_is_unauthorized_naming_the_variable_never_the_key(
    sim: CometApiSimulator,
    adapters: Adapters,
    job_id: str,
    caplog: pytest.LogCaptureFixture,
    model_id: str,
    call: str,
) -> None:
    # Given an adapter holding a key CometAPI refuses (and, for a poll, a task made with the right key)
    caplog.set_level(logging.DEBUG)
    wrong = adapters.provider(model_id, key=WRONG_KEY)
    request = video_request(model_id, "A heron lifts off")
    task = adapters.provider(model_id).submit(request, job_id) if call == "poll" else None

    def call_cometapi() -> object:
        return wrong.submit(request, job_id) if task is None else wrong.poll(task)

    # When it calls CometAPI
    with pytest.raises(UnauthorizedError) as raised:
        call_cometapi()

    # Then the error names COMETAPI_KEY and never shows the key
    error = raised.value
    assert "COMETAPI_KEY" in error.message
    for text in (str(error), repr(error), repr(error.details), repr(error.to_dict()), caplog.text):
        assert WRONG_KEY not in text
    # And it was not retried
    refused = [r for r in api_calls(sim) if r.status == 401]
    assert len(refused) == 1
    assert refused[0].header("authorization") == f"Bearer {WRONG_KEY}"
    assert adapters.sleeps == []


@pytest.mark.parametrize("model_id", DIALECT_MODELS)
def test_a_failure_without_a_message_is_content_filtered(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a task the provider fails without saying why
    provider = adapters.provider(model_id)
    task = provider.submit(video_request(model_id, "A heron lifts off [sim:filter]"), job_id)

    # When it is polled to the end
    final = poll_until_terminal(provider, task)[-1]

    # Then it failed with our stable content_filtered code and a message saying what to do
    assert final.status is TaskStatus.FAILED
    assert final.error_code == "content_filtered"
    assert final.error_message
    assert "content filter" in final.error_message
    assert final.output_url is None


def test_runway_cancel_deletes_the_task_upstream(sim: CometApiSimulator, adapters: Adapters, job_id: str) -> None:
    # Given a Runway task still waiting in the queue
    provider = adapters.provider("gen3a_turbo")
    task = provider.submit(video_request("gen3a_turbo", "A heron lifts off [sim:stuck]"), job_id)
    assert provider.poll(task).status is TaskStatus.QUEUED

    # When it is cancelled
    cancelled = provider.cancel(task)

    # Then the simulator received a DELETE for it, with the version header and the key
    assert cancelled is True
    (delete,) = [r for r in sim.received if r.method == "DELETE"]
    assert (delete.path, delete.status) == (f"/runwayml/v1/tasks/{task.task_id}", 204)
    assert delete.header("x-runway-version") == RUNWAY_VERSION
    assert_every_api_call_authorized(sim)
    # And the task now reads as CANCELLED
    state = provider.poll(task)
    assert state.status is TaskStatus.CANCELLED
    assert state.error_code == "cancelled"


@pytest.mark.parametrize("model_id", ["veo3-fast", "kling-v1-6"])
def test_dialects_without_cancel_send_nothing(
    sim: CometApiSimulator, adapters: Adapters, job_id: str, model_id: str
) -> None:
    # Given a task of a dialect with no documented cancel
    provider = adapters.provider(model_id)
    task = provider.submit(video_request(model_id, "A heron lifts off [sim:stuck]"), job_id)
    before = len(sim.received)

    # When it is cancelled
    # Then the adapter says it cannot, without calling the provider
    assert provider.supports_cancel is False
    assert provider.cancel(task) is False
    assert len(sim.received) == before
    assert CATALOG.models[model_id].dialect in (Dialect.VIDEOS, Dialect.KLING)
