"""The show file: the sample loads; every mistake names the file, the key and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from showcase.core.errors import ShowFileError
from showcase.core.showfile import load_show, sample_show_path

GOOD_TEAM = '[[teams]]\nid = "lg"\nname_ko = "엘지"\nname_en = "LG"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_show_has_the_five_teams_and_the_100_points() -> None:
    show = load_show(sample_show_path())
    assert [t.id for t in show.teams] == ["lg", "skt", "upstage", "naver", "ncai"]
    assert {c.id: c.points for c in show.criteria} == {"benchmark": 40, "expert": 35,
                                                       "feedback": 25}
    assert show.teams[0].name_ko == "LG AI연구원"
    assert show.criterion("expert").trim  # type: ignore[union-attr]


def test_defaults_give_the_standard_criteria(tmp_path: Path) -> None:
    show = load_show(write(tmp_path, GOOD_TEAM))
    assert [c.id for c in show.criteria] == ["benchmark", "feedback"]  # no judges: no expert
    assert [r.id for r in show.rounds] == ["r1"]


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("", "teams", "is missing"),
    ('[[teams]]\nid = "LG!"\nname_ko = "a"\nname_en = "b"\n', "teams[0].id", "not a valid id"),
    (GOOD_TEAM + 'colour = "red"\n', "teams[0].colour", "not a colour"),
    (GOOD_TEAM + 'endpoint = "ftp://x"\n', "teams[0].endpoint", "http://"),
    (GOOD_TEAM + 'api_key_env = "lower case"\n', "teams[0].api_key_env", "environment variable"),
    (GOOD_TEAM + 'colur = "#ffffff"\n', "teams[0].colur", "unknown key"),
    (GOOD_TEAM + GOOD_TEAM, "teams[1].id", "used twice"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = "forty"\n', "criteria[0].points",
     "must be a number, not a string"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nnormalise = "log"\n',
     "criteria[0].normalise", "not one of"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nnormalise = "linear"\nbaseline = 50\n'
     'maximum = 40\n', "criteria[0].maximum", "more than baseline"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nsource = "judges"\n',
     "criteria[0].source", "no [[judges]]"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ncut = { eliminate_bottom = 1, below = 3 }\n',
     "rounds[0].cut", "give one of"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ncut = { eliminate_bottom = 1.5 }\n',
     "rounds[0].cut.eliminate_bottom", "whole number"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ntie_break = ["speed"]\n', "rounds[0].tie_break[0]",
     "not a criterion"),
    (GOOD_TEAM + '[tokens]\noperator = "short"\n', "tokens.operator", "at least 12"),
    ("[[teams]\n", "", "not valid TOML"),
])
def test_bad_show_file_names_file_key_and_problem(
        tmp_path: Path, text: str, key: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ShowFileError) as info:
        load_show(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert key in message
    assert problem in message


def test_missing_show_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ShowFileError, match="cannot be read"):
        load_show(tmp_path / "nope.toml")


def test_serve_with_a_bad_show_file_stops_with_the_message(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_TEAM + 'colour = "red"\n')
    result = subprocess.run(
        [sys.executable, "-m", "showcase", "serve", str(path), "--port", "0",
         "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert f"{path}: teams[0].colour: 'red' is not a colour" in result.stderr
    assert not (tmp_path / "data" / "events.sqlite3").exists()
