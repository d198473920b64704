"""Errors that say what failed; the web edge (server/web.py) turns them into HTTP answers.

The core knows nothing of HTTP: an error is named for what went wrong (an invalid request,
an unknown id, a command that does not fit the state), and ``server.web.STATUS`` maps
each kind to its status. A message is for a person: what is wrong; ``detail`` says what
would be right, and ``extra`` carries what a client acts on (the log's seq, the step on
screen), sent beside them in the JSON answer.
"""

from __future__ import annotations


class ShowcaseError(Exception):
    """Base of every error showcase raises on purpose."""

    def __init__(self, message: str, detail: str = "", **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.extra = extra

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "detail": self.detail, **self.extra}


class InvalidRequest(ShowcaseError):
    """A request is malformed: a field of the wrong type, a value out of range, a missing
    reason, a bad header."""


class NotAuthenticated(ShowcaseError):
    """No token, or a token that is not one of this show's."""


class NotPermitted(ShowcaseError):
    """The caller's role may not do this (or the operator has locked the reveal)."""


class Unknown(ShowcaseError):
    """An id the show does not have: a team, round, criterion, judge, run or suite."""


class StateConflict(ShowcaseError):
    """The command does not fit the show's state now (a stale seq, a frozen round); the
    answer carries the log's seq, so the client can reload and decide again."""


class RateLimited(ShowcaseError):
    """A rule of pace refused the request (a voter's limit, a vote sent too soon); the
    answer names the rule and, in ``retry_after``, the seconds until it may pass."""


class TooLarge(ShowcaseError):
    """A request body over its limit; it was not read to its end."""


class LogUnavailable(ShowcaseError):
    """The log cannot take writes right now; nothing was recorded."""


class LogError(ShowcaseError):
    """The event log is unreadable or inconsistent (a bad import, a corrupt file)."""


class ShowFileError(ShowcaseError):
    """The show file cannot be used: names the file, the key and what is wrong."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem
        self.problems = [(key, problem)]

    @classmethod
    def many(cls, path: str, problems: list[tuple[str, str]]) -> ShowFileError:
        """Every problem of a file, one a line; ``key`` and ``problem`` are the first's."""
        error = cls(path, *problems[0])
        error.problems = list(problems)
        if len(problems) > 1:
            lines = [f"{path}: {key}: {problem}" if key else f"{path}: {problem}"
                     for key, problem in problems]
            error.message = f"{len(problems)} problems:\n" + "\n".join(lines)
            error.args = (error.message,)
        return error


# The names these errors had when they were named after HTTP statuses, kept while the
# modules that still use them move to the names above.
BadRequest = InvalidRequest
Unauthorized = NotAuthenticated
Forbidden = NotPermitted
NotFound = Unknown
Conflict = StateConflict
PayloadTooLarge = TooLarge
Unavailable = LogUnavailable
