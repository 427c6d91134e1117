"""Events: the bus, its archive for replay, who may publish, and the documented example rule."""

from __future__ import annotations

import json
import re

from functions.common.events import COMPLETED, EVENT_SOURCE, FAILED
from infra.config import ROOT
from infra.event_bus import EXAMPLE_RULE_PATTERN
from tests.infra.conftest import Template

DEPLOY_GUIDE = ROOT / "docs" / "deploy.md"


def test_bus_and_archive(template: Template) -> None:
    bus = template.by_path("/Events/Bus/Resource")
    _, archive = template.one("AWS::Events::Archive")
    props = archive["Properties"]
    assert props["SourceArn"] == {"Fn::GetAtt": [bus, "Arn"]}
    pattern = props["EventPattern"]
    assert (json.loads(pattern) if isinstance(pattern, str) else pattern) == {"source": [EVENT_SOURCE]}
    assert props["RetentionDays"] == 30


def test_archive_can_keep_events_forever(full: Template) -> None:
    _, archive = full.one("AWS::Events::Archive")
    assert "RetentionDays" not in archive["Properties"] or archive["Properties"]["RetentionDays"] == 0


def test_only_finalize_and_the_api_may_publish(template: Template) -> None:
    bus = {"Fn::GetAtt": [template.by_path("/Events/Bus/Resource"), "Arn"]}
    for key in ("submit", "poll", "store", "finalize", "api", "authorizer"):
        puts = [s for s in template.function_statements(key) if "events:PutEvents" in str(s["Action"])]
        if key in ("finalize", "api"):
            assert puts == [{"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus}], key
        else:
            assert puts == [], key


def test_the_deploy_guide_shows_the_example_rule() -> None:
    # Given the guide's example rule / Then it is the pattern the code's events match
    text = DEPLOY_GUIDE.read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL)]
    assert EXAMPLE_RULE_PATTERN in blocks
    assert EXAMPLE_RULE_PATTERN == {"source": [EVENT_SOURCE], "detail-type": [COMPLETED, FAILED]}
