"""Tokens per role: from the environment, else the show file, else generated once.

Generated tokens are kept in the data directory (readable by its owner only), so a
restart keeps every remote and console working.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from showcase.core.errors import Forbidden, Unauthorized
from showcase.core.showfile import ROLES_WITH_TOKENS, Show

ENV = {role: f"SHOWCASE_{role.upper()}_TOKEN" for role in ROLES_WITH_TOKENS}
TOKENS_FILE = "tokens.json"
VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Tokens:
    by_role: dict[str, str]
    encoded: tuple[tuple[str, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # compared on every command: encoded once
        object.__setattr__(self, "encoded", tuple((r, t.encode()) for r, t in self.by_role.items()))

    @classmethod
    def resolve(cls, show: Show, data_dir: str | Path) -> Tokens:
        path = Path(data_dir) / TOKENS_FILE
        stored: dict[str, str] = orjson.loads(path.read_bytes()) if path.exists() else {}
        tokens: dict[str, str] = {}
        for role in ROLES_WITH_TOKENS:
            tokens[role] = (os.environ.get(ENV[role]) or show.tokens.get(role)
                            or stored.get(role) or f"{role[:3]}-{secrets.token_urlsafe(18)}")
        generated = {r: t for r, t in tokens.items()
                     if not os.environ.get(ENV[r]) and not show.tokens.get(r)}
        if generated != {r: stored.get(r) for r in generated}:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(orjson.dumps({**stored, **generated}, option=orjson.OPT_INDENT_2))
        if len(set(tokens.values())) != len(tokens):
            raise ValueError("two roles have the same token; give each role its own")
        return cls(tokens)

    def role_of(self, authorization: str | None, query_token: str | None = None) -> str:
        """The caller's role; no credentials is a viewer, wrong ones are refused."""
        token = query_token
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthorized("the Authorization header must be 'Bearer TOKEN'")
            token = value.strip()
        if not token:
            return VIEWER
        given = token.encode()
        for role, expected in self.encoded:
            if hmac.compare_digest(given, expected):
                return role
        raise Unauthorized("the token is not valid for this show")


def require(role: str, allowed: tuple[str, ...], what: str) -> None:
    if role in allowed:
        return
    if role == VIEWER:
        raise Unauthorized(f"{what} needs a token", f"send 'Authorization: Bearer TOKEN' "
                           f"with the token of: {', '.join(allowed)}")
    raise Forbidden(f"{what} is not allowed for the {role} role",
                    f"allowed roles: {', '.join(allowed)}")
