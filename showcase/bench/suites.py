"""Benchmark suites: reading them, grading answers, and turning results into a score.

A suite is a JSONL file. Its first line is a header naming the suite::

    {"suite": {"id": "ko-reading", "name_ko": "...", "name_en": "...",
               "category": "comprehension", "language": "ko", "baseline": 0.25}}

and every later line is one item: an ``id``, a ``prompt`` (or chat ``messages``), and a
``grade`` that says how an answer is judged::

    {"id": "q1", "prompt": "...", "choices": ["...", "..."], "grade": {"choice": "B"}}
    {"id": "q2", "prompt": "...", "grade": {"exact": ["서울", "Seoul"]}}
    {"id": "q3", "prompt": "...", "grade": {"number": 42, "tolerance": 0.01}}
    {"id": "q4", "prompt": "...", "grade": {"regex": "(?i)dear\\\\s+\\\\w+"}}

Answers are read the way evaluation harnesses read them, but more forgivingly: text is
NFKC-normalised first, so full-width letters and digits (``Ｂ``, ``４２``) count as their
ASCII forms; a choice letter is found in "The answer is (B).", "정답은 B입니다" or "**B**"
(but "The answer is a bit unclear" gives no A: an article is not a choice); a number is the
first after the last answer mark ("answer:", "정답:", but not the "답" inside "대답"), else
the last in the text, fractions ("3/4") and thousands separators read whole.
tests/test_graders.py holds a table of the answer styles each grader reads.

Scores follow the open LLM leaderboards: a suite's accuracy is normalised between its
baseline (the score of guessing) and 1, and below the baseline counts as 0.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from showcase.core.errors import ShowcaseError
from showcase.core.showfile import ID_RE

CATEGORIES = ("comprehension", "problem_solving", "writing")
GRADES = ("choice", "exact", "number", "regex")
LETTERS = "ABCDEFGHIJ"
MAX_ITEMS = 100_000
MAX_LINE = 64 * 1024


class SuiteError(ShowcaseError):
    """A suite file cannot be used; names the file, the line and what is wrong."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    messages: tuple[dict[str, str], ...]
    grade: dict[str, Any]
    reference: str = ""  # a right answer in words, for mock teams and for people reading


@dataclass(frozen=True, slots=True)
class Suite:
    id: str
    name_ko: str
    name_en: str
    category: str
    language: str
    baseline: float
    items: tuple[Item, ...]
    path: str = ""
    digest: str = ""  # of the file's bytes: a resumed run must grade the same items
    max_tokens: int = 256
    item_index: dict[str, int] = field(default_factory=dict, compare=False)

    def header(self) -> dict[str, Any]:
        """What a run records of the suite."""
        return {"id": self.id, "name_ko": self.name_ko, "name_en": self.name_en,
                "category": self.category, "language": self.language,
                "baseline": self.baseline, "items": len(self.items), "digest": self.digest}


# -- reading ---------------------------------------------------------------------------

def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; a SuiteError names the file and the line."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SuiteError(name, 0, f"cannot be read: {exc.strerror}") from exc
    lines = raw.split(b"\n")
    header: dict[str, Any] | None = None
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            raise SuiteError(name, number, f"the line is longer than {MAX_LINE} bytes")
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SuiteError(name, number, f"is not valid JSON ({exc})") from None
        if not isinstance(obj, dict):
            raise SuiteError(name, number, "must be a JSON object")
        if header is None:
            if "suite" not in obj:
                raise SuiteError(name, number, 'the first line must be the header: '
                                 '{"suite": {"id", "category", "language", "baseline", ...}}')
            header = _header(name, number, obj)
            continue
        item = _item(name, number, obj)
        if item.id in seen:
            raise SuiteError(name, number, f"item id {item.id!r} is used on line "
                             f"{seen[item.id]} already")
        seen[item.id] = number
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise SuiteError(name, number, f"a suite holds at most {MAX_ITEMS} items")
    if header is None:
        raise SuiteError(name, 0, "is empty: it needs a header line and items")
    if not items:
        raise SuiteError(name, 0, "has no items after its header")
    suite = Suite(items=tuple(items), path=name,
                  digest=hashlib.sha256(raw).hexdigest()[:16], **header)
    suite.item_index.update({it.id: i for i, it in enumerate(items)})
    return suite


