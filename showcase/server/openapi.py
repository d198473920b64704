"""``GET /openapi.json``: the HTTP API as an OpenAPI 3.1 document, made from the code.

The commands come from the command table (path, roles, body type, the event each appends);
the app's other routes from ``ROUTES`` below, which names each one's roles, query
parameters and body type. Every schema is the JSON Schema msgspec derives from the same
declared types that check the requests, so the document cannot drift from what the server
accepts; tests/test_openapi.py checks that it lists every route the app serves. Prose
(the model, secrecy, the reveal, the streams' messages) stays in docs/protocol.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from showcase import __version__
from showcase.bench.commands import ApplyBody, ControlBody, StartBody
from showcase.bench.lmeval import ImportBody
from showcase.core.bodies import (
    CancelDemoBody,
    ChatBody,
    DemoBody,
    RoundBody,
    SessionBody,
    VoteBody,
    VotingCloseBody,
    VotingOpenBody,
)
from showcase.core.decode import Body
from showcase.runtime.outputs import ReloadBody
from showcase.server.table import EngineCommand

ERRORS = {
    "400": "the body or a parameter is malformed: the field and the problem are named",
    "401": "no token, or not a valid one",
    "403": "the token's role may not do this",
    "404": "an unknown team, round, criterion, ...",
    "409": "the command does not fit the show's state now (a stale seq, a frozen round); "
           "the answer carries the log's seq",
    "413": "the body is too large",
    "429": "a voting rule refused it (named in 'rule', with 'retry_after' seconds)",
    "503": "the event log cannot take writes now, or did not make the command durable within "
           "the show's command_deadline; 'recorded' says false (not recorded) or 'unknown' (may "
           "have been: send it again with the same Idempotency-Key)",
}
PUBLIC = ("public",)  # no token needed; a token gives its role's view
RATE_LIMITED = "/api/vote"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: str  # "integer" | "string"
    description: str
    where: str = "query"


@dataclass(frozen=True, slots=True)
class RouteDoc:
    """One route of the app that is not in the command table."""

    method: str
    path: str
    roles: tuple[str, ...]
    summary: str
    body: type[Body] | None = None
    params: tuple[Param, ...] = ()
    media: str = "application/json"  # what a 2xx answer is
    status: int = 200


SINCE = Param("since", "integer", "resume after this seq; anything unusable: a snapshot first")
TOKEN = Param("token", "string", "a role's token, for a browser that cannot send headers")
ROUND = Param("round", "string", "the round; by default the current one")
RUN = Param("run", "integer", "the run's id (the seq of its bench_started)", "path")
TEAM = Param("team", "string", "a team's id", "path")
ROUND_PATH = Param("round", "string", "the round's id", "path")
KEY = Param("Idempotency-Key", "string", "1 to 64 of A-Z a-z 0-9 - _ . : (a UUID): a retry "
            "with the same key from the same caller gets the first answer, recorded once",
            "header")
OPERATOR, STAGE = ("operator",), ("operator", "presenter")

ROUTES = (
    RouteDoc("GET", "/", PUBLIC, "The gallery: every overlay's URL, for whoever sets up OBS",
             media="text/html"),
    RouteDoc("GET", "/remote", PUBLIC, "The presenter's remote (a phone page)",
             media="text/html"),
    RouteDoc("GET", "/judge", PUBLIC, "The judge's page (phone or tablet): their own "
             "sheets of the current round, entered and corrected", media="text/html"),
    RouteDoc("GET", "/api/judge/sheets", ("judge",), "The calling judge's own sheets in the "
             "current round: the teams, each criterion the judges score and its scale, this "
             "judge's values (a judge's own token only)"),
    RouteDoc("GET", "/verify", PUBLIC, "How anyone checks the results (Korean and English)",
             media="text/html"),
    RouteDoc("GET", "/favicon.ico", PUBLIC, "The icon browsers ask for (SVG)",
             media="image/svg+xml"),
    RouteDoc("GET", "/overlays/{path}", PUBLIC, "The overlay pages, their scripts and styles",
             params=(Param("path", "string", "a file under overlays/", "path"),),
             media="text/html"),
    RouteDoc("GET", "/healthz", PUBLIC, "Whether the node serves and its log takes writes "
             "(503 when the log has failed)"),
    RouteDoc("GET", "/metrics", PUBLIC, "Prometheus metrics", media="text/plain"),
    RouteDoc("GET", "/openapi.json", PUBLIC, "This document"),
    RouteDoc("GET", "/api/state", PUBLIC, "The show's state as the caller's role sees it",
             params=(TOKEN,)),
    RouteDoc("GET", "/api/log", OPERATOR, "Events of the log, oldest first", params=(
        Param("since", "integer", "events after this seq (default 0)"),
        Param("limit", "integer", "at most this many (default 200, at most 5000)"),
        Param("last", "integer", "instead of since: the latest N (at most 5000)"),
        Param("type", "string", "only these event types, comma-separated"))),
    RouteDoc("GET", "/api/log/checkpoint", PUBLIC, "The latest signed checkpoint of the log "
             "(C2SP signed note: origin, size, root hash, time; Ed25519)", media="text/plain"),
    RouteDoc("GET", "/api/log/key", PUBLIC, "The verifier key of the checkpoints "
             "(name+id+key)", media="text/plain"),
    RouteDoc("GET", "/api/log/proof", PUBLIC, "An inclusion proof (RFC 6962) for one event; "
             "its line only when the public already sees the event whole", params=(
                 Param("seq", "integer", "the event"),
                 Param("size", "integer", "the tree size (default: the latest checkpoint's)"))),
    RouteDoc("GET", "/api/log/consistency", PUBLIC, "A consistency proof (RFC 6962) between "
             "two tree sizes: the later only appended to the earlier", params=(
                 Param("from", "integer", "the earlier size"),
                 Param("to", "integer", "the later size (default: the latest checkpoint's)"))),
    RouteDoc("GET", "/api/log/rounds/{round}/events.ndjson", PUBLIC, "A published round's "
             "full log: the first events of events.ndjson, byte for byte, up to the event "
             "that published the round (404 until the operator publishes it)",
             params=(ROUND_PATH,), media="application/x-ndjson"),
    RouteDoc("GET", "/api/log/rounds/{round}/checkpoint", PUBLIC, "The checkpoint signed at "
             "the size of a published round's log", params=(ROUND_PATH,), media="text/plain"),
    RouteDoc("POST", "/api/rounds/{round}/publish-log", OPERATOR, "Publish a published "
             "round's full log (sealed values included, now revealed) for anyone to verify; "
             "refused while it holds anything still sealed", RoundBody, (ROUND_PATH,),
             status=201),
    RouteDoc("GET", "/events", PUBLIC, "Server-sent events: a snapshot, then each event as "
             "the caller's view shows it (docs/protocol.md, 'The streams'); Last-Event-ID "
             "resumes", params=(SINCE, TOKEN), media="text/event-stream"),
    RouteDoc("GET", "/ws", PUBLIC, "WebSocket: the same messages as /events; a refused token "
             "closes with code 1008 (docs/protocol.md, 'The streams')", params=(SINCE, TOKEN),
             media="application/json", status=101),
    RouteDoc("GET", "/api/demo", PUBLIC, "The latest demo and its live answers",
             params=(TOKEN,)),
    RouteDoc("POST", "/api/demo", STAGE, "Start a demo: one prompt to several teams",
             DemoBody, status=201),
    RouteDoc("POST", "/api/demo/cancel", STAGE, "Cancel the demo in progress", CancelDemoBody,
             status=201),
    RouteDoc("GET", "/api/bench", PUBLIC, "The latest benchmark run and its progress",
             params=(TOKEN,)),
    RouteDoc("POST", "/api/bench", OPERATOR, "Start a benchmark run", StartBody, status=201),
    RouteDoc("GET", "/api/bench/suites", OPERATOR, "The suites a run may use, and [bench]"),
    RouteDoc("POST", "/api/bench/import", OPERATOR, "Import lm-evaluation-harness results "
             "as a team's benchmark score (bodies up to 4 MiB)", ImportBody, status=201),
    *(RouteDoc("POST", f"/api/bench/{action}", OPERATOR, f"{action.capitalize()} the "
               "benchmark run in progress", ControlBody, status=201)
      for action in ("pause", "resume", "cancel")),
    RouteDoc("POST", "/api/bench/{run}/apply", OPERATOR, "Enter a finished run's results as "
             "scores", ApplyBody, (RUN,), status=201),
    RouteDoc("POST", "/v1/teams/{team}/chat/completions", STAGE, "The OpenAI-compatible "
             "proxy to a team's endpoint: the answer (or its SSE stream) is the team's, "
             "measured and recorded", ChatBody, (TEAM,)),
    RouteDoc("GET", "/v1/teams/{team}/models", PUBLIC, "The team's models (OpenAI format)",
             params=(TEAM,)),
    RouteDoc("GET", "/api/reveal/script", STAGE, "A frozen round's reveal script, every step",
             params=(ROUND,)),
    RouteDoc("GET", "/vote", PUBLIC, "The audience's voting page (a phone page)",
             media="text/html"),
    RouteDoc("POST", "/api/vote/session", PUBLIC, "A new voting session: send it back as "
             "the X-Vote-Session header", SessionBody, status=201),
    RouteDoc("GET", "/api/vote/battle", PUBLIC, "The session's next blind battle: a prompt "
             "and two anonymous answers (X-Vote-Session)"),
    RouteDoc("POST", "/api/vote", PUBLIC, "A vote on a battle (X-Vote-Session); 201 once "
             "durable, 429 naming the rule it broke", VoteBody, status=201),
    RouteDoc("POST", "/api/rounds/{round}/voting/open", OPERATOR, "Open voting on the current "
             "round with its battle pool and rules (bodies up to 4 MiB)", VotingOpenBody,
             (ROUND_PATH,), status=201),
    RouteDoc("POST", "/api/rounds/{round}/voting/close", OPERATOR, "Close voting: the tally "
             "is recorded as the criterion, sealed until the reveal", VotingCloseBody,
             (ROUND_PATH,), status=201),
    RouteDoc("GET", "/api/rounds/{round}/voting", PUBLIC, "Voting open or closed and the "
             "count; the operator also sees counts per pair, refusals, flags and the tally",
             params=(ROUND_PATH, TOKEN)),
    RouteDoc("GET", "/api/rounds/{round}/votes.ndjson", PUBLIC, "The anonymised votes, one "
             "canonical line each (operator; anyone once the round is published)",
             params=(ROUND_PATH,), media="application/x-ndjson"),
    RouteDoc("GET", "/api/outputs", OPERATOR, "The overlay pages connected to this node: "
             "each one's page, options, language, build and its drift from the server's, "
             "the seq it has applied, when it last said hello, Program or Preview in OBS"),
    RouteDoc("POST", "/api/outputs/reload", OPERATOR, "Ask one output or all of them, through "
             "their own connections, to load themselves again (202; not an event)",
             ReloadBody, status=202),
)


def document(table: list[EngineCommand]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app that serves ``table``."""
    types: list[Any] = [c.body for c in table] + [r.body for r in ROUTES if r.body]
    _, components = msgspec.json.schema_components(
        list(dict.fromkeys(types)), ref_template="#/components/schemas/{name}")
    components["Error"] = {
        "type": "object", "required": ["error", "detail"],
        "properties": {"error": {"type": "string", "description": "what is wrong"},
                       "detail": {"type": "string", "description": "what would be right"}},
        "description": "Every refusal. A 409 adds the log's seq (and what else it names: "
                       "step, previous, ...)."}
    components["Accepted"] = {
        "type": "object", "required": ["seq", "type"],
        "properties": {"seq": {"type": "integer", "description": "the event's seq: durable"},
                       "type": {"type": "string", "description": "the event's type"}}}
    paths: dict[str, dict[str, Any]] = {}
    for command in table:
        params = (*(Param(name, "string", f"the {name}'s id", "path")
                    for name in re.findall(r"{(\w+)}", command.path)), KEY)
        paths.setdefault(command.path, {})["post"] = _operation(
            _summary(command.body), command.roles, command.body, params, "application/json",
            201, f"the {command.event} event is recorded", "Accepted")
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(
            route.summary, route.roles, route.body, route.params, route.media, route.status,
            "", None)
    for path, operations in paths.items():
        if path != RATE_LIMITED:  # only an audience vote has rules of pace
            for operation in operations.values():
                operation["responses"].pop("429", None)
    return {
        "openapi": "3.1.0",
        "info": {"title": "showcase", "version": __version__,
                 "description": "The HTTP API of a showcase server. The model of the show, "
                                "secrecy, the reveal and the streams' messages: "
                                "docs/protocol.md."},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(components.items())), "securitySchemes": {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "the operator's, a presenter's or a judge's token"}}},
    }


