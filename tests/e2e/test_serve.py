"""End to end: `videogen serve` and `videogen keys` as a user runs them, in a clean shell (no AWS variables).

`videogen serve --port 0` listens on a free port and prints where (the API, its key, the local AWS endpoint
and the keys table); the tests read those lines, call the API with the official openai SDK, manage keys with
`videogen keys --endpoint-url ...`, and stop the server with Ctrl-C, as a user would.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import VideogenProcess, run_videogen, running_videogen

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API is scheduled:DeprecationWarning")

READY = "Ctrl-C stops."


@dataclass(frozen=True)
class Served:
    """A running `videogen serve` and what it printed."""

    process: VideogenProcess
    text: str
    api_url: str
    api_key: str
    endpoint_url: str
    keys_table: str

    @classmethod
    def read(cls, process: VideogenProcess) -> Served:
        text = process.wait_for_stderr(lambda text: READY in text, what="videogen serve to be ready")

        def printed(pattern: str) -> str:
            found = re.search(pattern, text)
            assert found, f"videogen serve did not print {pattern!r}\n{process.explain()}"
            return found[1]

        return cls(
            process=process,
            text=text,
            api_url=printed(r"videogen API (http://\S+/v1)"),
            api_key=printed(r"API key (\S+)"),
            endpoint_url=printed(r"--endpoint-url (http://\S+)"),
            keys_table=printed(r"--table (\S+)"),
        )

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api_url, api_key=key or self.api_key, max_retries=0, timeout=30)


def serve_stopped_cleanly(process: VideogenProcess) -> None:
    run = process.interrupt()
    assert run.returncode == 0, run.explain()
    assert "stopped" in run.stderr_text


@pytest.fixture(scope="module")
def chosen_key() -> str:
    return f"vg_e2e_{secrets.token_urlsafe(16)}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, chosen_key: str) -> Iterator[Served]:
    """Given `videogen serve --port 0` with VIDEOGEN_API_KEY set, started once for this module."""
    with running_videogen(
        "serve", "--port", "0", cwd=tmp_path_factory.mktemp("serve"), env={"VIDEOGEN_API_KEY": chosen_key}
    ) as process:
        yield Served.read(process)
        serve_stopped_cleanly(process)


def keys_command(served: Served, *args: str) -> list[str]:
    return ["keys", "--endpoint-url", served.endpoint_url, "--table", served.keys_table, *args]


# --- serve ----------------------------------------------------------------------------------------------------


def test_serve_uses_videogen_api_key_and_answers_the_openai_sdk(served: Served, chosen_key: str) -> None:
    # Given the server started with VIDEOGEN_API_KEY (the fixture)

    # When the official openai SDK lists videos with that key
    page = served.client(chosen_key).videos.list()

    # Then it answers the (empty) list, the printed key is that one, and no key was generated
    assert page.data == []
    assert served.api_key == chosen_key
    assert "generated" not in served.text


def test_serve_without_videogen_api_key_prints_a_generated_key_that_works(tmp_path: Path) -> None:
    # Given `videogen serve` started without VIDEOGEN_API_KEY
    with running_videogen("serve", "--port", "0", cwd=tmp_path) as process:
        server = Served.read(process)

        # When the openai SDK calls it with the key it printed, and with another key
        page = server.client().videos.list()
        with pytest.raises(openai.AuthenticationError):
            server.client(f"vg_{secrets.token_urlsafe(16)}").videos.list()

        # Then the printed key was generated (and says so), and it is the one that works
        assert "generated" in server.text
        assert server.api_key.startswith("vg_")
        assert page.data == []
        serve_stopped_cleanly(process)


# --- keys -----------------------------------------------------------------------------------------------------


def test_keys_create_list_revoke_against_the_local_stack(served: Served, tmp_path: Path) -> None:
    # Given a running local stack, and a shell with no AWS region or credentials (conftest's environment)
    owner = f"tenant-{secrets.token_hex(4)}"

    # When a key is created for a new owner
    created = run_videogen(*keys_command(served, "create", "--owner", owner, "--name", "e2e"), cwd=tmp_path)

    # Then it is printed once, with its id, and opens the API
    assert created.returncode == 0, created.explain()
    found = re.search(rf"key id (\w+) for owner {owner}\b", created.stdout)
    assert found, created.explain()
    key_id, key = found[1], created.stdout.strip().splitlines()[-1]
    assert key.startswith("vg_")
    assert served.client(key).videos.list().data == []

    # When the keys are listed
    listed = run_videogen(*keys_command(served, "list"), cwd=tmp_path)

    # Then the new key's id and owner are there, never the key itself
    assert listed.returncode == 0, listed.explain()
    assert re.search(rf"{key_id}\s.*{owner}", listed.stdout), listed.explain()
    assert key not in listed.stdout

    # When it is revoked
    revoked = run_videogen(*keys_command(served, "revoke", key_id), cwd=tmp_path)

    # Then the API refuses it (401), and the server's own key still works
    assert revoked.returncode == 0, revoked.explain()
    assert f"revoked {key_id}" in revoked.stdout
    with pytest.raises(openai.AuthenticationError):
        served.client(key).videos.list()
    assert served.client().videos.list().data == []

    # And revoking it again is an error (exit 1): it is no longer active
    again = run_videogen(*keys_command(served, "revoke", key_id), cwd=tmp_path)
    assert again.returncode == 1, again.explain()
