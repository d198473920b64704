"""The rules for free text that a person typed and the show may put on air.

A team's name reaches every overlay the moment it is recorded; a reason is read out with a
disqualification. So every free-text field of a request body is declared with ``free_text``
(core/bodies.py) and checked in one place, ``clean``, when the body is decoded
(core/decode.py): normalised to NFC (the same Korean name typed on two keyboards is the
same text), then refused, naming the field and the rule, when it is

- too long for its field (names 64 characters, reasons 500, prompts 8000), counted after
  normalising;
- holding a control character (a prompt may hold line breaks and tabs);
- holding a bidirectional override or isolate (U+202A-202E, U+2066-2069; they reorder
  what follows on screen) or a bidi mark, or a zero-width space, word joiner or BOM (two
  names that look the same must be the same text);
- not empty but made only of invisible characters (spaces, format characters, Hangul
  fillers, combining marks with nothing to mark).

Pure: the rules run at decode time, before a command sees the state, so a refused body
leaves the log as it was.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from msgspec import Meta

from showcase.core.errors import InvalidRequest

MAX_NAME = 64
MAX_REASON = 500
MAX_PROMPT = 8000

# Characters that reorder or hide text: the bidi controls and marks, and the zero-width
# characters that make two different texts look alike. ZWNJ and ZWJ (U+200C, U+200D)
# are kept: scripts and emoji sequences need them.
FORBIDDEN = {
    **{c: "a bidirectional control" for c in "\u202a\u202b\u202c\u202d\u202e"
                                             "\u2066\u2067\u2068\u2069"},
    **{c: "a bidirectional mark" for c in "\u200e\u200f\u061c"},
    **{c: "a zero-width character" for c in "\u200b\u2060\ufeff"},
}
# Letters that draw nothing: the Hangul fillers and the blank Braille pattern.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf", "Mn", "Me", "Cc"})
LINE_BREAKS = frozenset("\n\t\r")


@dataclass(frozen=True, slots=True)
class TextRule:
    """How long a field may be, and whether it may hold line breaks."""

    max_length: int
    lines: bool = False

    def describe(self) -> str:
        breaks = "; line breaks allowed" if self.lines else ""
        return (f"at most {self.max_length} characters after NFC normalisation; no control "
                f"characters{breaks}, bidi controls or zero-width spaces; not only invisible "
                "characters")


def free_text(max_length: int, description: str, *, lines: bool = False) -> Meta:
    """What makes a field free text: ``Annotated[str, free_text(64, "the name")]`` is
    checked by ``clean`` with this rule when its body is decoded, and /openapi.json
    publishes the rule with the field's description."""
    rule = TextRule(max_length, lines)
    return Meta(description=f"{description} ({rule.describe()})",
                extra_json_schema={"maxLength": max_length}, extra={"text": rule})


def clean(field: str, value: str, rule: TextRule) -> str:
    """``value`` normalised to NFC, or a 400 that names ``field`` and the rule it breaks."""
    if value.isascii() and value.isprintable():
        # The common case, checked at C speed: nothing to normalise, no control or
        # format character, and visible unless blank (blank is empty: the command decides).
        normal = value
    else:
        normal = unicodedata.normalize("NFC", value)
        _check_characters(field, normal, rule)
        if normal.strip() and is_invisible(normal):
            raise InvalidRequest(f"field {field!r} has only invisible characters",
                                 "type something a viewer can read, or leave it empty")
    if len(normal) > rule.max_length:
        raise InvalidRequest(f"field {field!r} is too long ({len(normal)} characters, at most "
                             f"{rule.max_length})")
    return normal


def _check_characters(field: str, value: str, rule: TextRule) -> None:
    for index, char in enumerate(value):
        what = FORBIDDEN.get(char)
        if what is None and unicodedata.category(char) == "Cc" and not (
                rule.lines and char in LINE_BREAKS):
            what = "a control character"
        if what is not None:
            one_line = "; this field is one line" if char in LINE_BREAKS else ""
            raise InvalidRequest(
                f"field {field!r} holds {what} (U+{ord(char):04X}) at character {index + 1}",
                f"retype the text without it{one_line}")


def is_invisible(value: str) -> bool:
    """Whether ``value`` draws nothing a viewer could read."""
    return all(c in BLANK_LETTERS or unicodedata.category(c) in INVISIBLE_CATEGORIES
               for c in value)
