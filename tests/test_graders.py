"""The graders against a table of answer styles, each expected value written by hand.

Each row is an answer as a model might write it and what a person reading it would take as
its answer (None: it gave none, or gave several). The cases of issue 21 are marked.
"""

from __future__ import annotations

from typing import Any

import pytest

from showcase.bench import suites as bn


def item(grade: dict[str, Any], choices: list[str] | None = None) -> bn.Item:
    line = {"id": "q", "prompt": "?", "grade": grade, **({"choices": choices} if choices else {})}
    return bn._item("t.jsonl", 2, line)


CHOICES = [
    # bare letters
    ("B", "B"),
    ("b", "B"),
    (" C ", "C"),
    ("D\n", "D"),
    ("A.", "A"),
    ("B)", "B"),
    ("C:", "C"),
    # bold, brackets, quotes
    ("**A**", "A"),
    ("**(B)**", "B"),
    ("(C)", "C"),
    ("[D]", "D"),
    ("(d)", "D"),
    ('"B"', "B"),
    ("b) Seoul", "B"),
    ("(A) Seoul is the capital.", "A"),
    ("C. Busan", "C"),
    # full-width (NFKC)
    ("Ｂ", "B"),
    ("（Ｃ）", "C"),
    ("답: Ｃ", "C"),
    ("정답은 Ｄ입니다.", "D"),
    # English answer marks
    ("The answer is (C).", "C"),
    ("The answer is C", "C"),
    ("The answer is: B", "B"),
    ("Answer: b", "B"),
    ("answer: (a)", "A"),
    ("Final answer: D", "D"),
    ("The correct answer is **B**.", "B"),
    ("The correct option is C.", "C"),
    ("So the answer would be A.", "A"),
    ("Answer = D", "D"),
    ("Let me think. B seems close, but the answer is D.", "D"),
    ("I first thought the answer is A, but the final answer is C.", "C"),
    ("The answer is $\\boxed{B}$", "B"),
    ("\\boxed{\\text{C}}", "C"),
    # issue 21: the article "a" and the pronoun "I" after a mark are not choices
    ("The answer is a bit unclear, but I would pick C.", "C"),
    ("My final answer is a clear (D).", "D"),
    ("Answer: I think it is B.", "B"),
    ("The answer is a tricky one. B.", "B"),
    # Korean answer marks
    ("정답은 B입니다.", "B"),
    ("정답: A", "A"),
    ("정답은 (C)", "C"),
    ("답은 D예요.", "D"),
    ("답: b", "B"),
    ("최종 답: C", "C"),
    ("최종 정답은 A입니다.", "A"),
    ("해답: D", "D"),
    ("답변: B", "B"),
    ("지문을 보면 정답은 C입니다. 왜냐하면 답이 되기 때문입니다.", "C"),
    # Korean choice numbers after a mark
    ("정답은 2번입니다.", "B"),
    ("정답: ③", "C"),
    ("답: 4번", "D"),
    # issue 21: "답" inside "대답" (a reply) or "응답" is no answer mark
    ("대답: A와 B 중에서 고르기 어렵습니다.", None),
    ("응답 A, 응답 B 모두 가능합니다.", None),
    # a single standalone letter in prose
    ("I think it is D, because the passage says so.", "D"),
    ("It must be B since the text says so.", "B"),
    ("A city in Korea is the topic; the choice is C.", "C"),
    ("Option B fits best.", "B"),
    ("이 문제는 B가 맞습니다.", "B"),
    # no answer, or several
    ("A or B, hard to say", None),
    ("A and C are both plausible.", None),
    ("It is a city", None),
    ("I don't know.", None),
    ("", None),
    ("None of these.", None),
    ("잘 모르겠습니다.", None),
    ("E", None),                         # not one of the four choices
    ("The answer is E.", None),
    ("Answer: Seoul", None),
]


@pytest.mark.parametrize("answer, read", CHOICES)
def test_choice_grader_reads_each_answer_style(answer: str, read: str | None) -> None:
    it = item({"choice": "B"}, ["w", "x", "y", "z"])
    right, extracted = bn.grade(it, answer)
    assert extracted == (read or "")
    assert right == (read == "B")


