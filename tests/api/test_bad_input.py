"""Bad input over HTTP: every malformed or unsafe create is a 4xx in OpenAI's error envelope, naming the field,
and nothing is spent: no job record, no execution, no request to the provider."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from infra.config import MAX_REQUEST_BYTES
from tests.api.conftest import OWNER_A, ApiStack

pytestmark = pytest.mark.filterwarnings(
    # Powertools idempotency outside a real Lambda (no remaining-time context): irrelevant here.
    "ignore:Couldn't determine the remaining time left:UserWarning",
)

TEXT = b"Just some text, certainly not an image.\n"


@dataclass(frozen=True)
class BadInput:
    name: str
    send: Callable[[], dict[str, Any]]
    """The keyword arguments of requests.post (json/data/files/headers), built when the case runs."""
    status: int
    param: str | None
    code: str = "invalid_request"


def create(**fields: Any) -> Callable[[], dict[str, Any]]:
    """A JSON body: a valid veo3-fast text request with ``fields`` merged in (None removes a field)."""
    body = {"model": "veo3-fast", "prompt": "A paper kite above a wheat field", **fields}
    return lambda: {"json": {name: value for name, value in body.items() if value is not None}}


def raw(data: bytes, content_type: str | None) -> Callable[[], dict[str, Any]]:
    return lambda: {"data": data, "headers": {"Content-Type": content_type} if content_type else {}}


def upload(data: bytes, filename: str, media_type: str, **fields: str) -> Callable[[], dict[str, Any]]:
    form = {"model": "veo3-fast", "prompt": "The uploaded frame comes alive", **fields}
    return lambda: {"data": form, "files": {"input_reference": (filename, data, media_type)}}


SSRF_URLS = {
    "http": "http://images.example.com/frame.png",
    "loopback": "https://127.0.0.1/frame.png",
    "metadata": "https://169.254.169.254/latest/meta-data/",
    "ipv6-loopback": "https://[::1]/frame.png",
}

CASES = [
    BadInput("malformed-json", raw(b'{"prompt": "a kite", ', "application/json"), 400, None),
    BadInput("json-array", lambda: {"json": [{"prompt": "a kite"}]}, 400, None),
    BadInput("json-null", raw(b"null", "application/json"), 400, None),
    BadInput("seconds-not-a-number", create(seconds="abc"), 400, "seconds"),
    BadInput("cfg-scale-not-a-number", create(model="kling-v1-6", cfg_scale="x"), 400, "cfg_scale"),
    BadInput("prompt-not-a-string", create(prompt=5), 400, "prompt"),
    BadInput("unknown-field", create(colour="red"), 400, "colour"),
    BadInput("unknown-model", create(model="sora-3-ultra"), 400, "model"),
    BadInput("blank-prompt", create(prompt="  \n\t "), 400, "prompt"),
    BadInput("missing-prompt", create(prompt=None), 400, "prompt"),
    BadInput("seconds-not-allowed", create(seconds=7), 400, "seconds"),
    BadInput("size-not-allowed", create(size="1024x1024"), 400, "size"),
    *(
        BadInput(f"image-url-{name}", create(input_reference={"image_url": url}), 400, "input_reference")
        for name, url in SSRF_URLS.items()
    ),
    *(
        BadInput(f"callback-url-{name}", create(callback_url=url), 400, "callback_url")
        for name, url in SSRF_URLS.items()
    ),
    BadInput("image-upload-is-text", upload(TEXT, "frame.png", "image/png"), 400, "input_reference"),
    BadInput(
        "image-data-uri-is-text",
        create(input_reference="data:image/png;base64," + base64.b64encode(TEXT).decode()),
        400,
        "input_reference",
    ),
    BadInput(
        "oversized-body",
        lambda: {
            "data": b'{"prompt": "' + b"a" * MAX_REQUEST_BYTES + b'"}',
            "headers": {"Content-Type": "application/json"},
        },
        413,
        None,
        "request_too_large",
    ),
    BadInput("text-plain", raw(b"prompt=a kite", "text/plain"), 415, None, "unsupported_media_type"),
    BadInput(
        "idempotency-key-over-255-characters",
        lambda: {**create()(), "headers": {"Idempotency-Key": "k" * 256}},
        400,
        "Idempotency-Key",
    ),
    BadInput("multipart-without-boundary", raw(b"--x\r\n\r\n--x--\r\n", "multipart/form-data"), 400, None),
    # Inputs that got past every check above into code that raised (a 500) when this table was written:
    BadInput(
        "deeply-nested-json",
        raw(b'{"metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
        400,
        None,
    ),
    BadInput("seconds-superscript-digit", create(seconds="\u00b2"), 400, "seconds"),
    BadInput("seconds-with-5000-digits", create(seconds="9" * 5000), 400, "seconds"),
    BadInput(
        "prompt-with-lone-surrogate",
        raw(b'{"model": "veo3-fast", "prompt": "a kite \\ud800"}', "application/json"),
        400,
        "prompt",
    ),
]


def names_field(param: str | None, field: str | None) -> bool:
    if param is None or field is None:
        return param == field
    return param == field or param.startswith((f"{field}[", f"{field}."))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_a_4xx_that_spends_nothing(api: ApiStack, case: BadInput) -> None:
    # Given the state behind the API
    jobs_before = api.job_ids()
    executions_before = api.execution_names()
    creates_before = len(api.sim_creates())

    # When the bad create is sent
    kwargs = case.send()
    kwargs["headers"] = {**api.auth(OWNER_A), **kwargs.get("headers", {})}
    answer = requests.post(f"{api.server.base_url}/videos", timeout=30, **kwargs)

    # Then it is the expected 4xx in OpenAI's error envelope
    assert answer.status_code == case.status, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert error["type"] == "invalid_request_error"
    assert error["code"] == case.code
    assert isinstance(error["message"], str)
    assert error["message"].strip()

    # And no job record, no execution and no provider create exist because of it
    assert api.job_ids() == jobs_before
    assert api.execution_names() == executions_before
    assert len(api.sim_creates()) == creates_before

    # And the error names the field at fault as the client sent it (input_reference[0] is fine too)
    assert names_field(error["param"], case.param), error["message"]


def test_nothing_at_all_reached_the_provider(api: ApiStack) -> None:
    # Given every bad input of this module was sent (the table above runs first)
    # Then no job, no execution, and not a single request to the provider exist
    assert api.job_items() == []
    assert api.executions() == []
    assert api.sim_requests() == []


def test_the_table_really_creates_when_the_input_is_good(api: ApiStack) -> None:
    # Given the same helpers the table uses, with nothing wrong in the body
    # When it is sent
    answer = requests.post(f"{api.server.base_url}/videos", headers=api.auth(OWNER_A), timeout=30, **create()())

    # Then a job is created: the table's 4xx answers come from the bad part, not from the way it sends
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] in api.job_ids()
    assert api.stack.jobs.require(answer.json()["id"]).owner == OWNER_A
