"""API: routes proxied to the api function behind the Lambda authorizer; logs, throttling, usage plan, CORS."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from functions.api.keys import KEY_PREFIX, bearer_key
from infra.config import (
    API_BINARY_MEDIA_TYPES,
    API_ROUTES,
    API_STAGE,
    AUTHORIZER_CACHE_SECONDS,
    AUTHORIZER_TOKEN_PATTERN,
)
from tests.infra.conftest import Template


def route_paths(template: Template) -> dict[str, str]:
    """logical id of each AWS::ApiGateway::Resource -> its full path."""
    resources = template.of_type("AWS::ApiGateway::Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str) -> str:
        if logical_id not in paths:
            props = resources[logical_id]["Properties"]
            parent = props["ParentId"]
            prefix = path_of(parent["Ref"]) if "Ref" in parent else ""
            paths[logical_id] = f"{prefix}/{props['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def methods(template: Template) -> list[tuple[str, dict[str, Any]]]:
    """(path, properties) of every method; the root resource's path is "/"."""
    paths = route_paths(template)
    return [
        (paths[resource["Ref"]] if "Ref" in resource else "/", m["Properties"])
        for m in template.of_type("AWS::ApiGateway::Method").values()
        for resource in [m["Properties"]["ResourceId"]]
    ]


def stage(template: Template) -> tuple[str, dict[str, Any]]:
    name, resource = template.one("AWS::ApiGateway::Stage")
    return name, resource["Properties"]


def test_every_route_proxies_every_method_to_the_api_function_behind_the_authorizer(template: Template) -> None:
    authorizer, _ = template.one("AWS::ApiGateway::Authorizer")
    api_function, _ = template.function("api")
    found = methods(template)
    assert sorted(path for path, _ in found) == sorted(API_ROUTES)
    for path, method in found:
        assert method["HttpMethod"] == "ANY", path
        assert method["AuthorizationType"] == "CUSTOM", path
        assert method["AuthorizerId"] == {"Ref": authorizer}, path
        assert method["RequestParameters"] == {"method.request.header.Authorization": True}
        assert "RequestValidatorId" in method
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert json.dumps({"Fn::GetAtt": [api_function, "Arn"]}) in json.dumps(integration["Uri"])


def test_authorizer_is_the_authorizer_function_on_the_bearer_header(template: Template) -> None:
    _, authorizer = template.one("AWS::ApiGateway::Authorizer")
    props = authorizer["Properties"]
    function, _ = template.function("authorizer")
    assert props["Type"] == "TOKEN"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == AUTHORIZER_CACHE_SECONDS
    assert props["IdentityValidationExpression"] == AUTHORIZER_TOKEN_PATTERN
    assert function in json.dumps(props["AuthorizerUri"])


def test_authorizer_pattern_accepts_every_key_the_api_issues_and_nothing_else() -> None:
    # Given keys as functions.api.keys makes them, and the headers clients send
    pattern = re.compile(AUTHORIZER_TOKEN_PATTERN)
    for _ in range(200):
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        assert bearer_key(f"Bearer {key}") == key
        for scheme in ("Bearer", "bearer", "BEARER"):
            assert pattern.match(f"{scheme} {key}"), key
    # Then anything that is not a Bearer token never reaches the authorizer
    for header in ("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a b", "vg_abc"):
        assert not pattern.match(header), header


