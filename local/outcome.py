"""What `videogen generate` ends with: the outcome of one run, and its `--json` object.

Kept apart from local/generate.py (which loads the whole local stack) so that a run refused before anything
started still answers with the same object, every key present, without that start-up cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["completed", "failed", "cancelled"]


@dataclass
class GenerateOutcome:
    """``id`` and ``model`` are None when the run ended before a job (or a valid model) existed."""

    id: str | None
    status: str
    model: str | None
    s3_uri: str | None = None
    file: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    cost_usd: float | None = None
    error: dict[str, Any] | None = None
    event: dict[str, Any] | None = None

    @classmethod
    def not_started(cls, status: Status, error: dict[str, Any], model: str | None = None) -> GenerateOutcome:
        """A run that ended before any job existed: refused input, a stack that could not start, Ctrl-C."""
        return cls(id=None, status=status, model=model, error=error)

    def as_json(self) -> dict[str, Any]:
        """The --json contract: every key, always (null where unknown)."""
        return {
            "id": self.id,
            "status": self.status,
            "model": self.model,
            "s3_uri": self.s3_uri,
            "file": self.file,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "cost_usd": self.cost_usd,
            "error": self.error,
        }
