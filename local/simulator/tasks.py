"""Tasks and the simulator's shared state: what was created, how far each render is, what was recorded."""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from functions.providers.catalog import load_catalog

from . import mp4
from .faults import NO_FAULTS, FaultCounter, Faults
from .wire import ReceivedRequest

DEFAULT_RENDER_SECONDS = 180.0
QUEUED_SHARE = 0.1

Clock = Callable[[], float]
PollInterruption = Literal["not_exist", "not_exist_200", "html", "throttled"]


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


@dataclass
class Task:
    id: str
    dialect: str
    model: str
    seconds: int
    width: int
    height: int
    render_seconds: float
    created: float
    created_wall: float
    faults: Faults = NO_FAULTS
    fields: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    downloads: int = 0
    cancelled_at: float | None = None
    media_token: str | None = None
    media_links: int = 0
    media_expires_wall: float | None = None
    video: bytes | None = None

    def phase(self, now: float) -> tuple[Phase, int]:
        """Where the render is at `now`, and its coarse progress (a multiple of 10)."""
        if self.cancelled_at is not None:
            return Phase.CANCELLED, 0
        if self.faults.stuck:
            return Phase.QUEUED, 0
        elapsed = now - self.created
        if elapsed >= self.render_seconds:
            return (Phase.FAILED if self.faults.fails else Phase.SUCCEEDED), 100
        if elapsed < QUEUED_SHARE * self.render_seconds:
            return Phase.QUEUED, 0
        return Phase.RUNNING, min(90, int(elapsed / self.render_seconds * 10) * 10)

    def finished_wall(self) -> float:
        """Unix time the render ended (or ends)."""
        return self.created_wall + self.render_seconds

    def updated_wall(self, now: float) -> float:
        return self.created_wall + min(max(0.0, now - self.created), self.render_seconds)


@dataclass
class MediaLink:
    token: str
    signature: str
    task_id: str
    expires: float
    refused: bool = False
    """Answers 403 "Request has expired" whatever the clock says (the `expire-once` fault's first link)."""


def render_seconds_for(dialect: str, provider_model: str) -> float:
    """The catalog's typical render time for a provider model name, before time scaling."""
    for spec in load_catalog().models.values():
        if spec.dialect == dialect and spec.provider_model == provider_model:
            return float(spec.latency.typical_seconds)
    return DEFAULT_RENDER_SECONDS


class SimState:
    """Everything the request handlers share. One lock guards it all: requests are few and quick."""

    def __init__(
        self,
        *,
        time_scale: float,
        shape: str,
        media_ttl_seconds: float,
        api_key: str,
        clock: Clock,
        wall_clock: Clock,
    ) -> None:
        self.lock = threading.RLock()
        self.time_scale = time_scale
        self.default_shape = shape
        self.shape = shape
        self.media_ttl_seconds = media_ttl_seconds
        self.api_key = api_key
        self.clock = clock
        self.wall_clock = wall_clock
        self.base_url = ""
        self.counter = FaultCounter()
        self.global_faults = NO_FAULTS
        self.tasks: dict[str, Task] = {}
        self.kling_external_ids: dict[str, str] = {}
        self.media: dict[str, MediaLink] = {}
        self.records: list[ReceivedRequest] = []
        self.records_generation = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self.tasks.clear()
            self.kling_external_ids.clear()
            self.media.clear()
            self.records.clear()
            self.records_generation += 1
            self.errors.clear()
            self.counter.clear()
            self.global_faults = NO_FAULTS
            self.shape = self.default_shape

    def set_global_faults(self, faults: Faults) -> None:
        with self.lock:
            self.global_faults = faults
            self.counter.clear()

    def record(self, request: ReceivedRequest) -> tuple[int, int]:
        """Keep a request; the answer is added later by complete_record with the returned handle."""
        with self.lock:
            self.records.append(request)
            return self.records_generation, len(self.records) - 1

    def complete_record(self, handle: tuple[int, int], status: int | None, task_id: str | None) -> None:
        generation, index = handle
        with self.lock:
            if generation == self.records_generation:
                self.records[index] = dataclasses.replace(self.records[index], status=status, task_id=task_id)

    def add_task(
        self,
        task_id: str,
        *,
        dialect: str,
        model: str,
        seconds: int,
        width: int,
        height: int,
        faults: Faults,
        fields: dict[str, Any] | None = None,
    ) -> Task:
        with self.lock:
            task = Task(
                id=task_id,
                dialect=dialect,
                model=model,
                seconds=seconds,
                width=width,
                height=height,
                render_seconds=render_seconds_for(dialect, model) * self.time_scale,
                created=self.clock(),
                created_wall=self.wall_clock(),
                faults=faults,
                fields=dict(fields or {}),
            )
            self.tasks[task_id] = task
            return task

    def task(self, task_id: str, dialect: str) -> Task | None:
        with self.lock:
            task = self.tasks.get(task_id)
            return task if task is not None and task.dialect == dialect else None

    def shape_for(self, task: Task) -> str:
        return task.faults.shape or self.shape

    def begin_poll(self, task: Task) -> PollInterruption | None:
        """Count a status poll; say whether a fault answers it instead of the task's status."""
        with self.lock:
            task.polls += 1
            if task.polls <= task.faults.not_exist:
                return "not_exist_200" if task.faults.not_exist_200 else "not_exist"
            if task.polls <= task.faults.html:
                return "html"
            if task.polls <= task.faults.not_exist + task.faults.throttled:
                return "throttled"
            return None

    def media_url(self, task: Task) -> str:
        """The task's (temporary) download URL, minted on first use; it expires media_ttl_seconds later.

        With `expire-once` the first link minted is refused (403) and, once it has been, the next call mints a
        fresh one that works (see serve_media).
        """
        with self.lock:
            if task.media_token is None:
                link = MediaLink(
                    token=secrets.token_urlsafe(18),
                    signature=secrets.token_hex(16),
                    task_id=task.id,
                    expires=self.clock() + self.media_ttl_seconds,
                    refused=task.faults.expire_once and task.media_links == 0,
                )
                self.media[link.token] = link
                task.media_token = link.token
                task.media_links += 1
                task.media_expires_wall = self.wall_clock() + self.media_ttl_seconds
            link = self.media[task.media_token]
            return f"{self.base_url}/media/{link.token}.mp4?sig={link.signature}"

    def video_bytes(self, task: Task) -> bytes:
        if task.video is None:
            task.video = mp4.task_video(task.id, task.seconds, task.width, task.height)
        return task.video
