"""Identity leaks: answers that name a model, team or organisation are never served."""

from __future__ import annotations

import pytest

from showcase.voting.errors import VotingError
from showcase.voting.leaks import LeakFilter, find_leak

NAMES = ["LG AI Research", "LG AI연구원", "EXAONE", "엑사원", "Naver Cloud", "네이버",
         "HyperCLOVA X", "하이퍼클로바", "Upstage", "업스테이지", "Solar Pro", "솔라"]


@pytest.mark.parametrize(("answer", "name"), [
    ("I am Hyper CLOVA X, made by a Korean company.", "HyperCLOVA X"),
    ("As hyper-clova x, I would say...", "HyperCLOVA X"),
    ("ＨＹＰＥＲＣＬＯＶＡ Ｘ here.", "HyperCLOVA X"),  # full-width
    ("I'm EXAONE3.5, an assistant.", "EXAONE"),
    ("I was trained by LG A.I. Research.", "LG AI Research"),
    ("Up\u200bstage built me.", "Upstage"),  # a zero-width space inside
    ("저는 하이퍼 클로바입니다.", "하이퍼클로바"),
    ("엑사원은 LG AI 연구원에서 만든 모델입니다.", "엑사원"),
    ("네이버가 만든 AI입니다.", "네이버"),
    ("저는 솔라-프로가 아니라 솔라입니다", "솔라"),
])
def test_leak_filter_catches_names_in_both_languages(answer: str, name: str) -> None:
    leak = LeakFilter(NAMES).check(answer)
    assert leak is not None and leak.name == name


@pytest.mark.parametrize("answer", [
    "The capital of Korea is Seoul, and its population is about 9.4 million.",
    "Solar protection matters in summer: use sunscreen.",  # not "Solar Pro"
    "서울은 대한민국의 수도입니다. 인구는 약 940만 명입니다.",
    "An exa-scale computer is very fast; cloud computing is elastic.",
])
def test_leak_filter_serves_an_innocent_answer(answer: str) -> None:
    assert find_leak(answer, NAMES) is None


def test_leak_filter_refuses_names_that_would_match_everything() -> None:
    with pytest.raises(VotingError, match="at least two letters"):
        LeakFilter(["X"])
    with pytest.raises(VotingError, match="no identity names"):
        LeakFilter([])
