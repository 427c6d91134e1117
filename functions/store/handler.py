"""Store Lambda."""

from functions.common.workflow import step_handler
from functions.store.logic import store_job

handler = step_handler(store_job, "videogen-store")
