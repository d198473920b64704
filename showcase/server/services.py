"""What the endpoints share: the engine, the tokens, the teams, the proxy and the bench."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import HTTPConnection

from showcase.bench.runs import Bench
from showcase.core.showfile import Show
from showcase.log.base import EventLog
from showcase.log.votes import SQLiteVotes, VoteStore
from showcase.models.teams import Teams
from showcase.runtime.engine import Engine
from showcase.runtime.outputs import Outputs, build_hash
from showcase.runtime.transparency import Transparency, load_or_create_key, origin_of
from showcase.server.auth import Tokens
from showcase.server.pages import overlays_dir
from showcase.server.proxy import Proxy
from showcase.server.table import Commands
from showcase.voting.booth import Booth


@dataclass(frozen=True, slots=True)
class Services:
    """One server's parts, made by ``build_app`` and kept in ``app.state.services``."""

    show: Show
    data_dir: Path
    engine: Engine
    tokens: Tokens
    teams: Teams
    proxy: Proxy
    bench: Bench
    commands: Commands
    booth: Booth
    outputs: Outputs  # the overlay pages connected to this node

    @classmethod
    def build(cls, show: Show, data_dir: str | Path, tokens: Tokens | None = None,
              event_log: EventLog | None = None, log_key: str | Path | None = None
              ) -> Services:
        """The parts for ``show``; ``event_log`` replaces the SQLite log in ``data_dir``;
        ``log_key`` is the checkpoints' signing key (default: made in ``data_dir``)."""
        transparency = Transparency(load_or_create_key(data_dir, log_key),
                                    origin_of(show.title_en))
        engine = Engine(show, data_dir, log=event_log, transparency=transparency)
        tokens = tokens or Tokens.resolve(show, data_dir)
        teams = Teams(engine)
        return cls(show, Path(data_dir), engine, tokens, teams, Proxy(teams), Bench(teams),
                   Commands(engine, tokens), Booth(engine, vote_store(data_dir, event_log)),
                   Outputs(engine, build_hash(overlays_dir())))


def vote_store(data_dir: str | Path, event_log: EventLog | None) -> VoteStore:
    """Votes beside the log: in Redis when the log is (every node shares them), else in
    the data directory. A Redis log exists only once its module is loaded: a server on
    SQLite never loads the Redis client."""
    redis_log = sys.modules.get("showcase.log.redis_streams")
    if redis_log is not None and isinstance(event_log, redis_log.RedisLog):
        from showcase.log.redis_votes import RedisVotes

        return RedisVotes(event_log.url, prefix=f"{event_log.stream}:votes",
                          relaxed=event_log.relaxed)
    return SQLiteVotes(data_dir)


def services(connection: HTTPConnection) -> Services:
    """The parts of the server that ``connection`` came to."""
    found = connection.app.state.services
    assert isinstance(found, Services)
    return found
