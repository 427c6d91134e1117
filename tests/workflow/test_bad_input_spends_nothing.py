"""Bad input never reaches a provider and leaves nothing behind: no job record, no execution."""

from __future__ import annotations

from typing import Any, cast

import boto3
import pytest

from functions.common.errors import InvalidRequestError
from tests.unit.test_video_request import BAD_REQUESTS, fake_resolver
from tests.workflow.harness import WorkflowHarness


def test_every_bad_request_is_refused_before_anything_is_created_or_sent(workflow: WorkflowHarness) -> None:
    assert len(BAD_REQUESTS) >= 30
    for case in BAD_REQUESTS:
        data, param, fragment = (cast(Any, value) for value in case.values)
        # Given a request wrong in one way / When an entry point tries to start it
        with pytest.raises(InvalidRequestError) as refused:
            workflow.start(dict(data), resolve=fake_resolver, trusted=False)
        # Then the error names the field and the reason
        assert refused.value.param == param, case.id
        assert fragment in refused.value.message, case.id
    # And nothing reached the simulator, no job record exists and no execution was started
    assert workflow.simulator.received == []
    assert boto3.client("dynamodb").scan(TableName=workflow.resources.table)["Count"] == 0
    executions = boto3.client("stepfunctions").list_executions(stateMachineArn=workflow.resources.state_machine_arn)
    assert executions["executions"] == []
