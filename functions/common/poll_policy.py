"""How long the workflow's Wait state sleeps before the next Poll: pure functions of the catalog and the job's state.

The rule, all numbers from the model's catalog entry (``latency`` and ``polling``):

- First wait: ``polling.first_wait_seconds``, never later than ``latency.min_seconds`` (the earliest a render
  finishes), so no job can be done long before we first look.
- With progress (``/v1/videos`` and Runway report 0–100 in coarse steps of 10): read ``p`` as the middle of its
  step, ``q = p + 5``, extrapolate linearly to the time left, ``elapsed × (100 − q) / q``, and wait HALF of it.
- Without progress (Kling, or 0 = queued/just started): wait a FIFTEENTH of the distance to the model's slowest
  expected completion, ``|latency.max_seconds − elapsed|``: the wait shrinks as the job nears the end of its
  latency range, and grows again once the job is overdue (probably queued or stuck: back off).
- Every computed wait is rounded to whole seconds (a Step Functions Wait takes an integer) and clamped to
  ``[polling.min_interval_seconds, polling.max_interval_seconds]``.
- A ``fixed_interval`` (a request's ``poll_interval_seconds`` or ``VIDEOGEN_POLL_INTERVAL_SECONDS``; the caller
  resolves which) overrides all of the above, the first wait included; 0 is allowed (tests compress time with it).

``benchmarks/polling.py`` measures this rule against the tutorial's fixed 10 s loop on the same simulated jobs.
"""

from __future__ import annotations

from functions.providers.catalog import ModelSpec

PROGRESS_SHARE = 0.5
"""With progress: the share of the extrapolated time left that we wait (half: the estimate is good, not exact)."""

PROGRESS_STEP_MIDPOINT = 5
"""Progress arrives in steps of 10, so a reported ``p`` means somewhere in ``[p, p + 10)``: read it as ``p + 5``."""

BLIND_SHARE = 1 / 15
"""Without progress: the share of the distance to the model's slowest expected completion that we wait."""


def first_wait_seconds(spec: ModelSpec, *, fixed_interval: int | None = None) -> int:
    """Seconds from Submit to the first Poll."""
    if fixed_interval is not None:
        return _checked_fixed(fixed_interval)
    return max(1, min(spec.polling.first_wait_seconds, spec.latency.min_seconds))


def next_wait_seconds(
    spec: ModelSpec, *, elapsed_seconds: float, progress: int | None, fixed_interval: int | None = None
) -> int:
    """Seconds from this Poll (``elapsed_seconds`` after Submit, job still running) to the next one."""
    if fixed_interval is not None:
        return _checked_fixed(fixed_interval)
    elapsed = max(0.0, elapsed_seconds)
    if progress is not None and progress > 0:
        reported = min(progress + PROGRESS_STEP_MIDPOINT, 100)
        wait = PROGRESS_SHARE * elapsed * (100 - reported) / reported
    else:
        wait = BLIND_SHARE * abs(spec.latency.max_seconds - elapsed)
    polling = spec.polling
    return max(1, polling.min_interval_seconds, min(polling.max_interval_seconds, round(wait)))


def _checked_fixed(fixed_interval: int) -> int:
    if fixed_interval < 0:
        raise ValueError(f"a fixed poll interval cannot be negative, got {fixed_interval}")
    return fixed_interval
