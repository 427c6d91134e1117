"""Answering one request: routing, auth, the Runway version check, request faults, then the handler."""

from __future__ import annotations

from . import control, kling, runway, videos
from .faults import FaultMarkerError, Faults, parse_faults, split_tokens, tokens_in_prompt
from .routes import Call, Route
from .tasks import SimState
from .wire import (
    DialectName,
    ReceivedRequest,
    Reply,
    comet_error,
    dialect_error,
    fault_reply,
    kling_error,
    not_found_page,
)

ROUTES: list[Route] = videos.routes() + kling.routes() + runway.routes() + control.routes()
PREFIXES: tuple[tuple[str, DialectName], ...] = (
    ("/v1/", "videos"),
    ("/kling/", "kling"),
    ("/runwayml/", "runway"),
    ("/media/", "media"),
    ("/_sim/", "control"),
)


def answer(state: SimState, request: ReceivedRequest, found: tuple[Route, dict[str, str]] | None) -> Reply:
    if found is None:
        return not_found_page()
    route, params = found
    if route.dialect in ("media", "control"):
        return route.handler(Call(state, request, params, Faults()))
    if not _authorized(state, request):
        return dialect_error(route.dialect, 401, "Invalid or missing API key: send Authorization: Bearer <key>")
    if route.dialect == "runway":
        problem = runway.version_problem(request)
        if problem is not None:
            return problem
    try:
        faults, intent = _faults_of(state, route, request)
    except FaultMarkerError as error:
        return dialect_error(route.dialect, 400, str(error))
    reply = _reply_with_faults(state, route, Call(state, request, params, faults), intent)
    # The work is done and only the answer is late, as when a client's read timeout fires on a real create.
    reply.delay = max(reply.delay, faults.slow)
    return reply


def _authorized(state: SimState, request: ReceivedRequest) -> bool:
    scheme, _, token = request.header("authorization").partition(" ")
    return scheme.lower() == "bearer" and token.strip() == state.api_key


def _faults_of(state: SimState, route: Route, request: ReceivedRequest) -> tuple[Faults, str]:
    """Faults that act on this request, and the intent they are counted under.

    A create gets its prompt's markers, the X-Sim-Fault header and the global faults, counted per prompt;
    any other call only gets the header's, counted per method and path.
    """
    from_header = parse_faults(split_tokens(request.header("x-sim-fault")))
    if route.intent_of is None:
        return from_header, f"{request.method} {request.path}"
    marker_text, intent = route.intent_of(request)
    faults = parse_faults(tokens_in_prompt(marker_text)).merge(from_header).merge(state.global_faults)
    return faults, f"create {route.dialect} {intent}"


def _reply_with_faults(state: SimState, route: Route, call: Call, intent: str) -> Reply:
    dialect = route.dialect
    faults = call.faults
    applicable = [
        f
        for f in faults.counted
        if (route.is_create or f.kind not in ("ambiguous", "1303")) and (f.kind != "1303" or dialect == "kling")
    ]
    fired = state.counter.fire(intent, applicable)
    if fired is not None and fired.kind != "ambiguous":
        return fault_reply(dialect, fired)
    if route.is_create:
        refusal = _create_refusal(dialect, faults)
        if refusal is not None:
            return refusal
    reply = route.handler(call)
    if fired is not None and fired.kind == "ambiguous" and reply.status < 300:
        reply.action = "drop"
    return reply


def _create_refusal(dialect: DialectName, faults: Faults) -> Reply | None:
    """Permanent create refusals: a content block, a 500 that is really a bad request, no credit left."""
    if faults.blocked:
        if dialect == "kling":
            return kling_error(400, "content blocked", 1301)
        return comet_error(400, "the prompt was blocked by the content policy", code="content_policy_violation")
    if faults.invalid_500 and dialect != "kling":
        return comet_error(500, "invalid request parameters", code="invalid_request")
    if faults.kling_1102 and dialect == "kling":
        return kling_error(429, "account balance not enough", 1102)
    return None


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for candidate in ROUTES:
        if candidate.method == method:
            matched = candidate.pattern.fullmatch(path)
            if matched:
                return candidate, matched.groupdict()
    return None


def dialect_of(path: str) -> DialectName:
    return next((dialect for prefix, dialect in PREFIXES if path.startswith(prefix)), "unknown")
