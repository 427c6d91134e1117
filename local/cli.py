"""The `videogen` command: models, simulator, generate."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from functions.common.errors import InvalidRequestError, JobCancelledError, VideogenError
from functions.providers.catalog import Catalog, ModelSpec, PerSecondPrice, PerTaskPrice, load_catalog
from local.outcome import GenerateOutcome

GenerateVideo = Callable[..., GenerateOutcome]
"""local.generate.generate's shape: (fields, *, out, poll_interval, console) -> GenerateOutcome."""

SIMULATOR_API_KEY = "sk-sim"
"""The key `videogen simulator` accepts unless --api-key names another."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


def price_text(spec: ModelSpec) -> str:
    price = spec.price
    if isinstance(price, PerSecondPrice):
        return f"${price.usd:.2f}/s"
    if isinstance(price, PerTaskPrice):
        return f"${price.usd:.2f}/task"
    cells = sorted(price.table.values())
    return f"${cells[0]:.2f}–${cells[-1]:.2f}/task"


def size_mapping(spec: ModelSpec) -> list[str]:
    """Each format as "the OpenAI-style sizes that mean it -> what the dialect sends", e.g. 1280x720 → 16x9."""
    lines = []
    for video_format in spec.formats:
        sizes = [video_format.size, *(a for a in video_format.accepts if re.fullmatch(r"\d+x\d+", a))]
        lines.append(f"{', '.join(sizes)} → {video_format.provider_value}")
    return lines


def prompt_text(spec: ModelSpec) -> str:
    negative = f" (negative {spec.negative_prompt_max_chars})" if spec.negative_prompt_max_chars else ""
    return f"{spec.prompt_max_chars}{negative}"


def polling_lines(spec: ModelSpec) -> list[str]:
    polling = spec.polling
    return [
        f"first {polling.first_wait_seconds} s",
        f"every {polling.min_interval_seconds}–{polling.max_interval_seconds} s",
        f"max {polling.max_wait_seconds} s",
        f"stuck {polling.stuck_queue_seconds} s",
    ]


MODELS_LEGEND = (
    "seconds: the default in bold. size → sent as: the --size values (WxH) that select a format, and what the "
    "dialect sends for it (videos: size, kling: aspect_ratio, runway: ratio). prompt: the longest prompt in "
    "characters. polling: the first poll after the create, the interval range, the longest wait, and how long "
    "queued counts as stuck. `videogen models MODEL` shows one model in full, --json every field."
)


def models_table(catalog: Catalog) -> Table:
    table = Table(title="videogen models (functions/providers/catalog.json)", show_lines=True)
    columns = ("model", "dialect", "modes", "seconds", "size → sent as", "prompt", "options", "price")
    for column in (*columns, "typical render", "polling", "notes"):
        table.add_column(column, no_wrap=column in ("model", "size → sent as", "polling"))
    for spec in catalog.models.values():
        seconds = ", ".join(f"[b]{s}[/b]" if s == spec.seconds.default else str(s) for s in spec.seconds.allowed)
        table.add_row(
            spec.id,
            spec.dialect.value,
            "\n".join(m.value for m in spec.modes),
            seconds,
            "\n".join(size_mapping(spec)),
            prompt_text(spec),
            "\n".join(spec.options) or "-",
            price_text(spec),
            f"{spec.latency.min_seconds}–{spec.latency.max_seconds} s",
            "\n".join(polling_lines(spec)),
            f"deprecated since {spec.deprecated.since}" if spec.deprecated else "",
        )
    return table


def model_detail(spec: ModelSpec) -> Table:
    """One model, every field of its catalog entry, one per line."""
    table = Table(title=f"{spec.id}: {spec.label}", show_header=False, show_lines=True)
    table.add_column("field", style="bold")
    table.add_column("value")
    seconds = spec.seconds
    images = spec.images
    polling = spec.polling
    latency = spec.latency
    rows = {
        "dialect": f"{spec.dialect.value} (provider model {spec.provider_model})",
        "modes": ", ".join(m.value for m in spec.modes),
        "seconds": f"{', '.join(map(str, seconds.allowed))}; default {seconds.default}"
        + ("" if seconds.sent else " (not sent: the provider renders its own length)"),
        "sizes": "\n".join(
            f"{f.size} → {f.provider_value}" + (f" (also accepts {', '.join(f.accepts)})" if f.accepts else "")
            for f in spec.formats
        )
        + f"\ndefault {spec.default_size}",
        "prompt": f"at most {spec.prompt_max_chars} characters"
        + (f"; negative prompt at most {spec.negative_prompt_max_chars}" if spec.negative_prompt_max_chars else ""),
        "options": (", ".join(spec.options) or "-")
        + (f"; default mode {spec.default_mode}" if spec.default_mode else ""),
        "images": f"up to {images.max_count} ({', '.join(images.formats)}), at most {images.max_bytes // 1024**2} MB"
        + (f", sides at least {images.min_side} px" if images.min_side else "")
        + (", the same size as the video" if images.must_match_size else ""),
        "price": price_text(spec) + (f"\n{spec.price.note}" if spec.price.note else ""),
        "typical render": f"{latency.min_seconds}–{latency.max_seconds} s, typically {latency.typical_seconds} s",
        "polling": "\n".join(
            (
                f"first poll {polling.first_wait_seconds} s after the create",
                f"then every {polling.min_interval_seconds}–{polling.max_interval_seconds} s",
                f"gives up after {polling.max_wait_seconds} s",
                f"stuck if still queued after {polling.stuck_queue_seconds} s",
                f"task_not_exist tolerated for {polling.not_found_grace_seconds} s",
            )
        ),
        "deprecated": f"since {spec.deprecated.since}: {spec.deprecated.note}" if spec.deprecated else "no",
    }
    for field, value in rows.items():
        table.add_row(field, value)
    return table


def models_console() -> Console:
    """A terminal's own width; a pipe (`videogen models | less -S`) wide enough for the whole table."""
    return Console() if Console().is_terminal else Console(width=200)


