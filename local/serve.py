"""`videogen serve`: the local stack plus the OpenAI-compatible API on loopback, until Ctrl-C."""

from __future__ import annotations

import os
import threading

from rich.console import Console

from local.api_server import LocalApiServer
from local.stack import local_stack

SIMULATOR_POLL_INTERVAL = 1


def serve(host: str = "127.0.0.1", port: int = 8080) -> int:
    console = Console(stderr=True)
    with (
        local_stack(simulated_poll_interval=SIMULATOR_POLL_INTERVAL) as stack,
        LocalApiServer(stack, host, port) as api,
    ):
        given = os.environ.get("VIDEOGEN_API_KEY")
        key, record = api.keys.create("local", "videogen serve", key=given or None)
        provider = "the built-in CometAPI simulator" if stack.simulated else stack.provider_base_url
        console.print(f"videogen API   {api.base_url}   (provider: {provider})")
        console.print(f"API key        {key}" + ("" if given else "   (generated: set VIDEOGEN_API_KEY to choose it)"))
        console.print(f"owner          {record.owner}")
        console.print(
            f"local AWS      {stack.endpoint_url}   (videogen keys --endpoint-url {stack.endpoint_url} "
            f"--table {stack.resources.api_keys_table} ...)"
        )
        console.print("Point the openai SDK at it: OpenAI(base_url=<videogen API>, api_key=<API key>). Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopped")
    return 0
