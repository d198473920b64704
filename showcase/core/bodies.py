"""The request bodies of the show's commands, as declared types.

Each command takes one of these; the web edge decodes a request into it before the command
runs (server/table.py), and /openapi.json publishes their JSON Schema. A field that may be
left out, and whose absence means something other than a value, is ``X | UnsetType``: left
out is not the same as sent as null. What depends on the state (an unknown team, a frozen
round) is checked by the commands, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from showcase.core.decode import Body
from showcase.core.text import MAX_NAME, MAX_PROMPT, MAX_REASON, free_text

Number = int | float  # an int stays an int in the event it becomes
ExpectSeq = Annotated[int, Meta(description="refuse the command (409) unless the log is at "
                                            "this seq")]
Reason = Annotated[str, free_text(MAX_REASON, "who asked for it and why, kept in the log; "
                                              "where it is required, not empty")]
RoundId = Annotated[str, Meta(description="the round; empty or left out: the current round")]
MAX_DEMO_TOKENS = 4096
SPEEDS = (0.25, 4.0)  # the reveal's slowest and fastest


class ScoreBody(Body):
    """A raw value for a team (or one judge's sheet); another value for the same cell is a
    correction, and needs a reason."""

    criterion: Annotated[str, Meta(description="the criterion's id")]
    team: Annotated[str, Meta(description="the team's id; it must be active in the round")]
    value: Annotated[Number | None, Meta(description=(
        "the raw value, within the criterion's scale (inclusive); null clears a value "
        "that was entered"))]
    judge: Annotated[str, Meta(description=(
        "whose sheet this is: required for a criterion scored by judges, left out "
        "otherwise"))] = ""
    round: RoundId = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET
    expect_previous: Annotated[
        Number | UnsetType | None,
        Meta(description=("the value the cell held when your screen showed it (null: empty); "
                          "anything else now is refused (409, with 'previous'). It guards "
                          "this one cell only, so it works while the seq moves"))] = UNSET


class StatusBody(Body):
    """Disqualify, withdraw or reinstate a team."""

    reason: Reason
    announce: Annotated[bool, Meta(description=(
        "true: the public sees the change (and its reason) now; false: it stays sealed "
        "until the round is published"))] = False
    expect_seq: ExpectSeq | UnsetType = UNSET


class TeamBody(Body):
    """A replacement team, joining from a round that has not started."""

    id: Annotated[str, Meta(description="lower-case letters, digits, '-' or '_', at most 32")]
    name_ko: Annotated[str, free_text(MAX_NAME, "the Korean name, not empty")]
    name_en: Annotated[str, free_text(MAX_NAME, "the English name, not empty")]
    org: Annotated[str, free_text(MAX_NAME, "the organisation behind the team")
                   ] | UnsetType = UNSET
    colour: Annotated[str, Meta(description="like '#a50034'")] | UnsetType = UNSET
    endpoint: Annotated[str, Meta(description=(
        "http:// or https:// base URL, on a host the show file allows: its teams' hosts and "
        "[proxy] allowed_hosts (by default loopback); docs/security.md"))] | UnsetType = UNSET
    api_key_env: Annotated[str, Meta(description=(
        "the environment variable on the server that holds the team's API key: the one the "
        "show file names for this team, or SHOWCASE_KEY_<ID> (like SHOWCASE_KEY_KAKAO); the "
        "key itself never travels, and goes only to this team's endpoint"))] | UnsetType = UNSET
    model_name: Annotated[str, free_text(MAX_NAME, "the model's name as viewers read it, "
                                                   "like 'EXAONE 4.0'")] | UnsetType = UNSET
    round: Annotated[str, Meta(description="the round it joins; by default the next "
                                           "pending one")] = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


class RoundBody(Body):
    """Start, publish or freeze a round."""

    expect_seq: ExpectSeq | UnsetType = UNSET


class JuryBody(Body):
    """The jury's order of the teams tied across the cut, best first."""

    order: Annotated[list[str], Meta(description=(
        "every team tied across the cut, each exactly once, best first"))]
    reason: Reason
    expect_seq: ExpectSeq | UnsetType = UNSET


class UnfreezeBody(Body):
    """Let a frozen round change again, before its reveal's first step."""

    reason: Reason
    expect_seq: ExpectSeq | UnsetType = UNSET


class GraphicBody(Body):
    """Take a graphic to air, or clear it (core/graphics.py)."""

    expect_seq: ExpectSeq | UnsetType = UNSET


class DemoBody(Body):
    """One prompt to several teams at once."""

    prompt: Annotated[str, free_text(MAX_PROMPT, "what the teams answer, sent as the user "
                                     "message; trimmed, not empty", lines=True)]
    system: Annotated[str, free_text(MAX_PROMPT, "a system prompt", lines=True)] = ""
    teams: Annotated[list[str], Meta(description=(
        "who answers, in this order on screen, each once (any team with an endpoint). "
        "By default every team whose announced status is active and that has an endpoint: "
        "a sealed disqualification does not change the default"))] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_DEMO_TOKENS)] = 256
    temperature: Annotated[float, Meta(ge=0, le=2)] = 0.7
    expect_seq: ExpectSeq | UnsetType = UNSET