def print_models(catalog: Catalog) -> None:
    console = models_console()
    console.print(models_table(catalog))
    console.print(MODELS_LEGEND, soft_wrap=True, highlight=False, markup=False)
    for spec in catalog.models.values():
        if spec.deprecated:
            console.print(f"[yellow]{spec.id}[/yellow]: {spec.deprecated.note}", soft_wrap=True)
        if spec.price.note:
            console.print(f"[dim]{spec.id} price: {spec.price.note}[/dim]", soft_wrap=True)


def run_models(model_id: str | None, as_json: bool) -> int:
    """The catalog as a table, one model in full, or (--json) the catalog's entries for scripts."""
    catalog = load_catalog()
    if model_id is not None and model_id not in catalog.models:
        known = ", ".join(catalog.ids())
        Console(stderr=True).print(f"[red]error[/red] unknown model {model_id}; known: {known}", highlight=False)
        return EXIT_INVALID
    if as_json:
        entries = {spec.id: spec.model_dump(mode="json") for spec in catalog.models.values()}
        print(json.dumps(entries[model_id] if model_id else entries, indent=2))
    elif model_id:
        models_console().print(model_detail(catalog.models[model_id]))
    else:
        print_models(catalog)
    return EXIT_OK


class FlagError(Exception):
    """argparse refused the command line (a wrong type, an unknown choice, a missing argument)."""

    def __init__(self, message: str, usage: str, prog: str):
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.prog = prog

    @property
    def param(self) -> str | None:
        """The flag's request field: "argument --seconds: invalid int value" -> "seconds"."""
        found = re.search(r"argument (?:--)?([A-Za-z][\w-]*)|required: (?:--)?([A-Za-z][\w-]*)", self.message)
        return (found[1] or found[2]).replace("-", "_") if found else None


