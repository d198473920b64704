"""/openapi.json: a valid OpenAPI 3.1 document of every route the app serves, made from the
declared body types; and a fuzz test that posts bodies those types refuse to every command
of a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from starlette.routing import Mount, Route, WebSocketRoute

from showcase.core.showfile import load_show, sample_show_path
from showcase.server.app import build_app
from showcase.server.table import engine_commands
from tests.conftest import OPERATOR, Server


def served_routes(showfile: Path, data: Path) -> set[tuple[str, str]]:
    """(method, path) of every route the app has, read from the app itself."""
    app = build_app(load_show(showfile), data)
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            found |= {(m, route.path) for m in route.methods or () if m != "HEAD"}
        elif isinstance(route, WebSocketRoute):
            found.add(("GET", route.path))
        elif isinstance(route, Mount):
            found.add(("GET", route.path + "/{path}"))
    return found


def test_openapi_is_valid_and_lists_every_route_the_app_serves(
        server: Server, showfile: Path, tmp_path: Path) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    validate(doc)  # raises with the JSON path of what is wrong
    assert doc["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    missing = served_routes(showfile, tmp_path / "other") - listed
    assert not missing, f"routes the app serves that /openapi.json does not list: {missing}"


def test_openapi_commands_declare_their_bodies_roles_and_refusals(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    scores = doc["paths"]["/api/scores"]["post"]
    assert scores["x-roles"] == ["operator", "judge"]
    ref = scores["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert body["required"] == ["criterion", "team", "value"]
    assert body["additionalProperties"] is False  # unknown fields are refused
    assert scores["responses"]["201"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/Accepted")
    for code in ("400", "401", "403", "404", "409"):
        assert scores["responses"][code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "detail"]
    log = {p["name"] for p in doc["paths"]["/api/log"]["get"]["parameters"]}
    assert log == {"since", "limit", "last", "type"}
    demo = doc["components"]["schemas"]["DemoBody"]["properties"]["max_tokens"]
    assert (demo["minimum"], demo["maximum"]) == (1, 4096)  # a limit the server enforces
    assert "text/event-stream" in doc["paths"]["/events"]["get"]["responses"]["200"]["content"]


# -- fuzz: bodies the declared types refuse, to every command over real HTTP ------------

PARAMS = {"team": "lg", "round": "r1", "run": "1", "graphic": "ticker"}
#: Not fuzzed: the proxy passes a valid body on to a team, and none listens here.
NOT_FUZZED = {"/v1/teams/{team}/chat/completions"}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                    allow_infinity=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


#: Values that fit most fields: a valid body is drawn from those its schema accepts.
FITTING = ["", "lg", "r1", "writing", "a", "linear", 0, 1, 2, 0.5, 1.5, True, False, None,
           [], ["lg"], {}, [{"id": "p1", "text": "a prompt", "answers": {}}]]


def bad_bodies(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Bodies ``schema`` refuses: not an object, an unknown field, a required field left
    out, or one field of a value its schema refuses, each on top of a valid body."""
    properties = schema["properties"]
    required = schema.get("required", [])

    def fits(name: str, value: Any) -> bool:
        sub = {**properties[name], "components": {"schemas": components}}
        return jsonschema.Draft202012Validator(sub).is_valid(value)

    def fitting(name: str) -> st.SearchStrategy[Any]:
        return st.sampled_from([v for v in FITTING if fits(name, v)])

    valid = st.fixed_dictionaries({n: fitting(n) for n in required},
                                  optional={n: fitting(n) for n in properties
                                            if n not in required})
    strategies = [JSON.filter(lambda v: not isinstance(v, dict)),
                  valid.map(lambda b: {**b, "no_such_field": 1})]
    if required:
        strategies.append(st.tuples(valid, st.sampled_from(required)).map(
            lambda t: {k: v for k, v in t[0].items() if k != t[1]}))
    if properties:  # a body with no fields (a new voting session) has no value to get wrong
        wrong_value = st.sampled_from(sorted(properties)).flatmap(
            lambda name: st.tuples(st.just(name), JSON.filter(lambda v: not fits(name, v))))
        strategies.append(st.tuples(valid, wrong_value).map(
            lambda t: {**t[0], t[1][0]: t[1][1]}))
    return st.one_of(strategies)


def test_every_command_refuses_bad_bodies_by_name_and_records_nothing(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    components = doc["components"]["schemas"]
    targets = []
    for path, ops in sorted(doc["paths"].items()):
        body = ops.get("post", {}).get("requestBody")
        if body is None or path in NOT_FUZZED:
            continue
        name = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        targets.append((path.format(**PARAMS), components[name]))
    # every command of the table, and the demo's 2, the benchmark runs' 6, the round
    # log's publication, voting's 4 and the outputs' reload: the other POSTs
    assert len(targets) == len(engine_commands(load_show(sample_show_path()).egress())) + 14
    with httpx.Client(base_url=server.url, timeout=10,
                      headers={"Authorization": f"Bearer {OPERATOR}"}) as client:
        seq = client.get("/healthz").json()["seq"]
        for path, schema in targets:
            fuzz(client, path, bad_bodies(schema, components), seq)()


def fuzz(client: httpx.Client, path: str, bodies: st.SearchStrategy[Any], seq: int
         ) -> Any:
    """A test posting ``bodies`` to ``path``: each is refused with a 400 that names the
    field (or says the body must be an object), and the log stays at ``seq``."""

    @settings(max_examples=25, derandomize=True, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(body=bodies)
    def refused(body: Any) -> None:
        response = client.post(path, content=orjson.dumps(body),
                               headers={"content-type": "application/json"})
        assert response.status_code == 400, (path, body, response.text)
        answer = response.json()
        assert set(answer) >= {"error", "detail"}, (path, body, answer)
        named = isinstance(body, dict) and "field" in answer["error"]
        assert named or "must be a JSON object" in answer["error"], (path, body, answer)
        assert client.get("/healthz").json()["seq"] == seq, (path, body)

    return refused


@pytest.mark.parametrize(("body", "error"), [
    ({"prompt": "hi", "max_tokens": 5000}, "field 'max_tokens' must be from 1 to 4096, not 5000"),
    ({"prompt": "hi", "teams": ["lg", 3]}, "field 'teams[1]' must be a string, not a number"),
    ({"prompt": "hi", "temperature": True}, "field 'temperature' must be a number, not true"),
])
def test_a_refusal_names_the_field_by_its_json_path(server: Server, body: Any,
                                                     error: str) -> None:
    response = server.post("/api/demo", body)
    assert (response.status_code, response.json()["error"]) == (400, error)
