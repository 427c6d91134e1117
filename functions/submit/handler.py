"""Submit Lambda."""

from functions.common.workflow import step_handler
from functions.submit.logic import submit_job

handler = step_handler(submit_job, "videogen-submit")
