"""Poll Lambda."""

from functions.common.workflow import step_handler
from functions.poll.logic import poll_job

handler = step_handler(poll_job, "videogen-poll")
