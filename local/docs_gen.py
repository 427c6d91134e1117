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


def generated() -> dict[Path, str]:
    return {
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