class CliParser(argparse.ArgumentParser):
    """Raises FlagError instead of exiting, so `generate --json` still ends with its JSON object."""

    def error(self, message: str) -> NoReturn:
        raise FlagError(message, self.format_usage(), self.prog)


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="videogen", description="AI video generation into your own S3.")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the models and what they accept")
    models.add_argument("model", nargs="?", help="show this model in full")
    models.add_argument("--json", action="store_true", help="the catalog's entries as JSON (keyed by model id)")

    simulator = commands.add_parser("simulator", help="run the CometAPI simulator")
    simulator.add_argument("--port", type=int, default=8765, help="0 = any free port (the URL is printed)")
    simulator.add_argument("--host", default="127.0.0.1")
    simulator.add_argument("--time-scale", type=float, default=0.02, help="render time multiplier (0 = instant)")
    simulator.add_argument("--shape", choices=("reference", "tutorial", "wrapped"), default="reference")
    simulator.add_argument("--api-key", default=SIMULATOR_API_KEY, help="the key it accepts (Bearer)")

    serve = commands.add_parser("serve", help="run the local stack and the OpenAI-compatible API")
    serve.add_argument("--port", type=int, default=8080, help="0 = any free port (the URL is printed)")
    serve.add_argument("--host", default="127.0.0.1")

    keys = commands.add_parser("keys", help="manage API keys (deployed stack, or a running local stack)")
    keys.add_argument("--table", default=os.environ.get("VIDEOGEN_API_KEYS_TABLE"), help="the API keys table")
    keys.add_argument(
        "--endpoint-url",
        help="the local stack's AWS endpoint (videogen serve prints it); its own region and credentials are used",
    )
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create_key = key_commands.add_parser("create", help="create a key (shown once)")
    create_key.add_argument("--owner", required=True, help="the tenant the key's jobs belong to")
    create_key.add_argument("--name", default="")
    key_commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke_key = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke_key.add_argument("key_id")

    generate = commands.add_parser("generate", help="generate one video")
    generate.add_argument("prompt")
    generate.add_argument("--model", required=True)
    generate.add_argument("--image", action="append", default=[], help="a local file or an https URL (repeatable)")
    generate.add_argument("--seconds", type=int)
    generate.add_argument("--size")
    generate.add_argument("--aspect-ratio")
    generate.add_argument("--negative-prompt")
    generate.add_argument("--cfg-scale", type=float)
    generate.add_argument("--mode", choices=("std", "pro"))
    generate.add_argument("--seed", type=int)
    generate.add_argument("--fallback", action="append", default=[], help="a model to fall back to (repeatable)")
    generate.add_argument("--out", type=Path, help="where to save the video (default output/<job id>.mp4)")
    generate.add_argument("--poll-interval", type=int, help="fixed seconds between polls (default: adaptive)")
    generate.add_argument("--json", action="store_true", help="end with one JSON object on stdout")
    return parser


