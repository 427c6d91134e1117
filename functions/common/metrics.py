"""The product's CloudWatch metrics: what the dashboard and alarms read (infra/monitoring.py).

The functions emit them as CloudWatch Embedded Metric Format lines on stdout (Powertools Metrics), which Lambda
sends to CloudWatch Logs and CloudWatch turns into metrics: no PutMetricData calls, no extra permissions. The
local stack sets POWERTOOLS_METRICS_DISABLED, so nothing is printed among the CLI's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

METRICS_NAMESPACE = "videogen"
METRICS_SERVICE = "videogen"
METRICS_DIMENSIONS = {"service": METRICS_SERVICE}
"""The dimensions each metric is emitted with (Powertools adds ``service``; add no others, or the dashboard's
queries no longer match)."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: MetricUnit
    description: str


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("JobsCreated", MetricUnit.Count, "A job record was created (API, inbox or event)"),
        MetricSpec("JobsCompleted", MetricUnit.Count, "A job finished with its video stored (its terminal event)"),
        MetricSpec("JobsFailed", MetricUnit.Count, "A job finished failed (its terminal event)"),
        MetricSpec("JobsCancelled", MetricUnit.Count, "A job was cancelled (its terminal event)"),
        MetricSpec("JobDuration", MetricUnit.Seconds, "Created to finished, for every terminal job"),
        MetricSpec("ProviderDuration", MetricUnit.Seconds, "Submitted to the provider's output being ready (Poll)"),
        MetricSpec("StoreDuration", MetricUnit.Seconds, "Streaming the video into S3, verified (Store)"),
        MetricSpec("StoredBytes", MetricUnit.Bytes, "Size of each stored video (Store)"),
        MetricSpec("StoreFailures", MetricUnit.Count, "A Store attempt that raised (Store)"),
        MetricSpec("CostUsd", MetricUnit.NoUnit, "Estimated provider cost of each completed job, in USD"),
    )
}

TERMINAL_STATUS_METRICS = {"completed": "JobsCompleted", "failed": "JobsFailed", "cancelled": "JobsCancelled"}


def emit_metrics(values: Mapping[str, float]) -> None:
    """Emit these product metrics now, as one EMF record (nothing when POWERTOOLS_METRICS_DISABLED is set)."""
    unknown = set(values) - set(METRICS)
    if unknown:
        raise KeyError(f"not product metrics: {sorted(unknown)}; add them to METRICS first")
    metrics = Metrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)
    try:
        for name, value in values.items():
            metrics.add_metric(name=name, unit=METRICS[name].unit, value=value)
        metrics.flush_metrics()
    finally:
        metrics.clear_metrics()  # Powertools keeps the set process-wide and, when disabled, never clears it
