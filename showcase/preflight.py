"""What ``showcase serve`` and ``showcase demo`` tell the crew before the show starts: the
warnings to hear before going on air (a team's endpoint that does not answer, a key that is
not set, criteria that do not add up, a show file without rounds), every page's address,
and a QR code that opens the presenter's remote, with its token, on a phone.

``serve --strict`` turns the warnings into a refusal to start; the log is not opened.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path

import httpx

from showcase.core.errors import ShowcaseError
from showcase.core.showfile import Show, Team
from showcase.server.pages import OVERLAYS

#: How long a team's endpoint has to answer ``GET /models`` before serve warns.
REACH_TIMEOUT = 3.0


def show_warnings(show: Show, env: Mapping[str, str] = os.environ) -> list[str]:
    """What in the show file itself would surprise the crew on the day."""
    warnings = []
    total = sum(c.points for c in show.criteria)
    if abs(total - show.total_points) > 1e-9:
        parts = " + ".join(f"{c.id} {c.points:g}" for c in show.criteria)
        warnings.append(f"the criteria add up to {total:g} points ({parts}), not the "
                        f"{show.total_points:g} a round is out of ([show] total_points)")
    if not _file_has_rounds(show.path):
        names = ", ".join(r.id for r in show.rounds)
        warnings.append(f"the show file has no [[rounds]]: one round ({names}) is assumed")
    for team in show.teams:
        if team.api_key_env and not env.get(team.api_key_env):
            warnings.append(f"team {team.id}: its key variable {team.api_key_env} is not set: "
                            "its endpoint will refuse every demo and benchmark")
    return warnings


def _file_has_rounds(path: str) -> bool:
    if not path or path.startswith("<"):
        return True  # not read from a file (the demo's show): nothing was left out
    try:
        return "rounds" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # load_show has read it already; a file that changed since is not ours


async def endpoint_warnings(show: Show, env: Mapping[str, str] = os.environ,
                            timeout: float = REACH_TIMEOUT) -> list[str]:
    """Every team whose endpoint does not answer ``GET /models``, all asked at once."""
    teams = [t for t in show.teams if t.endpoint]
    async with httpx.AsyncClient(timeout=timeout) as client:
        found = await asyncio.gather(*(_reach(client, t, env) for t in teams))
    return [w for w in found if w]


async def _reach(client: httpx.AsyncClient, team: Team, env: Mapping[str, str]) -> str:
    key = env.get(team.api_key_env, "") if team.api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    where = f"team {team.id}: {team.endpoint}"
    try:
        answer = await client.get(f"{team.endpoint.rstrip('/')}/models", headers=headers)
    except httpx.ConnectError:
        return f"{where} cannot be reached (connection refused or no such host)"
    except httpx.TimeoutException:
        return f"{where} did not answer GET /models within {client.timeout.read:g} s"
    except httpx.HTTPError as exc:
        return f"{where} failed: {exc}"
    if answer.status_code in (401, 403):
        return f"{where} refused the key (HTTP {answer.status_code})"
    if answer.status_code >= 500:
        return f"{where} answered GET /models with HTTP {answer.status_code}"
    return ""


def check(show: Show, strict: bool, reach: bool = True) -> None:
    """Print the warnings; with ``strict``, refuse to start when there is any."""
    warnings = show_warnings(show)
    if reach:
        warnings += asyncio.run(endpoint_warnings(show))
    for warning in warnings:
        print(f"  WARNING: {warning}", flush=True)
    if warnings and strict:
        raise ShowcaseError(f"refusing to start (--strict): {len(warnings)} warning"
                            f"{'s' if len(warnings) != 1 else ''} above",
                            "fix them, or start without --strict")


def pages(url: str) -> list[tuple[str, str]]:
    """(what, address) of every page a person opens, overlays first."""
    found = [(f"overlay: {name}", f"{url}/overlays/{page}") for page, name, _ in OVERLAYS]
    return [*found,
            ("presenter remote (phone)", f"{url}/remote"),
            ("judges' sheets (phone or tablet)", f"{url}/judge"),
            ("how to verify the results", f"{url}/verify"),
            ("index of every page", f"{url}/")]


def phone_url(url: str, host: str) -> str:
    """The server's address as a phone on the same network opens it."""
    if host not in ("0.0.0.0", "::", ""):
        return url
    port = url.rsplit(":", 1)[1]
    return f"http://{lan_address()}:{port}"


def lan_address() -> str:
    """This machine's address on its network (no packet is sent: a UDP socket is only
    pointed at an address to learn which interface would carry it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def remote_qr(address: str) -> str:
    """The QR code of ``address`` in text, for a terminal: two rows of modules a line."""
    import segno

    out = io.StringIO()
    segno.make(address, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def print_pages(url: str, host: str, presenter_token: str) -> None:
    """Every page's address, and the remote's QR code for the presenter's phone."""
    width = max(len(what) for what, _ in pages(url))
    lines = [f"    {what:<{width}}  {address}" for what, address in pages(url)]
    print("\n  pages\n" + "\n".join(lines), flush=True)
    remote = f"{phone_url(url, host)}/remote#token={presenter_token}"
    print(f"\n  the presenter's phone: scan to open the remote, signed in\n  {remote}",
          flush=True)
    if host in ("127.0.0.1", "localhost", "::1"):
        print("  (this server listens on this machine only: for a phone, start it with "
              "--host 0.0.0.0)", flush=True)
    print(remote_qr(remote), flush=True)
