"""The one error of the voting core: bad input, named so a person can act on it."""

from __future__ import annotations

from showcase.core.errors import BadRequest


class VotingError(BadRequest):
    """Votes, teams or answers the voting core cannot use (an unknown team, an outcome that
    is not one of the four, a team against itself, no votes); the message names which."""

    code = "voting"
