"""The request bodies of the show's commands, as declared types.

Each command takes one of these; the web edge decodes a request into it before the command
runs (server/table.py), and /openapi.json publishes their JSON Schema. A field that may be
left out, and whose absence means something other than a value, is ``X | UnsetType``: left
out is not the same as sent as null. What depends on the state (an unknown team, a frozen
round) is checked by the commands, not here.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType

from showcase.core.checks import Body

Number = int | float  # an int stays an int in the event it becomes
ExpectSeq = Annotated[int, Meta(description="refuse the command (409) unless the log is at "
                                            "this seq")]
Reason = Annotated[str, Meta(description="who asked for it and why (kept in the log)")]
RoundId = Annotated[str, Meta(description="the round; empty or left out: the current round")]
MAX_DEMO_TOKENS = 4096
SPEEDS = (0.25, 4.0)  # the reveal's slowest and fastest


class ScoreBody(Body):
    """A raw value for a team (or one judge's sheet); another value for the same cell is a
    correction, and needs a reason."""

    criterion: str
    team: str
    value: Annotated[Number | None, Meta(description="null clears the value")]
    judge: str = ""
    round: RoundId = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET
    expect_previous: Annotated[
        Number | UnsetType | None,
        Meta(description="refuse (409) unless the cell holds this now (null: empty)")] = UNSET


class StatusBody(Body):
    """Disqualify, withdraw or reinstate a team."""

    reason: Reason
    announce: Annotated[bool, Meta(description="tell the public now, not at the reveal")] = False
    expect_seq: ExpectSeq | UnsetType = UNSET


class TeamBody(Body):
    """A replacement team, joining from a round that has not started."""

    id: Annotated[str, Meta(description="lower-case letters, digits, '-' or '_', at most 32")]
    name_ko: str
    name_en: str
    org: str | UnsetType = UNSET
    colour: Annotated[str, Meta(description="like '#a50034'")] | UnsetType = UNSET
    endpoint: Annotated[str, Meta(description="http:// or https:// base URL")] | UnsetType = UNSET
    api_key_env: str | UnsetType = UNSET
    round: Annotated[str, Meta(description="the round it joins; by default the next "
                                           "pending one")] = ""
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


class RoundBody(Body):
    """Start, publish or freeze a round."""

    expect_seq: ExpectSeq | UnsetType = UNSET


class JuryBody(Body):
    """The jury's order of the teams tied across the cut, best first."""

    order: list[str]
    reason: Reason
    expect_seq: ExpectSeq | UnsetType = UNSET


class UnfreezeBody(Body):
    """Let a frozen round change again, before its reveal's first step."""

    reason: Reason
    expect_seq: ExpectSeq | UnsetType = UNSET


class DemoBody(Body):
    """One prompt to several teams at once."""

    prompt: str
    system: str = ""
    teams: Annotated[list[str], Meta(description="by default every active team with an "
                                                 "endpoint")] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1, le=MAX_DEMO_TOKENS)] = 256
    temperature: Annotated[float, Meta(ge=0, le=2)] = 0.7
    expect_seq: ExpectSeq | UnsetType = UNSET


class CancelDemoBody(Body):
    """Cancel the demo in progress."""

    demo: Annotated[int, Meta(description="the demo meant; refused if another is "
                                          "running")] | UnsetType = UNSET
    reason: Reason = ""
    expect_seq: ExpectSeq | UnsetType = UNSET


Step = Annotated[int, Meta(description="the step this press goes to: a stale or repeated "
                                       "press is refused instead of moving twice")]


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

    locked: bool
    round: RoundId = ""
    reason: str = ""


class SpeedBody(Body):
    """How fast the reveal's animations play."""

    speed: Annotated[float, Meta(ge=SPEEDS[0], le=SPEEDS[1],
                                 description="1 is normal, 2 twice as fast")]
    round: RoundId = ""


class ChatBody(Body, forbid_unknown_fields=False):
    """An OpenAI chat completion request; passed to the team as it is, other fields too."""

    messages: Annotated[list[Any], Meta(min_length=1)]
