"""Tokens per role, and one per judge: from the environment, else the show file, else
generated once.

Generated tokens are kept in the data directory (readable by its owner only), so a
restart keeps every remote, console and judge's page working. Each judge has a token of
their own, which enters that judge's sheets only; one token for every judge exists only
where the show file allows it (``[tokens] shared_judge = true``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from showcase.core.errors import Forbidden, ShowFileError, Unauthorized
from showcase.core.showfile import ROLES_WITH_TOKENS, Show

ENV = {role: f"SHOWCASE_{role.upper()}_TOKEN" for role in ROLES_WITH_TOKENS}
JUDGE_ENV_PREFIX = "SHOWCASE_JUDGE_TOKEN_"
TOKENS_FILE = "tokens.json"
VIEWER = "viewer"
JUDGE = "judge"


def judge_env(judge_id: str) -> str:
    """The variable that holds a judge's token: ``SHOWCASE_JUDGE_TOKEN_KIM`` for ``kim``."""
    return JUDGE_ENV_PREFIX + judge_id.upper().replace("-", "_")


def judge_key(judge_id: str) -> str:
    """A judge's name among the tokens (``judge:kim``), as tokens.json keeps it."""
    return f"{JUDGE}:{judge_id}"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a request: a role, and for a judge's own token, which judge."""

    role: str
    judge: str | None = None


@dataclass(frozen=True, slots=True)
class Tokens:
    by_role: dict[str, str]  # operator, presenter, and judge where one token is shared
    by_judge: dict[str, str] = field(default_factory=dict)  # judge id -> their own token
    # Where each token came from ("operator", "judge:kim" -> environment, show file, generated).
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    encoded: tuple[tuple[Caller, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # compared on every command: encoded once
        callers = [(Caller(r), t) for r, t in self.by_role.items()]
        callers += [(Caller(JUDGE, j), t) for j, t in self.by_judge.items()]
        object.__setattr__(self, "encoded", tuple((c, t.encode()) for c, t in callers))

    @classmethod
    def resolve(cls, show: Show, data_dir: str | Path) -> Tokens:
        path = Path(data_dir) / TOKENS_FILE
        stored: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
        if os.environ.get(ENV[JUDGE]) and not show.shared_judge:
            raise ShowFileError(show.path, "tokens.shared_judge", f"{ENV[JUDGE]} is set, but "
                                "this show gives each judge their own token: unset it, or "
                                "allow one token for every judge with shared_judge = true")
        wanted = {role: (ENV[role], show.tokens.get(role, ""), role[:3])
                  for role in ROLES_WITH_TOKENS if role != JUDGE or show.shared_judge}
        wanted |= {judge_key(j.id): (judge_env(j.id), show.judge_tokens.get(j.id, ""), "jud")
                   for j in show.judges}
        tokens: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key, (env, given, prefix) in wanted.items():
            tokens[key], sources[key] = _first_of(os.environ.get(env), given, stored.get(key),
                                                  prefix)
        generated = {k: t for k, t in tokens.items() if sources[k] == "generated"}
        if generated != {k: stored.get(k) for k in generated}:
            _keep(path, {**stored, **generated})
        if len(set(tokens.values())) != len(tokens):
            raise ValueError("two roles or judges have the same token; give each their own")
        by_judge = {k.partition(":")[2]: t for k, t in tokens.items() if k.startswith("judge:")}
        by_role = {k: t for k, t in tokens.items() if ":" not in k}
        return cls(by_role, by_judge, sources)

    def caller(self, authorization: str | None, query_token: str | None = None) -> Caller:
        """Who is calling; no credentials is a viewer, wrong ones are refused."""
        token = query_token
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthorized("the Authorization header must be 'Bearer TOKEN'")
            token = value.strip()
        if not token:
            return Caller(VIEWER)
        given = token.encode()
        for caller, expected in self.encoded:
            if hmac.compare_digest(given, expected):
                return caller
        raise Unauthorized("the token is not valid for this show")

    def role_of(self, authorization: str | None, query_token: str | None = None) -> str:
        """The caller's role; no credentials is a viewer, wrong ones are refused."""
        return self.caller(authorization, query_token).role


def _first_of(environment: str | None, show_file: str, stored: str | None, prefix: str
              ) -> tuple[str, str]:
    """A token and where it came from: the environment, the show file, an earlier start."""
    if environment:
        return environment, "environment"
    if show_file:
        return show_file, "show file"
    return stored or f"{prefix}-{secrets.token_urlsafe(18)}", "generated"


def _keep(path: Path, tokens: dict[str, str]) -> None:
    """Write the generated tokens, readable by the server's user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(tokens, option=orjson.OPT_INDENT_2))


def require(role: str, allowed: tuple[str, ...], what: str) -> None:
    if role in allowed:
        return
    if role == VIEWER:
        raise Unauthorized(f"{what} needs a token", f"send 'Authorization: Bearer TOKEN' "
                           f"with the token of: {', '.join(allowed)}")
    raise Forbidden(f"{what} is not allowed for the {role} role",
                    f"allowed roles: {', '.join(allowed)}")
