"""An endpoint's host looked up before the egress policy judges it (core/egress.py).

A team added at run time on a host name allowed only through ``*.domain`` or ``*`` is
judged by the addresses the name resolves to now, so that a name pointing at a private,
link-local or metadata address is refused like the address itself. The lookup is the
system resolver's (``getaddrinfo``, as httpx connects), bounded by the command deadline;
what it found goes into the command as a ``Resolved``, which the pure core checks.

Not covered: a name whose DNS answer changes after the check (rebinding). The server
connects by name later, and is not pinned to the addresses checked here
(docs/security.md).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from msgspec import UNSET

from showcase.core.egress import EgressPolicy, Resolved, origin_of


async def lookup(host: str, port: int, timeout: float) -> Resolved:
    """Every address ``host`` resolves to now, or why none could be found in time."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        return Resolved(host, error=f"no answer from the resolver within {timeout:g} s")
    except OSError as exc:
        return Resolved(host, error=exc.strerror or str(exc))
    addresses = dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in found)
    return Resolved(host, tuple(addresses))


async def resolve_endpoint(args: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
    """``add_team``'s arguments ``(body, egress)``, with the endpoint's host looked up
    when the policy judges it by its addresses."""
    body, egress = args
    assert isinstance(egress, EgressPolicy)
    endpoint = body.endpoint
    if endpoint is UNSET or not isinstance(endpoint, str) or not endpoint:
        return args
    _, host, port = origin_of(endpoint)
    if not host or not egress.needs_lookup(host):
        return args
    return (body, egress, await lookup(host, max(port, 0), timeout))
