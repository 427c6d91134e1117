"""A CometAPI simulator: a real HTTP server on 127.0.0.1 speaking the three video dialects of
/work/shared/reference/cometapi.md, with time compression and fault injection.

    with CometApiSimulator(time_scale=0.0) as sim:      # port=0 (default): a free port
        sim.base_url, sim.api_key                       # "http://127.0.0.1:PORT", "sk-sim"
        ...                                             # the code under test calls it
        sim.received                                    # every ReceivedRequest, in order, with its answer
        sim.creates("kling")                            # only create calls (any outcome), with .task_id
        sim.video_bytes_for(task_id), sim.served_videos # the exact bytes served, to compare sha256
        sim.set_global_faults("429", "stuck"); sim.clear_global_faults(); sim.set_shape("wrapped")
        sim.reset()                                     # forget tasks, records, counters, global faults
        assert sim.errors == []                         # tracebacks of simulator bugs (each answered a 500)

`serve_forever(port, host, time_scale, shape, ...)` runs one until Ctrl-C (for `videogen simulator`).
Constructor keywords `clock=` (monotonic seconds) and `wall_clock=` (unix seconds) make time controllable.

Dialects (paths, fields and status words as in the reference):
- `/v1/videos` (veo3-fast, sora-2, sora-2-pro): multipart create, `GET /v1/videos/{id}`, `GET .../content`.
- Kling: `POST|GET /kling/v1/videos/{text2video|image2video}[/{task_id}]`, `?external_task_id=X` queries.
- Runway: `POST /runwayml/v1/image_to_video`, `GET|DELETE /runwayml/v1/tasks/{id}` (X-Runway-Version required).
- Videos at `GET|HEAD /media/<token>.mp4?sig=...` (Range supported; 403 AccessDenied once expired).
- `/_sim/...` control endpoints (see control.py), for a simulator in another process: health, reset, faults,
  shape, the requests received, one task and its create body (`/_sim/tasks/{id}`), the bytes its video
  served (`/_sim/tasks/{id}/video`). Any other path answers a 404 HTML page.

Shapes (`shape=` or `set_shape`): "reference" (CometAPI's reference), "tutorial" (videos: `succeeded` with
`output[0]`, `error` a string; Runway: lower-case statuses), "wrapped" (Runway polls wrapped in
`{"code":"success","data":{...,"data":<bare task>}}`; the other dialects answer as "reference").

Time: a task renders for the catalog's `latency.typical_seconds` × `time_scale` (0 → done at the first poll):
queued for the first 10 %, then running with progress in steps of 10 (Kling shows none). `clock` is
injectable for deterministic tests; media URLs expire `media_ttl_seconds` after their first appearance.

Fault markers, in the prompt as `[sim:marker,marker]` (Runway: in `promptText`), in an `X-Sim-Fault: a,b`
header, or for every create via `set_global_faults(...)`. Markers must not contain commas; an unknown marker is
answered with a 400 (or raises, for set_global_faults).

Request faults. From the prompt or global faults they act on create calls, counted per intent (the prompt
text), so a retried create gets through after N; from the header they act on the request carrying them,
counted per method and path. Counted ones fire in the order given (`429,500` = a 429, then a 500, then OK):
- `429`, `429x3` (N times), `429-retry-after=1` (with `Retry-After: 1`; also `429x2-retry-after=1`);
  `500`, `503` (JSON in the dialect's error format), `502`, `504`, `524` (a gateway's HTML page), each with
  the same `xN` / `-retry-after=S` suffixes.
- `reset`: the connection is reset without an answer, before anything is processed (nothing is created).
- `ambiguous`: the create is processed (task made, recorded with its task id) and the connection is then
  closed without an answer. A Kling task stays queryable by its `external_task_id`.
- `1303` / `1303x2` (Kling): HTTP 429 `{"code":1303,"message":"parallel task over resource pack limit"}`.
- `slow=N`: the request is processed, then the answer waits N seconds (a client read timeout on a create
  therefore leaves a real task behind). Not counted: every request carrying it is slow.
- Permanent create refusals (never go away): `blocked` (400; Kling code 1301 "content blocked"),
  `500-invalid` (videos/Runway: 500 with `error.code` "invalid_request", not retryable),
  `1102` (Kling: 429 code 1102 "account balance not enough", not retryable).

Task faults, fixed at create time (prompt, header on the create, or global faults):
- `not-exist=N` (`not-exist` = 1): the first N polls answer task_not_exist (videos/Runway: HTTP 404 CometAPI
  envelope with code "task_not_exist"; Kling: 404 code 1203); `not-exist-200=N`: HTTP 200
  `{"code":"task_not_exist","message":"task_not_exist","data":null}` instead.
- `throttled=N`: the N polls after those show THROTTLED (Runway; queued/submitted in the other dialects).
- `html` / `html=N`: every poll (or the first N) answers 200 with an HTML page.
- `stuck`: queued forever (`queued` / `submitted` / `PENDING`).
- `filter`: fails with no message (videos: no `error`; Kling: empty `task_status_msg`; Runway: no `failure`).
- `fail=some words`: fails with that message (videos `error` {code: generation_failed, message}; Kling
  `task_status_msg`; Runway `failure` with failureCode INTERNAL.BAD_OUTPUT.CODE01).
- `no-url` (videos): completed without `video_url` / `output`; the video is only at `/content`.
- `truncate`: every download sends the full Content-Length but half the bytes, then closes;
  `truncate-once`: only the first download. `expire`: the media URL answers 403 at once.
  `expire-once`: the first media URL handed out answers 403 (expired); once it has, the task's next poll
  hands out a fresh URL that works (as a provider re-signs a finished task's link).
  `wrong-type`: the media (and `/content`) answers 200 `text/html` with an HTML page.
- `shape=reference|tutorial|wrapped`: this task's polls use that shape whatever the simulator's shape.
- `poll-` + a status, reset or slow marker (`poll-500`, `poll-429x2-retry-after=1`, `poll-524`, `poll-reset`,
  `poll-slow=N`): transient faults on this task's status polls, counted per task (`poll-slow` hits every
  poll). This is how a test reaches a Poll step with a transient error without setting a header.
"""

from .faults import FaultMarkerError
from .server import CometApiSimulator, serve_forever
from .wire import ReceivedRequest

__all__ = ["CometApiSimulator", "FaultMarkerError", "ReceivedRequest", "serve_forever"]