def request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The VideoRequest fields the flags name; local image paths are read here (the CLI's job)."""
    images: list[Any] = []
    for index, value in enumerate(args.image):
        if value.startswith(("https://", "http://")):
            images.append(value)
            continue
        path = Path(value)
        if not path.is_file():
            raise InvalidRequestError(
                f"images[{index}]: {value} is not a file or an https URL", param=f"images[{index}]"
            )
        images.append({"data": path.read_bytes(), "filename": path.name})
    fields: dict[str, Any] = {
        "model": args.model,
        "prompt": args.prompt,
        "images": images,
        "seconds": args.seconds,
        "size": args.size,
        "aspect_ratio": args.aspect_ratio,
        "negative_prompt": args.negative_prompt,
        "cfg_scale": args.cfg_scale,
        "mode": args.mode,
        "seed": args.seed,
        "fallback_models": args.fallback,
    }
    return {name: value for name, value in fields.items() if value not in (None, [])}


def main(argv: Sequence[str] | None = None, *, generate_video: GenerateVideo | None = None) -> int:
    """The console script. ``generate_video`` stands in for local.generate.generate (tests)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
    except FlagError as exc:
        sys.stderr.write(f"{exc.usage}{exc.prog}: error: {exc.message}\n")
        if arguments[:1] == ["generate"] and "--json" in arguments:
            error = InvalidRequestError(exc.message, param=exc.param).to_dict()
            print(json.dumps(GenerateOutcome.not_started("failed", error).as_json()))
        return EXIT_INVALID
    if args.command == "models":
        return run_models(args.model, args.json)
    if args.command == "simulator":
        from local.simulator import serve_forever  # noqa: PLC0415 - PyAV loads only when simulating

        serve_forever(
            port=args.port,
            host=args.host,
            time_scale=args.time_scale,
            shape=args.shape,
            api_key=args.api_key,
            ready=lambda base_url: announce_simulator(base_url, args.api_key, Console(stderr=True)),
        )
        return EXIT_OK
    if args.command == "serve":
        from local.serve import serve  # noqa: PLC0415

        return serve(host=args.host, port=args.port)
    if args.command == "keys":
        return run_keys(args)
    return run_generate(args, generate_video)


def announce_simulator(base_url: str, api_key: str, console: Console) -> None:
    """Where the simulator listens, the key it takes, and how to point videogen (or any client) at it."""
    lines = [
        f"CometAPI simulator   {base_url}",
        f"API key              {api_key}",
        "Point videogen at it (the real-provider path, with this simulator as the provider):",
        f"  COMETAPI_BASE_URL={base_url} COMETAPI_KEY={api_key} "
        'videogen generate "A paper kite" --model veo3-fast --poll-interval 1',
        f"Requests it received: {base_url}/_sim/requests. Ctrl-C stops.",
    ]
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)


def run_keys(args: argparse.Namespace) -> int:
    from functions.api.keys import ApiKeyStore  # noqa: PLC0415

    if not args.table:
        Console(stderr=True).print("[red]error[/red] name the API keys table: --table or VIDEOGEN_API_KEYS_TABLE")
        return EXIT_INVALID
    store = ApiKeyStore(dynamodb_resource(args.endpoint_url).Table(args.table))
    if args.keys_command == "create":
        key, record = store.create(args.owner, args.name)
        print(f"key id {record.key_id} for owner {record.owner}; the key (shown once, store it now):")
        print(key)
        return EXIT_OK
    if args.keys_command == "list":
        table = Table("key id", "owner", "name", "created", "revoked")
        for record in store.list():
            table.add_row(record.key_id, record.owner, record.name, _when(record.created_at), _when(record.revoked_at))
        Console().print(table)
        return EXIT_OK
    if store.revoke(args.key_id):
        print(f"revoked {args.key_id}")
        return EXIT_OK
    Console(stderr=True).print(f"[red]error[/red] no active key with id {args.key_id}")
    return EXIT_FAILED


def dynamodb_resource(endpoint_url: str | None) -> Any:
    """The deployed stack's DynamoDB (the caller's AWS credentials), or the local stack's at ``endpoint_url``.

    The local stack's moto accepts only its own region and any credentials: a clean shell has neither, and
    real credentials have no business being sent to it, so the local ones are used there.
    """
    import boto3  # noqa: PLC0415

    if endpoint_url is None:
        return boto3.resource("dynamodb")
    from local.stack import LOCAL_CREDENTIALS  # noqa: PLC0415

    return boto3.resource(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


def _when(timestamp: float | None) -> str:
    import datetime  # noqa: PLC0415

    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M") if timestamp else ""


def run_generate(args: argparse.Namespace, generate_video: GenerateVideo | None = None) -> int:
    from local.generate import GenerateInterrupted, generate  # noqa: PLC0415 - keeps startup light

    err = Console(stderr=True)
    try:
        fields = request_fields(args)
        interval = poll_interval(args.poll_interval)
        outcome = (generate_video or generate)(fields, out=args.out, poll_interval=interval, console=err)
    except InvalidRequestError as exc:  # nothing was submitted: a failure of its own exit code
        err.print(f"[red]invalid request[/red] {exc.message}", soft_wrap=True, highlight=False)
        return _ended(GenerateOutcome.not_started("failed", exc.to_dict(), _model_of(args)), EXIT_INVALID, args.json)
    except GenerateInterrupted as interrupted:
        err.print(f"[yellow]cancelled[/yellow] job {interrupted.outcome.id}")
        return _ended(interrupted.outcome, EXIT_INTERRUPTED, args.json)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted before the job started[/yellow]")
        error = {"code": JobCancelledError.code, "message": "Interrupted with Ctrl-C before the job started."}
        return _ended(GenerateOutcome.not_started("cancelled", error, _model_of(args)), EXIT_INTERRUPTED, args.json)
    except VideogenError as exc:  # failed before a job existed (e.g. the stack could not start the workflow)
        err.print(f"[red]failed[/red] {exc.code}: {exc.message}", soft_wrap=True, highlight=False)
        return _ended(GenerateOutcome.not_started("failed", exc.to_dict(), _model_of(args)), EXIT_FAILED, args.json)
    return _ended(outcome, EXIT_OK if outcome.status == "completed" else EXIT_FAILED, args.json)


def _model_of(args: argparse.Namespace) -> str | None:
    """The requested model where it is one (an unknown id is not a model the JSON should name)."""
    return str(args.model) if args.model in load_catalog().models else None


def _ended(outcome: GenerateOutcome, exit_code: int, as_json: bool) -> int:
    """With --json, the last line on stdout is the outcome, whichever way the run ended."""
    if as_json:
        print(json.dumps(outcome.as_json()))
    return exit_code


def poll_interval(flag: int | None) -> int | None:
    """--poll-interval, else VIDEOGEN_POLL_INTERVAL_SECONDS, checked before anything starts (the workflow
    would only find out after the provider accepted, and billed, the create)."""
    if flag is not None:
        name, value = "poll_interval", str(flag)
    else:
        name, value = "VIDEOGEN_POLL_INTERVAL_SECONDS", os.environ.get("VIDEOGEN_POLL_INTERVAL_SECONDS", "")
        if not value:
            return None
    if not value.isdigit():  # "-1" and "abc" alike
        raise InvalidRequestError(f"{name}: {value} is not a whole number of seconds, 0 or more", param=name)
    return int(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
