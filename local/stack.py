"""The embedded local stack: the product on a laptop, with no AWS account and no daemons.

- moto in server mode on a free loopback port, with its Step Functions executor on;
- the workflow's Lambda task states routed to the real handlers in this process (local/lambdas.py, the
  same registry the workflow tests use);
- resources created from infra.config by local/resources.py, the state machine from the same ASL file;
- the CometAPI key in (local) Secrets Manager, read by the handlers exactly as in AWS;
- the CometAPI simulator on a free port, unless COMETAPI_KEY is set (then the real provider is used);
- the intake (S3 inbox objects, "Video Generation Requested" events) and webhook deliveries running in the
  background, as EventBridge and SQS invoke them when deployed (local/event_delivery.py).

Everything in this process talks to moto through AWS_ENDPOINT_URL, which the stack sets while it runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import requests

from functions.common.container import forget_container_state
from functions.common.jobs import JobRepository
from functions.common.settings import DEFAULT_COMETAPI_BASE_URL
from local.event_delivery import QueuePump, deliver_intake_events, deliver_webhook_events
from local.lambdas import LambdaRegistry, route_invocations
from local.moto_dynamodb import atomic_dynamodb_writes
from local.resources import REGION, LocalResources, provision, store_provider_key

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": REGION}
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
SIMULATOR_TIME_SCALE = 0.02
"""A two-minute render takes about 2.4 s: quick, yet long enough to watch the progress."""


@dataclass
class LocalStack:
    endpoint_url: str
    resources: LocalResources
    registry: LambdaRegistry
    provider_base_url: str
    simulated: bool

    def client(self, service: str) -> Any:
        make_client: Any = boto3.client  # one name for every service: the stubs type each service separately
        return make_client(service, region_name=REGION, endpoint_url=self.endpoint_url)

    @property
    def jobs(self) -> JobRepository:
        dynamodb = boto3.resource("dynamodb", region_name=REGION, endpoint_url=self.endpoint_url)
        return JobRepository(dynamodb.Table(self.resources.table))


@contextmanager
def patched_environ(values: dict[str, str | None]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def local_stack(
    *,
    simulator_time_scale: float = SIMULATOR_TIME_SCALE,
    poll_interval: int | None = None,
    simulated_poll_interval: int | None = None,
) -> Iterator[LocalStack]:
    """Start everything, yield the running stack, stop everything (also on Ctrl-C).

    ``poll_interval`` fixes the polling interval; ``simulated_poll_interval`` does so only when the simulator
    stands in for CometAPI (its renders take seconds, so the real-world policy would mostly wait).
    """
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - moto is only for the local stack

    api_key = os.environ.get("COMETAPI_KEY") or None
    simulated = api_key is None
    if simulated and poll_interval is None:
        poll_interval = simulated_poll_interval
    with ExitStack() as stack:
        if api_key:
            base_url = os.environ.get("COMETAPI_BASE_URL") or DEFAULT_COMETAPI_BASE_URL
        else:
            from local.simulator import CometApiSimulator  # noqa: PLC0415 - PyAV loads only when simulating

            simulator = stack.enter_context(CometApiSimulator(time_scale=simulator_time_scale))
            base_url, api_key = simulator.base_url, simulator.api_key

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines among the progress
        # moto notes that it does not evaluate the batch Map's ToleratedFailureCount; AWS does, and locally no
        # line fails the Map itself (bad lines are reported, not raised), so the note is noise to a user.
        logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor").setLevel(logging.ERROR)
        stack.enter_context(atomic_dynamodb_writes())  # executions run in threads: keep DynamoDB's atomicity
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        stack.callback(server.stop)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its backends in this process, not in the server: without this a second local_stack() in
        # the same process finds the first one's tables (ResourceInUseException).
        stack.callback(requests.post, f"{endpoint}/moto-api/reset", timeout=10)
        requests.post(f"{endpoint}/moto-api/config", json=MOTO_CONFIG, timeout=10).raise_for_status()

        # MOTO_PORT: where moto's Step Functions executor sends its own Lambda calls in server mode.
        base_env: dict[str, str | None] = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "MOTO_PORT": str(port)}
        stack.enter_context(patched_environ(base_env))
        resources = provision(endpoint_url=endpoint)

        handler_env: dict[str, str | None] = {
            **resources.environment(),
            **store_provider_key(api_key, base_url=base_url, endpoint_url=endpoint),
            "COMETAPI_KEY": None,  # the handlers read the key from Secrets Manager, as deployed
            "VIDEOGEN_POLL_INTERVAL_SECONDS": str(poll_interval) if poll_interval is not None else None,
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            # The handlers' metrics are EMF lines on stdout, for CloudWatch; here stdout is the CLI's.
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        stack.enter_context(patched_environ(handler_env))
        # Clients capture AWS_ENDPOINT_URL when they are made, and the handlers keep theirs for the container's
        # life (Powertools keeps one Secrets Manager client for the process): ones made before this stack, or
        # by a stack before it, would send the handlers' calls elsewhere, even to real AWS. Drop them on the
        # way in and out.
        forget_container_state()
        stack.callback(forget_container_state)
        registry = stack.enter_context(route_invocations(LambdaRegistry.workflow()))
        # What EventBridge and SQS would invoke: the intake (S3 inbox, "requested" events) and the webhooks.
        for deliver, queue_url in (
            (deliver_intake_events, resources.intake_queue_url),
            (deliver_webhook_events, resources.webhook_queue_url),
        ):
            stack.enter_context(QueuePump(deliver, registry, queue_url))
        yield LocalStack(
            endpoint_url=endpoint,
            resources=resources,
            registry=registry,
            provider_base_url=base_url,
            simulated=simulated,
        )
