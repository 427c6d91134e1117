"""Finalize Lambda."""

from functions.common.workflow import step_handler
from functions.finalize.logic import finalize_job

handler = step_handler(finalize_job, "videogen-finalize")