def test_rest_api_is_regional_with_binary_uploads(template: Template) -> None:
    _, api = template.one("AWS::ApiGateway::RestApi")
    props = api["Properties"]
    assert props["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert props["BinaryMediaTypes"] == list(API_BINARY_MEDIA_TYPES)


def test_stage_logs_traces_and_throttles(template: Template) -> None:
    _, props = stage(template)
    assert props["StageName"] == API_STAGE
    assert props["TracingEnabled"] is True
    access = props["AccessLogSetting"]
    log_group = template.by_path("/Api/AccessLogs/Resource")
    assert {"Ref": log_group} in access["DestinationArn"]["Fn::Join"][1]
    assert template.props(log_group)["RetentionInDays"] == 30
    fields = json.loads(access["Format"])
    assert {"requestId", "ip", "status", "httpMethod", "resourcePath", "user"} <= set(fields)
    [settings] = props["MethodSettings"]
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (20, 40)


def test_usage_plan_throttles_and_has_a_daily_quota(template: Template) -> None:
    _, plan = template.one("AWS::ApiGateway::UsagePlan")
    props = plan["Properties"]
    assert props["Throttle"] == {"BurstLimit": 40, "RateLimit": 20}
    assert props["Quota"] == {"Limit": 10_000, "Period": "DAY"}
    [api_stage] = props["ApiStages"]
    assert api_stage["Stage"] == {"Ref": stage(template)[0]}


def test_the_usage_plan_meters_every_call_through_the_key_the_authorizer_supplies(template: Template) -> None:
    # API Gateway applies a usage plan only to requests that carry one of its keys: without this the plan's
    # quota would be configuration that never applies.
    plan_id, _ = template.one("AWS::ApiGateway::UsagePlan")
    key_id, _ = template.one("AWS::ApiGateway::ApiKey")
    [(_, plan_key)] = template.of_type("AWS::ApiGateway::UsagePlanKey").items()
    assert plan_key["Properties"] == {"KeyId": {"Ref": key_id}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": plan_id}}
    # Every route requires the key, and the key comes from the authorizer, never from the caller
    _, rest_api = template.one("AWS::ApiGateway::RestApi")
    assert rest_api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    for path, method in methods(template):
        if method["HttpMethod"] != "OPTIONS":
            assert method["ApiKeyRequired"] is True, path
    # The authorizer knows which key, and may read that key only
    _, authorizer = template.function("authorizer")
    assert authorizer["Environment"]["Variables"]["USAGE_PLAN_KEY_ID"] == {"Ref": key_id}
    reads = [s for s in template.function_statements("authorizer") if s["Action"] == "apigateway:GET"]
    assert len(reads) == 1
    assert {"Ref": key_id} in reads[0]["Resource"]["Fn::Join"][1]


def test_gateway_errors_speak_the_openai_error_shape(template: Template) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in template.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED", "QUOTA_EXCEEDED", "REQUEST_TOO_LARGE"} <= set(responses)
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    for props in responses.values():
        body = props["ResponseTemplates"]["application/json"]
        # API Gateway puts a quoted JSON string where $context.error.messageString stands
        error = json.loads(body.replace("$context.error.messageString", '"message"'))["error"]
        assert set(error) == {"message", "type", "code", "param"}
        assert "ResponseParameters" not in props  # no CORS headers unless CORS is configured


def test_no_cors_by_default(template: Template) -> None:
    assert all(method["HttpMethod"] != "OPTIONS" for _, method in methods(template))


def test_cors_when_configured(full: Template) -> None:
    options = [(path, m) for path, m in methods(full) if m["HttpMethod"] == "OPTIONS"]
    # Given corsAllowOrigins / Then every route (and the ones above it) answers preflight without auth
    assert set(API_ROUTES) <= {path for path, _ in options}
    for _, method in options:
        assert method["AuthorizationType"] == "NONE"
        headers = method["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == "'https://app.example.com'"
        assert "Idempotency-Key" in headers["method.response.header.Access-Control-Allow-Headers"]
    # and API Gateway's own errors carry the origin too
    for response in full.of_type("AWS::ApiGateway::GatewayResponse").values():
        assert response["Properties"]["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
        }
    [settings] = stage(full)[1]["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (5, 10)


def test_stage_url_is_an_output(template: Template) -> None:
    outputs = template.outputs()
    rest_api, _ = template.one("AWS::ApiGateway::RestApi")
    stage_name, _ = stage(template)
    url = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url[0] == "https://"
    assert {"Ref": rest_api} in url
    assert {"Ref": stage_name} in url
    assert json.dumps(outputs["OpenAiBaseUrl"]["Value"]).endswith('/v1"]]}')
