"""Writes the documents generated from code (event schemas), so they never drift: `make docs`.

tests/infra/test_generated_docs.py fails when a committed document differs from what this writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED, VideoEventDetail

DOCS = Path(__file__).resolve().parent.parent / "docs"


def event_schema(detail_type: str, statuses: list[str]) -> dict[str, Any]:
    detail = VideoEventDetail.model_json_schema()
    definitions = detail.pop("$defs", {})
    detail["properties"]["status"] = {"enum": statuses, "title": "Status", "type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": detail_type,
        "description": f"The EventBridge event videogen emits on its bus, once per job, when a job ends "
        f"({', '.join(statuses)}). Match it with source '{EVENT_SOURCE}' and detail-type '{detail_type}'.",
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "source": {"const": EVENT_SOURCE},
            "detail-type": {"const": detail_type},
            "detail": detail,
        },
        "$defs": definitions,
    }


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document: Powertools' (from the routes) plus what the routes cannot declare: the
    create body in both encodings, the Bearer scheme, and OpenAI's error envelope instead of a 422."""
    from functions.api.handler import app  # noqa: PLC0415
    from functions.api.models import CreateVideoBody  # noqa: PLC0415

    document: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="videogen Videos API",
            version="1",
            description="OpenAI's Videos API (create, retrieve, list, download, delete) on your own AWS "
            "account, reaching Veo, Sora, Kling and Runway through CometAPI. Point the official openai SDK "
            "at <stage URL>/v1.",
        )
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation["responses"].pop("422", None)
            operation["security"] = [{"bearer": []}]
    body = CreateVideoBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["CreateVideoBody"] = body
    form = json.loads(json.dumps(body))
    form["properties"]["input_reference"] = {
        "description": "The image file(s): one for image-to-video, two for first and last frame.",
        "type": "string",
        "format": "binary",
    }
    document["paths"]["/v1/videos"]["post"]["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/CreateVideoBody"}},
            "multipart/form-data": {"schema": form},
        },
    }
    document["paths"]["/v1/videos"]["post"]["parameters"] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": (
                "The same key and body within 24 h give the same video; a different body gives 409, and so "
                "does the same key once that video has been deleted (send a new key for a new video)."
            ),
            "schema": {"type": "string", "maxLength": 255},
        }
    ]
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "A videogen API key (videogen keys create)."}
    }
    return document


def errors_document() -> str:
    """docs/errors.md: every stable error code, from the one error hierarchy."""
    from functions.common.errors import ERROR_CLASSES, RetryableError  # noqa: PLC0415

    lines = [
        "# Error codes",
        "",
        "Every failure a user sees carries one of these stable codes (the job's `error.code`, the event's",
        "`detail.error.code`, the API's `error.code`). Generated from `functions/common/errors.py` by",
        "`make docs`; the class name is also the error name Step Functions retries or catches.",
        "",
        "| code | class | HTTP | retried | what happened, and what to do |",
        "|---|---|---|---|---|",
    ]
    for cls in ERROR_CLASSES:
        retried = "yes" if issubclass(cls, RetryableError) else "no"
        doc = " ".join((cls.__doc__ or "").split())
        lines.append(f"| `{cls.code}` | `{cls.__name__}` | {cls.http_status} | {retried} | {doc} |")
    return "\n".join(lines) + "\n"


def generated() -> dict[Path, str]:
    return {
        DOCS / "errors.md": errors_document(),
        DOCS / "openapi.json": _json(openapi_document()),
        DOCS / "events" / "video-generation-completed.json": _json(event_schema(COMPLETED, ["completed"])),
        DOCS / "events" / "video-generation-failed.json": _json(event_schema(FAILED, ["failed", "cancelled"])),
    }


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for path, text in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
