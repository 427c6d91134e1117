from __future__ import annotations

import pytest

from functions.api.handler import POLL_AFTER_HEADER
from functions.api.logic import MIN_POLL_AFTER_MS
from infra.api import GATEWAY_RESPONSES
from local.docs_gen import generated, openapi_document


@pytest.mark.parametrize("path_and_text", generated().items(), ids=lambda item: item[0].name)
def test_committed_document_is_what_the_code_generates(path_and_text) -> None:
    # Given the document the code generates / Then the committed file is identical (run `make docs` if not)
    path, text = path_and_text
    assert path.exists(), f"{path} is missing: run `make docs`"
    assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `make docs`"


def test_every_operation_documents_api_gateways_429_answers() -> None:
    # Given the 429s API Gateway answers itself (the stage throttles every method; the usage plan has a quota)
    gateway_429s = {(kind, code) for _, status, kind, code in GATEWAY_RESPONSES if status == "429"}
    assert gateway_429s == {("rate_limit_error", "rate_limit_exceeded"), ("rate_limit_error", "quota_exceeded")}
    # When the OpenAPI document is generated
    document = openapi_document()
    # Then every operation documents a 429 in OpenAI's error envelope, with an example of each of those codes
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("429")
            assert answer is not None, f"{method.upper()} {path} does not document 429"
            body = answer["content"]["application/json"]
            assert body["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
            examples = {(e["value"]["error"]["type"], e["value"]["error"]["code"]) for e in body["examples"].values()}
            assert examples == gateway_429s, f"{method.upper()} {path}"


def test_retrieve_documents_the_poll_after_header_the_handler_sends() -> None:
    # When the OpenAPI document is generated
    answer = openapi_document()["paths"]["/v1/videos/{video_id}"]["get"]["responses"]["200"]
    # Then retrieve's 200 documents openai-poll-after-ms (the name the handler sends, which the SDK reads),
    # an optional integer of at least a second
    assert POLL_AFTER_HEADER == "openai-poll-after-ms"
    header = answer["headers"][POLL_AFTER_HEADER]
    assert header["schema"] == {"type": "integer", "minimum": MIN_POLL_AFTER_MS}
    assert not header.get("required", False)
