"""The REST API: OpenAI-compatible video routes proxied to the api function, behind a Lambda authorizer.

Every method needs a Bearer API key, checked by the authorizer (TOKEN type, answer cached per key). The stage
logs access as JSON, traces with X-Ray, and is throttled; a usage plan carries the same limits plus a daily
quota. API Gateway meters a usage plan only through an API Gateway key, so the plan has one, the methods require
it, and the authorizer supplies it (key source AUTHORIZER): callers send only their Bearer key, as with OpenAI.
Errors that API Gateway answers itself (bad key, throttled, too large) have the OpenAI error shape, so SDK
clients report them like any other API error.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import (
    API_BINARY_MEDIA_TYPES,
    API_ROUTES,
    API_STAGE,
    AUTHORIZER_CACHE_SECONDS,
    AUTHORIZER_TOKEN_PATTERN,
)
from infra.nag import acknowledge
from infra.options import StackOptions

CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "OpenAI-Organization", "OpenAI-Project")


def openai_error(error_type: str, code: str) -> str:
    """A gateway response body in the OpenAI error shape (``message`` filled in by API Gateway)."""
    body = {"error": {"message": "__MESSAGE__", "type": error_type, "code": code, "param": None}}
    return json.dumps(body).replace('"__MESSAGE__"', "$context.error.messageString")


GATEWAY_RESPONSES = (
    (apigw.ResponseType.UNAUTHORIZED, "401", "invalid_request_error", "invalid_api_key"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "invalid_request_error", "invalid_api_key"),
    (apigw.ResponseType.THROTTLED, "429", "rate_limit_error", "rate_limit_exceeded"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "rate_limit_error", "quota_exceeded"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "invalid_request_error", "request_too_large"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "invalid_request_error", "bad_request"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "server_error", "server_error"),
)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        authorizer: lambda_.Function,
        options: StackOptions,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
        )
        cors = (
            apigw.CorsOptions(
                allow_origins=list(options.cors_allow_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=list(CORS_HEADERS),
                max_age=Duration.hours(1),
            )
            if options.cors_allow_origins
            else None
        )
        self.authorizer = apigw.TokenAuthorizer(
            self,
            "Authorizer",
            handler=authorizer,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=AUTHORIZER_TOKEN_PATTERN,
            results_cache_ttl=Duration.seconds(AUTHORIZER_CACHE_SECONDS),
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            description="videogen: OpenAI-compatible Videos API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER,
            binary_media_types=list(API_BINARY_MEDIA_TYPES),
            # Account-level role that lets API Gateway write execution logs (one per account and region).
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.DESTROY,
            default_cors_preflight_options=cors,
            deploy_options=apigw.StageOptions(
                stage_name=API_STAGE,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies stay out of the logs
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=options.api_rate_limit,
                throttling_burst_limit=options.api_burst_limit,
            ),
        )
        # The stack's own ApiUrl output replaces the one RestApi adds (same value, generated name).
        self.rest_api.node.try_remove_child("Endpoint")
        self.validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_body=True, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(handler, proxy=True, allow_test_invoke=False)
        for route in API_ROUTES:
            resource = self.rest_api.root.resource_for_path(route)
            resource.add_method(
                "ANY",
                integration,
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM,
                request_validator=self.validator,
                api_key_required=True,  # the usage plan's key, which the authorizer returns for every caller
                # Bodies are validated by the api function (its errors speak the OpenAI shape); API
                # Gateway checks what it can without a model: the credentials header is there.
                request_parameters={"method.request.header.Authorization": True},
            )

        # With one allowed origin, browsers can read API Gateway's own errors too (with several, only the
        # function's responses carry CORS headers: a gateway response cannot choose among origins).
        origins = options.cors_allow_origins
        error_headers = {"Access-Control-Allow-Origin": f"'{origins[0]}'"} if len(origins) == 1 else None
        for response_type, status, error_type, code in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status,
                response_headers=error_headers,
                templates={"application/json": openai_error(error_type, code)},
            )

        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="Default limits of the videogen API (attach API Gateway keys to give callers their own)",
            throttle=apigw.ThrottleSettings(rate_limit=options.api_rate_limit, burst_limit=options.api_burst_limit),
            quota=apigw.QuotaSettings(limit=options.api_daily_quota, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        # A key of its own (not rest_api.add_api_key, which ties it to the stage): the authorizer refers to it,
        # and the stage's deployment depends on the authorizer.
        self.usage_key = apigw.ApiKey(
            self, "UsagePlanKey", description="Metered by the usage plan; supplied by the authorizer, never by callers"
        )
        self.usage_plan.add_api_key(self.usage_key)
        authorizer.add_environment("USAGE_PLAN_KEY_ID", self.usage_key.key_id)
        stack = Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=authorizer,
            actions=["apigateway:GET"],
            resource_arns=[f"arn:{stack.partition}:apigateway:{stack.region}::/apikeys/{self.usage_key.key_id}"],
        )
        self._acknowledge(cors is not None)

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _acknowledge(self, cors: bool) -> None:
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG3",
            "No WAF web ACL by default (about $6 a month before traffic): every route needs a valid API key, "
            "which the authorizer checks before any work, and stage and usage-plan throttling bound the rate.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "Clients authenticate with API keys sent as Bearer tokens, as OpenAI SDKs do, checked by the Lambda "
            "authorizer against hashed keys in DynamoDB; a Cognito authorizer would break SDK compatibility.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "AWS's own policy for the account-level role that lets API Gateway write execution logs; it grants "
            "log writes only, and execution logging (APIG6) needs it.",
        )
        if cors:
            for method in self.rest_api.methods:
                if method.http_method == "OPTIONS":
                    acknowledge(
                        method,
                        "AwsSolutions-APIG4",
                        "CORS preflight (OPTIONS) is answered by a mock integration without credentials, as "
                        "browsers send it without them; it reaches no function and returns only CORS headers.",
                    )