def _header(path: str, line: int, obj: dict[str, Any]) -> dict[str, Any]:
    h = obj["suite"]
    if not isinstance(h, dict):
        raise SuiteError(path, line, "'suite' must be an object")
    known = {"id", "name_ko", "name_en", "category", "language", "baseline", "max_tokens"}
    unknown = sorted(set(h) - known)
    if unknown:
        raise SuiteError(path, line, f"unknown header key {unknown[0]!r} "
                         f"(known: {', '.join(sorted(known))})")
    ident = h.get("id")
    if not isinstance(ident, str) or not ID_RE.match(ident):
        raise SuiteError(path, line, "the suite's 'id' must be lower-case letters, digits, "
                         "'-' or '_' (at most 32)")
    category = h.get("category")
    if category not in CATEGORIES:
        raise SuiteError(path, line, f"'category' must be one of {', '.join(CATEGORIES)}, "
                         f"not {category!r}")
    language = h.get("language")
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2,3}", language):
        raise SuiteError(path, line, f"'language' must be a language code such as 'ko' or "
                         f"'en', not {language!r}")
    baseline = h.get("baseline")
    if (not isinstance(baseline, int | float) or isinstance(baseline, bool)
            or not 0 <= baseline < 1):
        raise SuiteError(path, line, "'baseline' must be the score of guessing, from 0 to "
                         f"below 1 (0.25 for four choices), not {baseline!r}")
    max_tokens = h.get("max_tokens", 256)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not (
            1 <= max_tokens <= 4096):
        raise SuiteError(path, line, f"'max_tokens' must be from 1 to 4096, not {max_tokens!r}")
    names = {}
    for key in ("name_ko", "name_en"):
        value = h.get(key, ident)
        if not isinstance(value, str) or not value.strip():
            raise SuiteError(path, line, f"{key!r} must be a non-empty string")
        names[key] = value.strip()
    return {"id": ident, "category": category, "language": language,
            "baseline": float(baseline), "max_tokens": max_tokens, **names}