class CancelDemoBody(Body):
    """Cancel the demo in progress."""

    demo: Annotated[int, Meta(description="the demo meant; refused if another is "
                                          "running")] | UnsetType = UNSET
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


Step = Annotated[int, Meta(description=(
    "the step this press goes to (0 is before the first); required for goto. With it a "
    "press is exact: a stale or repeated press is refused instead of moving twice"))]


class MoveBody(Body):
    """A step of the reveal: next, back, goto, ff or reset."""

    round: RoundId = ""
    to: Step | UnsetType = UNSET


class ArmBody(Body):
    """Arm the next step, an elimination, so that next confirms it."""

    round: RoundId = ""
    to: Step | UnsetType = UNSET


class LockBody(Body):
    """Lock or unlock the presenters' reveal controls."""

    locked: Annotated[bool, Meta(description="true locks the presenters' controls")]
    round: RoundId = ""
    reason: Annotated[str, free_text(MAX_REASON, "shown to the presenter (the first 200 "
                                                 "characters)")] = ""


class SpeedBody(Body):
    """How fast the reveal's animations play."""

    speed: Annotated[float, Meta(ge=SPEEDS[0], le=SPEEDS[1],
                                 description="1 is normal, 2 twice as fast")]
    round: RoundId = ""


class ChatBody(Body, forbid_unknown_fields=False):
    """An OpenAI chat completion request; passed to the team as it is, other fields too."""

    messages: Annotated[list[Any], Meta(min_length=1)]


# -- audience voting (core/ballots.py, voting/booth.py) --------------------------------------

PromptId = Annotated[str, Meta(pattern=r"^[\w.-]{1,64}$", description=(
    "the prompt's id: letters, digits, '.', '-' or '_', at most 64"))]


class PoolPrompt(Body):
    """One prompt of the battle pool and every team's answer to it."""

    id: PromptId
    text: Annotated[str, Meta(min_length=1, max_length=8000, description="the prompt, as "
                                                                          "voters read it")]
    answers: Annotated[dict[str, Annotated[str, Meta(max_length=16000)]], Meta(description=(
        "team id -> that team's answer; a prompt enters the battles only with an answer "
        "from every team in the round, and an answer that names its team is withheld"))]


class VotingOpenBody(Body):
    """Open the audience's voting on a round, with its battle pool and its rules."""

    prompts: Annotated[list[PoolPrompt], Meta(min_length=1, max_length=200, description=(
        "the battle pool: prompts run against every team before the show"))]
    criterion: Annotated[str, Meta(description="the criterion the tally enters (a "
                                               "criterion of one value per team)")] = "feedback"
    rule: Annotated[Literal["linear", "win_rate"], Meta(description=(
        "points from ratings: linear from the worst (0) to the best (full points), or full "
        "points times the expected win rate against the field"))] = "linear"
    min_seconds: Annotated[float, Meta(ge=0, le=600, description=(
        "a vote sent sooner after its battle was handed out is refused (429) and kept, "
        "excluded, with the reason"))] = 5.0
    per_session: Annotated[int, Meta(ge=1, le=100_000, description=(
        "the most votes one voting session may cast in this round"))] = 200
    per_address_per_minute: Annotated[int, Meta(ge=1, le=1_000_000, description=(
        "the most votes from one network address in any minute (a school shares one "
        "address: keep it generous)"))] = 600
    minutes: Annotated[float, Meta(ge=0, le=1440, description=(
        "shown as a countdown on the overlays; 0: until the operator closes voting"))] = 0.0
    expect_seq: ExpectSeq | UnsetType = UNSET


class VotingCloseBody(Body):
    """Close the round's voting: the tally is recorded as the criterion, sealed until the
    reveal."""

    keep_voters: Annotated[list[str], Meta(description=(
        "voters the outlier test flagged whose votes count anyway (their pseudonyms, as "
        "GET /api/rounds/{round}/voting lists them); needs a reason"))] = msgspec.field(
        default_factory=list)
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


class SessionBody(Body):
    """A new voting session (no sign-in; the page keeps the id it is given)."""


class VoteBody(Body):
    """One vote on the battle the session was handed."""

    battle: Annotated[str, Meta(min_length=1, max_length=1000, description=(
        "the battle's token, as GET /api/vote/battle gave it"))]
    choice: Annotated[Literal["a", "b", "tie", "bad"], Meta(description=(
        "a: answer A is better, b: answer B, tie: as good, bad: both are bad"))]