NUMBERS = [
    # plain and marked
    ("42", 42),
    ("The answer is 42.", 42),
    ("Answer: 42", 42),
    ("answer=42", 42),
    ("Final answer: 42", 42),
    ("#### 42", 42),
    ("\\boxed{42}", 42),
    ("The answer is $\\boxed{42}$.", 42),
    ("**42**", 42),
    ("6 × 7: first 6, then... Answer: 42", 42),
    ("Answer: 43. (42 was a guess)", 43),
    ("3 + 4 = 7, so 7 * 6 = 42", 42),
    ("First 10, then 20, finally 30.", 30),
    # units and counters
    ("42 apples", 42),
    ("$42", 42),
    ("42%", 42),
    ("42 km/h", 42),
    ("It costs 1,200 won.", 1200),
    ("3.5 kg", 3.5),
    ("42개", 42),
    ("42명입니다.", 42),
    ("사과는 모두 42개입니다.", 42),
    ("7상자", 7),
    ("35cm", 35),
    ("5개씩 7상자이므로 35개", 35),
    # issue 21: "대답" is no answer mark, so the last number counts
    ("대답: 5개씩 7상자이므로 35", 35),
    ("응답: 3과 4를 더하면 7", 7),
    # decimals
    ("3.14", 3.14),
    ("0.5", 0.5),
    (".5", 0.5),
    ("Answer: 2.50", 2.5),
    ("The result is 12.0.", 12),
    ("약 3.75입니다.", 3.75),
    # thousands separators
    ("1,234", 1234),
    ("about 1,234 people", 1234),
    ("1,234,567", 1234567),
    ("$1,234.50", 1234.5),
    ("Answer: 12,000", 12000),
    ("1,2,3", 3),                          # a list, not a number with separators
    # fractions (issue 21: "Answer: 3/4" is 0.75, not 3)
    ("Answer: 3/4", 0.75),
    ("3/4", 0.75),
    ("The answer is 1/2.", 0.5),
    ("Answer: 1 1/2 cups", 1.5),
    ("½", 0.5),
    ("정답: 2/5", 0.4),
    ("Answer: 3 / 4", 0.75),
    # negative numbers
    ("-3", -3),
    ("−7", -7),                            # the Unicode minus sign
    ("The temperature is -2.5 degrees.", -2.5),
    ("Answer: -1/2", -0.5),
    # full-width digits
    ("４２", 42),
    ("정답은 ４２입니다", 42),
    # Korean answer marks
    ("정답: 42", 42),
    ("정답은 42입니다.", 42),
    ("답: 42", 42),
    ("답은 42개입니다.", 42),
    ("최종 답: 42", 42),
    ("해답: 42", 42),
    ("풀이: 6 × 7 = 42. 정답: 42", 42),
    ("6개씩 7묶음, 정답은 42", 42),
    ("따라서 42가 답이다.", 42),            # the number before the mark
    # no number
    ("I don't know.", None),
    ("", None),
    ("모르겠습니다.", None),
    ("Answer: forty-two", None),
]


@pytest.mark.parametrize("answer, value", NUMBERS)
def test_number_grader_reads_each_answer_style(answer: str, value: float | None) -> None:
    read = bn.extract_number(answer)
    if value is None:
        assert read is None
    else:
        assert read == pytest.approx(value)
        it = item({"number": value, "tolerance": 1e-6})
        assert bn.grade(it, answer) == (True, f"{read:g}")


def test_number_grader_marks_the_wrong_number_wrong() -> None:
    it = item({"number": 3})
    assert not bn.grade(it, "Answer: 3/4")[0]          # issue 21: read as 3 before
    assert not bn.grade(item({"number": 5}), "대답: 5개씩 7상자이므로 35")[0]
    assert not bn.grade(item({"number": 4, "tolerance": 0.005}), "Answer: 4.01")[0]
    assert bn.grade(item({"number": 4, "tolerance": 0.005}), "Answer: 4.004")[0]


EXACT = [
    ("Seoul", True),
    ("seoul", True),
    (" SEOUL ", True),
    ("Seoul.", True),
    ("Seoul!", True),
    ("**Seoul**", True),
    ('"Seoul"', True),
    ("서울", True),
    ("서울.", True),
    ("서울입니다.", True),
    ("서울이다.", True),
    ("서울이에요.", True),
    ("서울요", True),
    ("Answer: Seoul", True),
    ("The answer is Seoul.", True),
    ("Let me think.\nAnswer: Seoul", True),
    ("Final answer: Seoul", True),
    ("정답: 서울", True),
    ("정답은 서울입니다.", True),
    ("답: 서울", True),
    ("최종 답: 서울", True),
    ("Ｓｅｏｕｌ", True),                 # full-width letters
    ("The answer is Seoul.\nIt is the capital.", True),
    ("Busan", False),
    ("Seoul or Busan", False),
    ("Not Seoul", False),
    ("Seoul, I think", False),
    ("서울특별시", False),
    ("부산입니다.", False),
    ("대답: 부산", False),
    ("", False),
    ("The answer is Busan, not Seoul.", False),
    ("I don't know.", False),
    ("Seo ul", False),
]


@pytest.mark.parametrize("answer, right", EXACT)
def test_exact_grader_reads_each_answer_style(answer: str, right: bool) -> None:
    assert bn.grade(item({"exact": ["Seoul", "서울"]}), answer)[0] is right


def test_each_table_has_at_least_sixty_styles() -> None:
    assert len(CHOICES) >= 60 and len(NUMBERS) >= 60 and len(EXACT) >= 30
