"""Where the server may send a request, and which team's key may go with it.

The server calls the teams' endpoints (health checks, demos, benchmarks, the proxy) with
each team's API key, read from an environment variable. A command that adds a team names
that variable and the endpoint, so without a policy one stolen operator token could send
any secret of the server's environment (a role's token, another team's key) to a host of
its choosing, or make the server call a cloud metadata address. The policy:

- A team's key comes only from the variable the show file names for that team, or from
  ``SHOWCASE_KEY_<ID>`` (the team's id in capitals, ``-`` as ``_``) when the show file
  gives that variable to no other team. A token's variable (``SHOWCASE_*_TOKEN``) is never
  a key, not even in the show file.
- A key goes only to its own team's endpoint origin (scheme, host and port); redirects
  are not followed (models/upstream.py).
- An endpoint sent at run time must be on an allowed host: the hosts of the show file's
  teams, and ``[proxy] allowed_hosts`` (by default loopback: ``localhost``, ``127.0.0.1``,
  ``::1``). An entry is a host name, an address, ``*.domain`` (its subdomains), a network
  (``10.0.0.0/8``) or ``*`` (any host name or public address). A private, link-local,
  reserved or metadata address, and a metadata host name, pass only when named
  themselves (or their network), never through ``*``.

A host name allowed only through ``*.domain`` or ``*`` is also judged by the addresses it
resolves to when the team is added: each must be public, or named in ``allowed_hosts``
itself or by its network; a name listed itself (``localhost``, a show file team's host)
is trusted whatever it resolves to. The lookup is the server's (server/hosts.py); this
module only judges the addresses it found (``Resolved``), and stays pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from showcase.core.errors import InvalidRequest

KEY_PREFIX = "SHOWCASE_KEY_"
TOKEN_VARIABLE = re.compile(r"^SHOWCASE_\w*TOKEN\w*$")
LOOPBACK = ("localhost", "127.0.0.1", "::1")
# Names that reach a cloud's instance metadata from inside it, whatever DNS says elsewhere.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data",
                            "instance-data.ec2.internal", "metadata.azure.com"})
# A host made only of digits, dots and hex: an address spelt the way inet_aton reads it
# (2852039166, 0xa9.0xfe.0xa9.0xfe, 169.254.43518) that is not a canonical address.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*$", re.I)

_HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a lookup of ``host`` found, now: its addresses, or why there are none."""

    host: str
    addresses: tuple[str, ...] = ()
    error: str = ""


def key_variable_of(team_id: str) -> str:
    """The variable a team's key may always come from, unless the show file gives it to
    another team: ``SHOWCASE_KEY_LG`` for ``lg``."""
    return KEY_PREFIX + team_id.upper().replace("-", "_")


