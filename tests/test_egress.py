"""Teams' endpoints and keys under the show file's policy (issue 15, finding 1): over a real
server, plain socket listeners on 127.0.0.1 play the attacker's host and the team's."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from showcase.core.egress import EgressPolicy, Resolved
from showcase.core.errors import InvalidRequest
from showcase.core.showfile import sample_show_path
from tests.conftest import OPERATOR, Server

LG_KEY = "lg-secret-key-for-tests"
KAKAO_KEY = "kakao-secret-key-for-tests"


class Listener:
    """A TCP listener on 127.0.0.1 that keeps every request it receives and answers each
    with ``answer`` (raw HTTP)."""

    def __init__(self, answer: bytes = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n"
                                        b"connection: close\r\n\r\n",
                 host: str = "127.0.0.1") -> None:
        self.answer = answer
        self.host = host
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.requests: list[bytes] = []
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.requests.append(data)
                    conn.sendall(self.answer)
                except OSError:
                    self.requests.append(data)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def listen(listeners: list[Listener], answer: bytes | None = None) -> Listener:
    listener = Listener() if answer is None else Listener(answer)
    listeners.append(listener)
    return listener


def serve(tmp_path: Path, lg_endpoint: str, proxy: str = "") -> Server:
    """The sample show, team lg on ``lg_endpoint`` with its key in the environment, health
    checks every half second."""
    text = sample_show_path().read_text(encoding="utf-8").replace(
        "http://127.0.0.1:9101/v1", lg_endpoint)
    showfile = tmp_path / "show.toml"
    showfile.write_text(text + "\n[proxy]\nhealth_interval = 0.5\nhealth_timeout = 0.4\n"
                        + proxy, encoding="utf-8")
    return Server(showfile, tmp_path / "data",
                  env={"SHOWCASE_KEY_LG": LG_KEY, "SHOWCASE_KEY_KAKAO": KAKAO_KEY}).start()


def seq_of(srv: Server) -> int:
    return int(srv.state()["seq"])


def settled_seq(srv: Server) -> int:
    """The seq once the first round of health checks is recorded (every sample team is
    down here, each one event): after it nothing is recorded unless a command is."""
    deadline = time.monotonic() + 10
    with srv.client() as c:
        while len(c.get("/api/log", params={"type": "team_health"}).json()["events"]) < 5:
            assert time.monotonic() < deadline, "the first health checks were not recorded"
            time.sleep(0.05)
    return seq_of(srv)


def team_added_events(srv: Server) -> list[dict[str, object]]:
    with srv.client() as c:
        events = c.get("/api/log").json()["events"]
    return [e for e in events if e["type"] == "team_added"]


def kakao(**fields: str) -> dict[str, str]:
    return {"id": "kakao", "name_ko": "카카오", "name_en": "Kakao", **fields}


def wait_for(condition: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_stolen_operator_token_cannot_send_the_servers_secrets_anywhere(
        tmp_path: Path, listeners: list[Listener]) -> None:
    attacker = listen(listeners)
    srv = serve(tmp_path, "http://127.0.0.1:9/v1")
    try:
        seq = settled_seq(srv)
        attempts = [
            (kakao(endpoint=f"{attacker.url}/v1", api_key_env="SHOWCASE_OPERATOR_TOKEN"),
             "field 'api_key_env': 'SHOWCASE_OPERATOR_TOKEN' holds a showcase token"),
            (kakao(endpoint=f"{attacker.url}/v1", api_key_env="SHOWCASE_KEY_LG"),
             "field 'api_key_env': 'SHOWCASE_KEY_LG' is the key of team 'lg'"),
            (kakao(endpoint=f"{attacker.url}/v1", api_key_env="HOME"),
             "field 'api_key_env': 'HOME' is not a key variable of team 'kakao'"),
            (kakao(endpoint="http://169.254.169.254/latest/meta-data"),
             "field 'endpoint': host '169.254.169.254' is not allowed"),
            (kakao(endpoint="http://2852039166/latest"),  # the same address, spelt as a number
             "field 'endpoint': host '2852039166' is not allowed"),
            (kakao(endpoint="http://[::ffff:169.254.169.254]/"), "is not allowed"),
            (kakao(endpoint="http://metadata.google.internal/"), "is not allowed"),
            (kakao(endpoint="http://10.0.0.7:8000/v1"), "host '10.0.0.7' is not allowed"),
            (kakao(endpoint="http://gpu.elsewhere.example/v1"), "is not allowed"),
            (kakao(endpoint=f"http://user:pw@127.0.0.1:{attacker.url.rsplit(':', 1)[1]}/"),
             "must not carry a user name or password"),
        ]
        for body, words in attempts:
            response = srv.post("/api/teams", body)
            assert response.status_code == 400, (body, response.text)
            assert words in response.json()["error"], response.json()
        # Nothing recorded but the health checks' own findings, which run meanwhile.
        with srv.client() as c:
            since = c.get("/api/log", params={"since": seq}).json()["events"]
        assert {e["type"] for e in since} <= {"team_health"}
        assert team_added_events(srv) == []
        time.sleep(1.5)  # three rounds of health checks
        assert attacker.requests == []
    finally:
        srv.stop()


def test_a_team_added_at_run_time_gets_its_own_key_and_no_other(
        tmp_path: Path, listeners: list[Listener]) -> None:
    team = listen(listeners)
    srv = serve(tmp_path, "http://127.0.0.1:9/v1")
    try:
        response = srv.post("/api/teams", kakao(endpoint=f"{team.url}/v1",
                                                api_key_env="SHOWCASE_KEY_KAKAO"))
        assert response.status_code == 201, response.text
        assert wait_for(lambda: team.requests)
    finally:
        srv.stop()
    first = team.requests[0].decode("latin-1")
    assert first.startswith("GET /v1/models ")
    assert f"authorization: Bearer {KAKAO_KEY}".lower() in first.lower()
    assert LG_KEY not in first and OPERATOR not in first


def test_a_redirect_from_a_team_never_carries_its_key_elsewhere(
        tmp_path: Path, listeners: list[Listener]) -> None:
    elsewhere = listen(listeners)
    team = listen(listeners, b"HTTP/1.1 302 Found\r\nlocation: " + elsewhere.url.encode()
                  + b"/v1/models\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    srv = serve(tmp_path, f"{team.url}/v1")
    try:
        assert wait_for(lambda: len(team.requests) >= 2)  # two health checks answered 302
        with srv.client() as c:  # the proxy's models route asks the team too
            c.get("/v1/teams/lg/models")
        time.sleep(1)
        with srv.client() as c:
            health = c.get("/api/state").json()["state"]["telemetry"]["lg"]["health"]
    finally:
        srv.stop()
    assert f"Bearer {LG_KEY}".encode() in team.requests[0]  # the key went to lg's own host
    assert elsewhere.requests == []
    assert health["up"] is False and "302" in health["error"]


def test_allowed_hosts_lets_a_named_private_network_in(
        tmp_path: Path, listeners: list[Listener]) -> None:
    srv = serve(tmp_path, "http://127.0.0.1:9/v1",
                'allowed_hosts = ["10.1.0.0/16", "*.gpu.example"]\n')
    try:
        for i, (endpoint, status) in enumerate((("http://10.1.2.3:8000/v1", 201),
                                 # allowed by its name, judged by its addresses: it has none
                                 ("http://a.gpu.example/v1", 400),
                                 ("http://127.0.0.1:8000/v1", 201),  # lg's own host
                                 ("http://10.2.0.1/v1", 400),
                                 ("http://localhost:8000/v1", 400))):  # loopback not listed
            body = kakao(endpoint=endpoint) | {"id": f"team{i}"}
            response = srv.post("/api/teams", body)
            assert response.status_code == status, (endpoint, response.text)
    finally:
        srv.stop()


def test_a_team_added_under_a_wider_policy_is_not_called_once_it_is_narrowed(
        tmp_path: Path, listeners: list[Listener]) -> None:
    team = Listener(host="127.0.0.2")  # loopback, but not an address the default allows
    listeners.append(team)
    srv = serve(tmp_path, "http://127.0.0.1:9/v1", 'allowed_hosts = ["127.0.0.2"]\n')
    try:
        assert srv.post("/api/teams", kakao(endpoint=f"{team.url}/v1",
                                            api_key_env="SHOWCASE_KEY_KAKAO")).status_code == 201
        assert wait_for(lambda: team.requests)
        srv.showfile.write_text(srv.showfile.read_text(encoding="utf-8").replace(
            'allowed_hosts = ["127.0.0.2"]', ""), encoding="utf-8")
        srv.restart()
        team.requests.clear()
        with srv.client() as c:
            refused = c.get("/v1/teams/kakao/models")
        time.sleep(1.5)  # three rounds of health checks
    finally:
        srv.stop()
    assert refused.status_code == 403
    assert "the endpoint of team 'kakao' is on a host this show file does not allow" in refused.text
    assert team.requests == []


@pytest.mark.parametrize(("entries", "host", "allowed"), [
    ((), "127.0.0.1", False),
    (("127.0.0.1",), "127.0.0.1", True),
    (("localhost",), "LOCALHOST.", True),
    (("*",), "gpu.lg.example", True),
    (("*",), "8.8.8.8", True),
    (("*",), "169.254.169.254", False),  # link-local: only by name
    (("*",), "10.0.0.1", False),
    (("*",), "::1", False),
    (("*",), "fe80::1", False),
    (("*",), "metadata.google.internal", False),
    (("*",), "0x7f.1", False),  # an address in disguise
    (("169.254.169.254",), "169.254.169.254", True),
    (("::1",), "0:0:0:0:0:0:0:1", True),
    (("*.lg.example",), "a.b.lg.example", True),
    (("*.lg.example",), "evil-lg.example", False),
    (("10.0.0.0/8",), "10.200.0.1", True),
    (("10.0.0.0/8",), "::ffff:10.200.0.1", True),
])
def test_egress_policy_hosts(entries: tuple[str, ...], host: str, allowed: bool) -> None:
    assert EgressPolicy.allowing(entries, {}).allows_host(host) is allowed


def test_egress_policy_reads_a_teams_key_only_from_its_own_variable() -> None:
    policy = EgressPolicy.allowing((), {"LG_KEY": "lg", "SHOWCASE_KEY_SKT": "lg"})
    env = {"LG_KEY": "a", "SHOWCASE_KEY_SKT": "b", "SHOWCASE_KEY_KT": "c",
           "SHOWCASE_OPERATOR_TOKEN": "d"}
    assert policy.key_of("lg", "LG_KEY", env) == "a"
    assert policy.key_of("skt", "SHOWCASE_KEY_SKT", env) == ""  # the show file gave it to lg
    assert policy.key_of("kt", "SHOWCASE_KEY_KT", env) == "c"
    assert policy.key_of("kt", "LG_KEY", env) == ""
    assert policy.key_of("operator", "SHOWCASE_OPERATOR_TOKEN", env) == ""


def policy_refusal(entries: tuple[str, ...], endpoint: str, resolved: Resolved | None
                   ) -> str:
    try:
        EgressPolicy.allowing(entries, {}).check_endpoint(endpoint, resolved)
    except InvalidRequest as exc:
        return exc.message
    return ""


@pytest.mark.parametrize(("entries", "addresses", "refusal"), [
    (("*",), ("8.8.8.8",), ""),
    (("*",), ("8.8.8.8", "10.1.2.3"), "resolves to 10.1.2.3, a private address"),
    (("*",), ("169.254.169.254",), "resolves to 169.254.169.254, a link-local address"),
    (("*",), ("::ffff:169.254.169.254",), "resolves to 169.254.169.254, a link-local"),
    (("*",), ("fe80::1",), "resolves to fe80::1, a link-local address"),
    (("*",), ("127.0.0.1",), "resolves to 127.0.0.1, a loopback address"),
    (("*", "10.0.0.0/8"), ("10.1.2.3",), ""),  # its network is allowed
    (("*.gpu.example",), ("10.1.2.3",), "resolves to 10.1.2.3, a private address"),
    (("*.gpu.example", "10.1.2.3"), ("10.1.2.3",), ""),
    (("*",), (), "host 'a.gpu.example' cannot be resolved"),
    (("a.gpu.example",), ("169.254.169.254",), ""),  # named itself: trusted as it resolves
])
def test_a_name_allowed_by_a_pattern_is_judged_by_the_addresses_it_resolves_to(
        entries: tuple[str, ...], addresses: tuple[str, ...], refusal: str) -> None:
    found = policy_refusal(entries, "http://a.gpu.example/v1",
                           Resolved("a.gpu.example", addresses))
    assert (refusal in found) if refusal else found == "", found


def test_an_address_in_disguise_is_refused_naming_the_address_it_spells() -> None:
    for host, address in (("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
                          ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
                          ("169.254.43518", "169.254.169.254")):
        assert policy_refusal(("*",), f"http://{host}/v1", None) == (
            f"field 'endpoint': host {host!r} is not allowed: the address {address} spelt "
            "as a number")
    assert policy_refusal(("*",), "http://[::ffff:169.254.169.254]/v1", None) == (
        "field 'endpoint': host '::ffff:169.254.169.254' is not allowed: 169.254.169.254, a "
        "link-local address (cloud metadata lives there)")
    assert policy_refusal(("*",), "http://10.0.0.1/v1", None) == (
        "field 'endpoint': host '10.0.0.1' is not allowed: a private address")


def test_a_team_on_a_name_that_resolves_to_loopback_is_refused_unless_its_address_is_allowed(
        tmp_path: Path) -> None:
    # The show's own teams on a name of their own, so that no loopback address is allowed
    # by being a team's host.
    text = sample_show_path().read_text(encoding="utf-8").replace("127.0.0.1", "gpu.example")
    for folder, hosts, status in (("any", '["*"]', 400),
                                  ("loopback", '["*", "127.0.0.0/8", "::1"]', 201)):
        show = tmp_path / folder / "show.toml"
        show.parent.mkdir()
        show.write_text(text + f"\n[proxy]\nhealth_interval = 0\nallowed_hosts = {hosts}\n",
                        encoding="utf-8")
        srv = Server(show, tmp_path / folder / "data").start()
        try:
            before = seq_of(srv)
            added = srv.post("/api/teams", kakao(endpoint="http://localhost:9/v1"))
            assert added.status_code == status, added.text
            if status == 400:
                assert added.json()["error"].startswith(
                    "field 'endpoint': host 'localhost' resolves to ")
                assert "a loopback address" in added.json()["error"]
                for endpoint, named in (("http://2130706433:9/v1", "the address 127.0.0.1"),
                                        ("http://0x7f000001:9/v1", "the address 127.0.0.1"),
                                        ("http://[::ffff:169.254.169.254]/v1",
                                         ": 169.254.169.254, a link-local address")):
                    refused = srv.post("/api/teams", kakao(endpoint=endpoint))
                    assert refused.status_code == 400 and named in refused.json()["error"]
                assert seq_of(srv) == before  # nothing recorded
        finally:
            srv.stop()
