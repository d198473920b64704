"""Identity leaks: an answer that names its model, team or organisation is never served.

How the server uses it: from the show file it gathers, per team, the names that would give
the team away (Korean and English team and organisation names, model names: "LG AI
Research", "LG AI연구원", "EXAONE", "엑사원", ...) and builds one `LeakFilter` over all of
them (an answer naming a rival also unblinds the battle). Every answer is checked before
it enters the battle pool; one that leaks is withheld, with the name it matched shown to
the operator.

Matching, so that the usual disguises do not get through:

- both the answer and the names are NFKC-normalised (full-width ``ＬＧ`` is ``LG``) and
  case-folded, and invisible format characters (zero-width spaces, joiners) are dropped;
- between any two characters of a name, any run of spaces, hyphens, dashes, underscores,
  dots or middle dots may appear: "HyperCLOVA" also catches "Hyper CLOVA", "hyper-clova"
  and "h.y.p.e.r clova";
- a name that starts with a Latin letter or digit must not be preceded by one, and one
  that ends with a Latin letter must not be followed by one, so "Solar Pro" does not fire
  on "solar protection"; digits may follow ("EXAONE3"). Hangul has no such boundaries,
  because Korean attaches particles to names ("엑사원은", "네이버가").

A name that is also a common word ("Solar") will withhold innocent answers about it: give
the longer form ("Solar Pro") when that matters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from showcase.voting.errors import VotingError

_SEPARATORS = r"[\s\-‐‑‒–—―_.·・]*"


def normalise(text: str) -> str:
    """NFKC, case-folded, format characters removed: the form both sides are compared in."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


@dataclass(frozen=True, slots=True)
class Leak:
    """The name an answer matched (as the caller gave it) and the text that matched it (in
    the normalised answer)."""

    name: str
    found: str


class LeakFilter:
    """Compiled once per show from the caller's names; `check` each answer."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: dict[str, str] = {}  # group name -> the caller's name
        parts = []
        for name in names:
            compact = re.sub(_SEPARATORS, "", normalise(name))
            if len(compact) < 2:
                raise VotingError("an identity name must have at least two letters",
                                  f"name {name!r} would match almost any answer")
            group = f"n{len(self.names)}"
            self.names[group] = name
            body = _SEPARATORS.join(re.escape(ch) for ch in compact)
            before = r"(?<![a-z0-9])" if re.match(r"[a-z0-9]", compact[0]) else ""
            after = r"(?![a-z])" if re.match(r"[a-z]", compact[-1]) else ""
            parts.append(f"(?P<{group}>{before}{body}{after})")
        if not parts:
            raise VotingError("no identity names to filter with", "give the show's team, "
                              "organisation and model names")
        self._pattern = re.compile("|".join(parts))

    def check(self, answer: str) -> Leak | None:
        """The first name the answer reveals, or None when it can be served."""
        found = self._pattern.search(normalise(answer))
        if found is None or found.lastgroup is None:
            return None
        return Leak(self.names[found.lastgroup], found.group(0))


def find_leak(answer: str, names: Iterable[str]) -> Leak | None:
    """One-off `LeakFilter(names).check(answer)`."""
    return LeakFilter(names).check(answer)