def _item(path: str, line: int, obj: dict[str, Any]) -> Item:
    known = {"id", "prompt", "messages", "choices", "grade", "reference"}
    unknown = sorted(set(obj) - known)
    if unknown:
        raise SuiteError(path, line, f"unknown key {unknown[0]!r} (known: "
                         f"{', '.join(sorted(known))})")
    ident = obj.get("id")
    if isinstance(ident, int) and not isinstance(ident, bool):
        ident = str(ident)
    if not isinstance(ident, str) or not ident.strip() or len(ident) > 64:
        raise SuiteError(path, line, "'id' must be a non-empty string of at most 64 characters")
    if ("prompt" in obj) == ("messages" in obj):
        raise SuiteError(path, line, "give either 'prompt' or 'messages', not both or neither")
    messages: list[dict[str, str]]
    if "prompt" in obj:
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            raise SuiteError(path, line, "'prompt' must be a non-empty string")
        messages = [{"role": "user", "content": obj["prompt"]}]
    else:
        raw = obj["messages"]
        if not isinstance(raw, list) or not raw or not all(
                isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str) and set(m) <= {"role", "content"}
                for m in raw):
            raise SuiteError(path, line, "'messages' must be a list of {\"role\": system, user "
                             "or assistant, \"content\": text}")
        messages = [dict(m) for m in raw]
    grade = obj.get("grade")
    if not isinstance(grade, dict):
        raise SuiteError(path, line, "'grade' is missing: one of {\"choice\": \"B\"}, "
                         "{\"exact\": ...}, {\"number\": ...}, {\"regex\": ...}")
    kinds = [k for k in GRADES if k in grade]
    if len(kinds) != 1:
        raise SuiteError(path, line, f"'grade' must have exactly one of {', '.join(GRADES)}")
    kind = kinds[0]
    allowed = {kind} | ({"tolerance"} if kind == "number" else set())
    extra = sorted(set(grade) - allowed)
    if extra:
        raise SuiteError(path, line, f"'grade' has an unknown key {extra[0]!r} for {kind}")
    choices = obj.get("choices")
    if kind == "choice":
        letter = grade["choice"]
        if choices is not None:
            if (not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS)
                    or not all(isinstance(c, str) and c.strip() for c in choices)):
                raise SuiteError(path, line, f"'choices' must be 2 to {len(LETTERS)} "
                                 "non-empty strings")
            messages[-1] = {**messages[-1], "content": messages[-1]["content"] + "\n\n" +
                            "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))}
        top = len(choices) if choices else len(LETTERS)
        if not isinstance(letter, str) or letter.upper() not in LETTERS[:top]:
            raise SuiteError(path, line, f"grade.choice must be one of the letters "
                             f"{LETTERS[0]} to {LETTERS[top - 1]}, not {letter!r}")
        grade = {"choice": letter.upper(), "letters": LETTERS[:top]}
    elif choices is not None:
        raise SuiteError(path, line, "'choices' goes with a 'choice' grade only")
    elif kind == "exact":
        answers = grade["exact"]
        answers = [answers] if isinstance(answers, str) else answers
        if (not isinstance(answers, list) or not answers
                or not all(isinstance(a, str) and normalise_text(a) for a in answers)):
            raise SuiteError(path, line, "grade.exact must be a non-empty answer or a list of them")
        grade = {"exact": answers}
    elif kind == "number":
        number, tolerance = grade["number"], grade.get("tolerance", 0)
        for key, value in (("number", number), ("tolerance", tolerance)):
            if (not isinstance(value, int | float) or isinstance(value, bool)
                    or not math.isfinite(value)):
                raise SuiteError(path, line, f"grade.{key} must be a number, not {value!r}")
        if tolerance < 0:
            raise SuiteError(path, line, "grade.tolerance must be 0 or more")
        grade = {"number": number, "tolerance": tolerance}
    else:
        pattern = grade["regex"]
        if not isinstance(pattern, str) or not pattern:
            raise SuiteError(path, line, "grade.regex must be a non-empty pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SuiteError(path, line, f"grade.regex does not compile: {exc}") from None
    reference = obj.get("reference", "")
    if not isinstance(reference, str):
        raise SuiteError(path, line, "'reference' must be a string")
    return Item(ident.strip(), tuple(messages), grade, reference)


# -- grading ---------------------------------------------------------------------------

# An answer mark is a whole word: "답" inside "대답" (a reply) or "응답" is not one, nor is
# "answer" inside "answered"; "정답", "해답" and "답변" are words of their own.
_ANSWER_MARK = re.compile(
    r"(?:(?<![A-Za-z])(?:final\s+answer|correct\s+(?:answer|option|choice)|answer)"
    r"(?![A-Za-z])|(?:최종\s*)?(?:정답|해답|답변|(?<![가-힣])답)"
    r"|####|\\boxed\{)"
    r"\s*(?:is|was|would\s+be|will\s+be|은|는|이|:|=|：)?\s*[:：]?\s*", re.I)
_FRACTION = r"\d+\s*[/⁄]\s*\d+(?![/⁄\d])"
_DECIMAL = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d*\.\d+|\d+"
# A number as models write it: a mixed number ("1 1/2"), a fraction ("3/4"), thousands
# separated by commas, a decimal with or without its leading zero; each may be negative.
_NUMBER = re.compile(rf"(?<![\d.])([-−]?)(?:(\d+)\s+({_FRACTION})|({_FRACTION})|({_DECIMAL}))")
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
# Korean sentence endings after an exact answer: "서울입니다", "서울이다", "서울이에요".
_KO_ENDING = re.compile(
    r"\s*(?:입니다|이었습니다|였습니다|이에요|예요|이다|이요|요|다)?\s*[.!。]*\s*$")
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"


def normalise_text(text: str) -> str:
    """NFKC, case-folded, with punctuation and spacing collapsed: for exact match."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCT.sub(" ", text).strip()


def _letter_at(text: str, letters: str) -> str | None:
    """The choice letter that ``text`` (what follows an answer mark) starts with, if any.

    A lower-case letter followed by a word is the article "a" or a word's start ("The
    answer is a bit unclear"), not a choice; so is a capital "I" followed by a word (the
    pronoun: "Answer: I think C"). "3번" and "③" after a mark name the third choice.
    """
    found = re.match(r"[\s*_(\[{\"'“‘「『]*(?:\\text\{|\\textbf\{)?([A-Za-z])(?![A-Za-z])"
                     r"(\s+[a-z가-힣])?", text)
    if found:
        letter, word_after = found.group(1), found.group(2)
        if letter.upper() not in letters:
            return None
        if word_after and (letter.islower() or letter == "I"):
            return None
        return letter.upper()
    number = re.match(r"[\s*(\[]*(?:(\d{1,2})\s*번|([" + _CIRCLED + "]))", text)
    if number:
        index = int(number.group(1)) if number.group(1) else _CIRCLED.index(number.group(2)) + 1
        if 1 <= index <= len(letters):
            return letters[index - 1]
    return None


def extract_choice(answer: str, letters: str = LETTERS) -> str | None:
    """The choice letter a model gave, or None when it gave none (or several at once)."""
    # Circled digits are kept as they are (NFKC would make "③" a plain 3).
    text = "".join(ch if ch in _CIRCLED else unicodedata.normalize("NFKC", ch) for ch in answer)
    valid = f"[{letters}]"
    # 1. An explicit answer, the last one given: "The answer is (B)", "정답은 B", "Answer: b".
    for m in reversed(list(_ANSWER_MARK.finditer(text))):
        letter = _letter_at(text[m.end():], letters)
        if letter:
            return letter
    # 2. The answer starts with the letter: "B", "B.", "(B) Seoul", "**B**".
    found = re.match(rf"[\s*(\[]*({valid})(?:[).\]:*]|\s*$)", text, re.I)
    if found:
        return found.group(1).upper()
    # 3. A single standalone capital letter, e.g. "I think it is B because ...": not the
    # pronoun "I" before a word, nor a sentence's first word "A" before another.
    standalone = set()
    for m in re.finditer(rf"(?<![A-Za-z'’])\(?({valid})\)?(?![A-Za-z'’])", text):
        # "A or B" and "A and C" name letters; "A city" and "I think" do not.
        word_follows = re.match(r"\s+(?!(?:or|and|nor|vs)\b)[a-z]", text[m.end():]) is not None
        starts_sentence = re.search(r"(?:^|[.!?:]\s+|\n\s*)$", text[:m.start()]) is not None
        if word_follows and (m.group(1) == "I" or (m.group(1) == "A" and starts_sentence)):
            continue
        standalone.add(m.group(1))
    if len(standalone) == 1:
        return standalone.pop()
    return None


def extract_number(answer: str) -> float | None:
    """The number a model gave: the first after the last answer mark that has one, else
    the last in the text."""
    text = unicodedata.normalize("NFKC", answer)
    for m in reversed(list(_ANSWER_MARK.finditer(text))):
        found = _NUMBER.search(text, m.end())
        if found:
            return _number_value(found)
    numbers = list(_NUMBER.finditer(text))
    return _number_value(numbers[-1]) if numbers else None


def _number_value(m: re.Match[str]) -> float | None:
    sign = -1.0 if m.group(1) else 1.0
    whole, mixed, fraction, decimal = m.group(2), m.group(3), m.group(4), m.group(5)
    if decimal is not None:
        return sign * float(decimal.replace(",", ""))
    top, bottom = (float(part) for part in re.split(r"\s*[/⁄]\s*", mixed or fraction))
    if bottom == 0:
        return None
    return sign * ((float(whole) if whole else 0.0) + top / bottom)


def _exact_candidates(answer: str) -> set[str]:
    """The ways an exact answer may be read: the whole text, the line after the last
    answer mark, and each without a Korean sentence ending ("서울입니다")."""
    text = unicodedata.normalize("NFKC", answer)
    found = [text]
    marks = list(_ANSWER_MARK.finditer(text))
    if marks:
        tail = text[marks[-1].end():].strip()
        found.append(tail.splitlines()[0] if tail else tail)
    found += [_KO_ENDING.sub("", f) for f in found]
    return {normalise_text(f) for f in found}


def grade(item: Item, answer: str) -> tuple[bool, str]:
    """Whether an answer is right, and what was read from it (shown to the operator)."""
    g = item.grade
    if "choice" in g:
        letter = extract_choice(answer, g["letters"])
        return letter == g["choice"], letter or ""
    if "exact" in g:
        right = {normalise_text(a) for a in g["exact"]}
        return bool(_exact_candidates(answer) & right), normalise_text(answer)[:80]
    if "number" in g:
        value = extract_number(answer)
        if value is None:
            return False, ""
        return abs(value - g["number"]) <= g["tolerance"] + 1e-9, f"{value:g}"
    found = re.search(g["regex"], unicodedata.normalize("NFKC", answer))
    return found is not None, found.group(0)[:80] if found else ""


def right_answer(item: Item) -> str:
    """An answer that grades as right: the reference, else one built from the grade."""
    if item.reference:
        return item.reference
    g = item.grade
    if "choice" in g:
        return str(g["choice"])
    if "exact" in g:
        return str(g["exact"][0])
    if "number" in g:
        return f"{g['number']:g}"
    return ""


# -- scoring ---------------------------------------------------------------------------

def normalised(accuracy: float, baseline: float) -> float:
    """0..1: the accuracy between the suite's baseline and 1; below the baseline is 0."""
    return max(0.0, (accuracy - baseline) / (1.0 - baseline))


def stderr(correct: int, n: int) -> float | None:
    """The standard error of an accuracy over n items (as lm-evaluation-harness reports)."""
    if n < 2:
        return None
    p = correct / n
    return math.sqrt(p * (1 - p) / (n - 1))


def combine(suites: dict[str, dict[str, Any]], weights: dict[str, float]) -> dict[str, Any]:
    """One team's benchmark score, 0..100, from its suites' results.

    Each suite's accuracy (correct over all its items) is normalised from its baseline;
    suites are averaged within their category, and categories by the show file's weights
    (those with no suite in the run are left out and the others re-weighted).
    """
    by_category: dict[str, list[float]] = {}
    for result in suites.values():
        score = normalised(result["correct"] / result["total"], result["baseline"])
        result["score"] = round(100 * score, 4)
        by_category.setdefault(result["category"], []).append(score)
    categories = {c: sum(v) / len(v) for c, v in by_category.items()}
    weight = sum(weights.get(c, 1.0) for c in categories)
    value = (sum(s * weights.get(c, 1.0) for c, s in categories.items()) / weight
             if weight else 0.0)
    return {"value": round(100 * value, 4),
            "categories": {c: round(100 * s, 4) for c, s in categories.items()},
            "suites": {s: r["score"] for s, r in suites.items()}}


def sample_suites_dir() -> Path:
    """The small suites shipped with the package, written for this project."""
    return Path(__file__).parents[1] / "suites"


def wrong_answer(item: Item) -> str:
    """An answer that grades as wrong, in the item's own terms (for mock teams)."""
    g = item.grade
    korean = any("\uac00" <= ch <= "\ud7a3" for m in item.messages for ch in m["content"])
    if "choice" in g:
        letters = g["letters"]
        other = letters[(letters.index(g["choice"]) + 1) % len(letters)]
        return f"정답은 {other}입니다." if korean else f"The answer is ({other})."
    if "number" in g:
        return f"{'정답' if korean else 'Answer'}: {g['number'] + max(1, g['tolerance'] * 2):g}"
    return "—"


def answer_key(suites: list[Suite]) -> dict[str, tuple[str, str]]:
    """Each item's last user message -> (a right answer, a wrong one): what a mock team
    needs to answer a suite with a chosen accuracy."""
    return {[m for m in it.messages if m["role"] == "user"][-1]["content"]:
            (right_answer(it), wrong_answer(it)) for s in suites for it in s.items}


def load_suites(paths: list[str | Path]) -> list[Suite]:
    """Suites from files and folders (every *.jsonl in a folder, by name)."""
    found: list[Path] = []
    for path in map(Path, paths):
        found.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return [load_suite(p) for p in found]