def is_token_variable(name: str) -> bool:
    """A variable that holds one of showcase's own tokens, never a team's key."""
    return bool(TOKEN_VARIABLE.match(name))


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, the port filled in from the scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:  # out of range: an origin no request can have
        port = -1
    return scheme, (parts.hostname or "").rstrip(".").lower(), port


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """The show file's rules for the teams' endpoints and keys, fixed at start."""

    names: frozenset[str]  # host names and addresses allowed as they are
    suffixes: tuple[str, ...]  # "*.lg.example" as ".lg.example"
    networks: tuple[Network, ...]
    any_public: bool  # "*"
    key_owners: Mapping[str, str]  # a key variable the show file names -> its team

    @classmethod
    def allowing(cls, entries: Iterable[str], key_owners: Mapping[str, str]) -> EgressPolicy:
        """A policy for the hosts ``entries`` (each checked by ``host_entry_problem``)
        and the key variables the show file gives its teams (variable -> team)."""
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[Network] = []
        any_public = False
        for entry in (e.strip().lower().rstrip(".") for e in entries):
            if entry == "*":
                any_public = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
            else:
                names.add(str(_address(entry) or entry))
        return cls(frozenset(names), tuple(suffixes), tuple(networks), any_public,
                   dict(key_owners))

    def check_team(self, team_id: str, endpoint: str, key_variable: str,
                   resolved: Resolved | None = None) -> None:
        """Refuse (400, naming the field and the rule) a team's endpoint or key variable
        that this policy does not allow; ``resolved``: the endpoint's host looked up, for
        a name that ``needs_lookup``."""
        if endpoint:
            self.check_endpoint(endpoint, resolved)
        if key_variable:
            self.check_key_variable(team_id, key_variable)

    def needs_lookup(self, host: str) -> bool:
        """Whether ``host`` is a name allowed only through ``*.domain`` or ``*``: then the
        addresses it resolves to decide (``check_endpoint``)."""
        host = host.rstrip(".").lower()
        return (_address(host) is None and host not in self.names
                and self.allows_host(host))

    def check_endpoint(self, endpoint: str, resolved: Resolved | None = None) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise InvalidRequest(f"field 'endpoint' {endpoint!r} must be an http:// or "
                                 "https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise InvalidRequest("field 'endpoint' must not carry a user name or password",
                                 "give the key's variable in 'api_key_env' instead")
        try:
            parts.port  # noqa: B018 (a port out of range raises here)
        except ValueError:
            raise InvalidRequest(f"field 'endpoint' {endpoint!r} has an invalid port") from None
        host = origin_of(endpoint)[1]
        if not self.allows_host(host):
            spelt = _numeric_address(host)
            address = spelt or _address(host)
            why = ("" if address is None or address.is_global
                   else f": the address {spelt} spelt as a number" if spelt is not None
                   else f": {_kind(address)}" if str(address) == host
                   else f": {address}, {_kind(address)}")
            raise InvalidRequest(
                f"field 'endpoint': host {host!r} is not allowed{why}",
                "an endpoint added at run time must be on a host of the show file's teams "
                "or in its [proxy] allowed_hosts; private, link-local and metadata addresses "
                "only when named there, and an address only as written canonically")
        if self.needs_lookup(host):
            if resolved is None or resolved.host != host:
                raise InvalidRequest(f"field 'endpoint': host {host!r} was not looked up",
                                     "send the command again")
            self._check_addresses(host, resolved)

    def _check_addresses(self, host: str, resolved: Resolved) -> None:
        if resolved.error or not resolved.addresses:
            raise InvalidRequest(
                f"field 'endpoint': host {host!r} cannot be resolved"
                + (f" ({resolved.error})" if resolved.error else ""),
                "a name allowed through '*' or '*.domain' is checked by the addresses it "
                "resolves to; add it once its DNS answers")
        for text in resolved.addresses:
            address = _address(text)
            if address is None or not self._address_allowed(address):
                what = _kind(address) if address is not None else "not an address"
                raise InvalidRequest(
                    f"field 'endpoint': host {host!r} resolves to {address or text}, {what}",
                    f"allow {address or text} (or its network) in [proxy] allowed_hosts, or "
                    f"name {host!r} there itself, if the server may call it")

    def _address_allowed(self, address: Address) -> bool:
        return (str(address) in self.names or any(address in n for n in self.networks)
                or (address.is_global and not address.is_multicast))
    def allows_host(self, host: str) -> bool:
        host = host.rstrip(".").lower()
        address = _address(host)
        if address is None and _NUMERIC_HOST.match(host):
            return False  # an address in disguise: only a canonical one can be judged
        if (str(address) if address is not None else host) in self.names:
            return True
        if address is not None:
            if any(address in network for network in self.networks):
                return True
            return self.any_public and address.is_global and not address.is_multicast
        if host in METADATA_NAMES:
            return False
        return self.any_public or any(host.endswith(s) for s in self.suffixes)

    def key_variable_allowed(self, team_id: str, name: str) -> bool:
        """Whether team ``team_id``'s key may be read from variable ``name``."""
        if is_token_variable(name):
            return False
        owner = self.key_owners.get(name)
        if owner is not None:
            return owner == team_id
        return name == key_variable_of(team_id)

    def check_key_variable(self, team_id: str, name: str) -> None:
        if self.key_variable_allowed(team_id, name):
            return
        owner = self.key_owners.get(name)
        why = (f"{name!r} holds a showcase token" if is_token_variable(name)
               else f"{name!r} is the key of team {owner!r}" if owner is not None
               else f"{name!r} is not a key variable of team {team_id!r}")
        raise InvalidRequest(
            f"field 'api_key_env': {why}",
            f"a team's key comes from the variable the show file names for it, or from "
            f"{key_variable_of(team_id)}")

    def key_of(self, team_id: str, name: str, environ: Mapping[str, str]) -> str:
        """Team ``team_id``'s key from ``environ``; '' when it has none or may not read
        ``name`` (a log written before this policy may name any variable)."""
        if not name or not self.key_variable_allowed(team_id, name):
            return ""
        return environ.get(name, "")


def host_entry_problem(entry: str) -> str:
    """What is wrong with an entry of ``[proxy] allowed_hosts``, or ''."""
    entry = entry.strip().lower()
    if entry == "*" or _address(entry) is not None:
        return ""
    if "/" in entry and "://" not in entry:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"{entry!r} is not a network like '10.0.0.0/8'"
        return ""
    name = entry.removeprefix("*.").rstrip(".")
    if not _HOST_NAME.match(name) or _NUMERIC_HOST.match(name):
        return (f"{entry!r} is not a host name, an address, '*.domain', a network or '*'")
    return ""


def _kind(address: Address) -> str:
    """Why an address is not public, in words for a refusal."""
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    return "not a public address"


def _numeric_address(host: str) -> ipaddress.IPv4Address | None:
    """The address a host such as ``2130706433`` or ``0x7f.1`` means to inet_aton (what a
    C resolver reads it as), or None when it is not one spelt that way."""
    if not _NUMERIC_HOST.match(host) or _address(host) is not None:
        return None
    parts = host.split(".")
    try:
        values = [int(p, 16) if p.lower().startswith("0x") else
                  int(p, 8) if len(p) > 1 and p.startswith("0") else int(p) for p in parts]
    except ValueError:
        return None
    if len(values) > 4 or any(v < 0 for v in values):
        return None
    # a.b.c.d; a.b.c (c: 16 bits); a.b (b: 24 bits); a (32 bits)
    last_bits = 8 * (5 - len(values))
    if any(v > 255 for v in values[:-1]) or values[-1] >= 1 << last_bits:
        return None
    number = values[-1]
    for i, v in enumerate(values[:-1]):
        number |= v << (24 - 8 * i)
    return ipaddress.IPv4Address(number)


def _address(host: str) -> Address | None:
    """``host`` as an address (an IPv4 address mapped into IPv6 as the IPv4 one), or None
    for a name."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