def _summary(body: type[Body]) -> str:
    return (body.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


def _operation(summary: str, roles: tuple[str, ...], body: type[Body] | None,
               params: tuple[Param, ...], media: str, status: int, answer: str,
               schema: str | None) -> dict[str, Any]:
    public = roles == PUBLIC
    out: dict[str, Any] = {
        "summary": summary,
        "description": "Anyone may call it; a token gives its role's view." if public
        else f"Roles: {', '.join(roles)}.",
        "x-roles": list(roles),
        "responses": {str(status): {"description": answer or summary}},
    }
    if not public:
        out["security"] = [{"token": []}]
    if media:
        content: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema}"}
                                   } if schema else {}
        out["responses"][str(status)]["content"] = {media: content}
    if params:
        out["parameters"] = [{"name": p.name, "in": p.where, "required": p.where == "path",
                              "description": p.description, "schema": {"type": p.kind}}
                             for p in params]
    if body is not None:
        out["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}}},
            "description": "an empty body is {}"}
    error = {"description": "", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
    # Anyone may call a public route; a route with no body records nothing (no stale seq,
    # no log to be down, nothing too large).
    skip = ({"401", "403"} if public else set()) | ({"409", "413", "503"} if body is None
                                                    else set())
    for code, words in ERRORS.items():
        if code not in skip:
            out["responses"][code] = {**error, "description": words}
    return out


def endpoint(table: list[EngineCommand]) -> Any:
    """The ``/openapi.json`` endpoint, its bytes made once."""
    body = orjson.dumps(document(table))

    async def openapi(request: Request) -> Response:
        return Response(body, media_type="application/json")
    return openapi
