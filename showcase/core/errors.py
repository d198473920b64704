"""Errors that say which part failed; routes turn them into JSON answers."""

from __future__ import annotations


class ShowcaseError(Exception):
    """Base of every error showcase raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "detail": self.detail}


class ShowFileError(ShowcaseError):
    """The show file cannot be used: names the file, the key and what is wrong."""

    code = "show_file"

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


class BadRequest(ShowcaseError):
    status = 400
    code = "bad_request"


class Unauthorized(ShowcaseError):
    status = 401
    code = "unauthorized"


class Forbidden(ShowcaseError):
    status = 403
    code = "forbidden"


class NotFound(ShowcaseError):
    status = 404
    code = "not_found"


class Conflict(ShowcaseError):
    """The command does not fit the show's current state (stale seq, wrong phase)."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, detail: str = "", **extra: object) -> None:
        super().__init__(message, detail)
        self.extra = extra

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), **self.extra}


class PayloadTooLarge(ShowcaseError):
    status = 413
    code = "payload_too_large"


class Unavailable(ShowcaseError):
    """The log cannot take writes right now; nothing was recorded."""

    status = 503
    code = "unavailable"


class LogError(ShowcaseError):
    """The event log is unreadable or inconsistent (a bad import, a corrupt file)."""

    code = "log"
