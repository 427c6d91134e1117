"""Polling benchmark: our poll policy against the tutorial's fixed 10 s loop, on the same simulated jobs.

Jobs. For every model in the catalog, ``--jobs`` jobs (default 1,000) with a seeded RNG (``--seed``). A job's
render time T is drawn from a TRIANGULAR distribution over [latency.min_seconds, latency.max_seconds] with mode
latency.typical_seconds (continuous seconds). While it runs, a poll at elapsed t sees progress
``10 × floor(clamp(100·t/T + N(0, 3), 0, 99) / 10)``: coarse steps of 10, proportional to elapsed/total, with a
little Gaussian noise (σ = 3 points) drawn fresh on every poll; only where the dialect reports progress
(``videos``, ``runway``); Kling reports none (None). A poll at t ≥ T sees the job done.

Policies, run on the same T for each job (progress noise comes from a per-job RNG, so both see the same world):
- ours: ``functions.common.poll_policy`` as the catalog configures it;
- baseline: the tutorial's loop, first poll at 10 s then every 10 s (the policy with ``fixed_interval=10``).
Neither gives up: every T is ≤ latency.max_seconds (≤ 360 s), inside both the tutorial's 600 s and max_wait.

Figures, per model and pooled:
- polls per job; detection delay (first poll at or after T, minus T), p50 and p95, linear interpolation;
- Step Functions Standard state transitions per job = 3 per poll (Wait + Poll + Choice) + 5 (Submit, Store,
  Finalize, execution start and end);
- orchestration cost per 1,000 jobs = transitions × $0.025 per 1,000 + poll Lambda compute at 256 MB × 300 ms
  per invocation × $0.0000166667 per GB-second (Lambda's per-request fee and Submit/Store/Finalize compute are
  left out: they are the same for both policies).

Prints figures, asserts nothing. The last line is the summary other tools read:
``polling jobs=N polls_ratio=R p95_delay_s=A baseline_p95_delay_s=B`` (pooled; R = our polls / baseline polls).
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from functions.common.poll_policy import first_wait_seconds, next_wait_seconds
from functions.providers.catalog import Dialect, ModelSpec, load_catalog

BASELINE_INTERVAL_SECONDS = 10
TRANSITIONS_PER_POLL = 3  # Wait + Poll + Choice
TRANSITIONS_FIXED = 5  # Submit + Store + Finalize + execution start + execution end
USD_PER_TRANSITION = 0.025 / 1000
LAMBDA_GB = 256 / 1024
LAMBDA_SECONDS_PER_POLL = 0.3
USD_PER_GB_SECOND = 0.0000166667
PROGRESS_NOISE_POINTS = 3.0
PROGRESS_DIALECTS = frozenset({Dialect.VIDEOS, Dialect.RUNWAY})

# (spec, elapsed or None for the first wait, progress) -> seconds until the next poll
Policy = Callable[[ModelSpec, float | None, int | None], int]


def ours(spec: ModelSpec, elapsed: float | None, progress: int | None) -> int:
    if elapsed is None:
        return first_wait_seconds(spec)
    return next_wait_seconds(spec, elapsed_seconds=elapsed, progress=progress)


def baseline(spec: ModelSpec, elapsed: float | None, progress: int | None) -> int:
    if elapsed is None:
        return first_wait_seconds(spec, fixed_interval=BASELINE_INTERVAL_SECONDS)
    return next_wait_seconds(spec, elapsed_seconds=elapsed, progress=progress, fixed_interval=BASELINE_INTERVAL_SECONDS)


@dataclass
class Tally:
    polls: int = 0
    delays: list[float] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.polls += other.polls
        self.delays.extend(other.delays)

    @property
    def jobs(self) -> int:
        return len(self.delays)

    def polls_per_job(self) -> float:
        return self.polls / self.jobs

    def transitions_per_job(self) -> float:
        return TRANSITIONS_PER_POLL * self.polls_per_job() + TRANSITIONS_FIXED

    def usd_per_1000_jobs(self) -> float:
        transitions = self.transitions_per_job() * 1000 * USD_PER_TRANSITION
        compute = self.polls_per_job() * 1000 * LAMBDA_GB * LAMBDA_SECONDS_PER_POLL * USD_PER_GB_SECOND
        return transitions + compute


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def reported_progress(elapsed: float, total: float, rng: random.Random) -> int:
    exact = 100 * elapsed / total + rng.gauss(0, PROGRESS_NOISE_POINTS)
    return int(min(99.0, max(0.0, exact)) // 10 * 10)


def run_job(spec: ModelSpec, total: float, policy: Policy, noise: random.Random) -> tuple[int, float]:
    """Polls until the job is seen done; returns (polls, detection delay in seconds)."""
    reports_progress = spec.dialect in PROGRESS_DIALECTS
    t = float(policy(spec, None, None))
    polls = 1
    while t < total:
        progress = reported_progress(t, total, noise) if reports_progress else None
        t += policy(spec, t, progress)
        polls += 1
    return polls, t - total


def simulate(spec: ModelSpec, jobs: int, seed: int) -> tuple[Tally, Tally]:
    rng = random.Random(f"{seed}:{spec.id}")
    mine, theirs = Tally(), Tally()
    latency = spec.latency
    for _ in range(jobs):
        total = rng.triangular(latency.min_seconds, latency.max_seconds, latency.typical_seconds)
        job_seed = rng.getrandbits(64)
        for tally, policy in ((mine, ours), (theirs, baseline)):
            polls, delay = run_job(spec, total, policy, random.Random(job_seed))
            tally.polls += polls
            tally.delays.append(delay)
    return mine, theirs


def row(name: str, dialect: str, mine: Tally, theirs: Tally) -> str:
    return (
        f"{name:<18} {dialect:<7} "
        f"{mine.polls_per_job():6.1f} {theirs.polls_per_job():6.1f} {mine.polls / theirs.polls:5.2f}  "
        f"{mine.transitions_per_job():6.1f} {theirs.transitions_per_job():6.1f}  "
        f"{percentile(mine.delays, 50):5.1f} {percentile(theirs.delays, 50):5.1f}  "
        f"{percentile(mine.delays, 95):5.1f} {percentile(theirs.delays, 95):5.1f}  "
        f"{mine.usd_per_1000_jobs():7.3f} {theirs.usd_per_1000_jobs():7.3f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1000, help="simulated jobs per catalog model (default 1000)")
    parser.add_argument("--seed", type=int, default=20260501, help="RNG seed (default 20260501)")
    args = parser.parse_args(argv)

    catalog = load_catalog()
    print(f"polling benchmark: {args.jobs} jobs per model x {len(catalog.models)} models, seed {args.seed}")
    print("render time T ~ triangular(latency.min_seconds, latency.max_seconds, mode=latency.typical_seconds)")
    print(
        f"progress (videos, runway only) = 10*floor(clamp(100*t/T + N(0,{PROGRESS_NOISE_POINTS:g}), 0, 99)/10); "
        "kling: none"
    )
    print(
        f"baseline: tutorial loop, first poll at {BASELINE_INTERVAL_SECONDS} s, then every "
        f"{BASELINE_INTERVAL_SECONDS} s; ours: functions/common/poll_policy.py with catalog polling values"
    )
    print(
        f"transitions/job = {TRANSITIONS_PER_POLL} per poll (Wait+Poll+Choice) + {TRANSITIONS_FIXED} "
        "(Submit, Store, Finalize, start, end)"
    )
    print(
        "cost/1000 jobs = transitions x $0.025/1000 + polls x 256 MB x 300 ms x $0.0000166667/GB-s "
        "(request fee excluded)"
    )
    print()
    print(
        f"{'model':<18} {'dialect':<7} {'polls/job':>13} {'ratio':>5}  {'transitions':>13}  "
        f"{'p50 delay s':>11}  {'p95 delay s':>11}  {'$/1000 jobs':>15}"
    )
    print(
        f"{'':<18} {'':<7} {'ours':>6} {'base':>6} {'':>5}  {'ours':>6} {'base':>6}  "
        f"{'ours':>5} {'base':>5}  {'ours':>5} {'base':>5}  {'ours':>7} {'base':>7}"
    )

    pooled_mine, pooled_theirs = Tally(), Tally()
    for spec in catalog.models.values():
        mine, theirs = simulate(spec, args.jobs, args.seed)
        print(row(spec.id, spec.dialect.value, mine, theirs))
        pooled_mine.add(mine)
        pooled_theirs.add(theirs)
    print(row("pooled", "", pooled_mine, pooled_theirs))
    print()

    ratio = pooled_mine.polls / pooled_theirs.polls
    mine_p95 = percentile(pooled_mine.delays, 95)
    theirs_p95 = percentile(pooled_theirs.delays, 95)
    print(
        f"polling jobs={pooled_mine.jobs} polls_ratio={ratio:.2f} p95_delay_s={mine_p95:.1f} "
        f"baseline_p95_delay_s={theirs_p95:.1f}"
    )


if __name__ == "__main__":
    main()
