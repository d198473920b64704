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
    ('[[teams]]\nid = "LG!"\nname_ko = "a"\nname_en = "b"\n', "teams[1].id", "not a valid id"),
    (GOOD_TEAM + 'colour = "red"\n', "teams[1].colour", "not a colour"),
    (GOOD_TEAM + 'endpoint = "ftp://x"\n', "teams[1].endpoint", "http://"),
    (GOOD_TEAM + 'api_key_env = "lower case"\n', "teams[1].api_key_env", "environment variable"),
    (GOOD_TEAM + 'colur = "#ffffff"\n', "teams[1].colur", "unknown key"),
    (GOOD_TEAM + GOOD_TEAM, "teams[2].id", "used twice"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = "forty"\n', "criteria[1].points",
     "must be a number, not a string"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nnormalise = "log"\n',
     "criteria[1].normalise", "not one of"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nnormalise = "linear"\nbaseline = 50\n'
     'maximum = 40\n', "criteria[1].maximum", "more than baseline"),
    (GOOD_TEAM + '[[criteria]]\nid = "x"\npoints = 40\nsource = "judges"\n',
     "criteria[1].source", "no [[judges]]"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ncut = { eliminate_bottom = 1, below = 3 }\n',
     "rounds[1].cut", "give one of"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ncut = { eliminate_bottom = 1.5 }\n',
     "rounds[1].cut.eliminate_bottom", "whole number"),
    (GOOD_TEAM + '[[rounds]]\nid = "r1"\ntie_break = ["speed"]\n', "rounds[1].tie_break[1]",
     "not a criterion"),
    (GOOD_TEAM + '[tokens]\noperator = "short"\n', "tokens.operator", "at least 12"),
    (GOOD_TEAM + 'api_key_env = "SHOWCASE_OPERATOR_TOKEN"\n', "teams[0].api_key_env",
     "holds a showcase token, not a team's key"),
    (GOOD_TEAM + 'api_key_env = "KEY_A"\n' + GOOD_TEAM.replace('"lg"', '"kt"')
     + 'api_key_env = "KEY_A"\n', "teams[1].api_key_env", "is the key of team 'lg' already"),
    (GOOD_TEAM + '[proxy]\nallowed_hosts = ["gpu.lg.example", "10.0.0.0/33"]\n',
     "proxy.allowed_hosts[1]", "not a network"),
    (GOOD_TEAM + '[proxy]\nallowed_hosts = ["http://gpu.lg.example"]\n',
     "proxy.allowed_hosts[0]", "not a host name"),
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
    assert f"{path}: teams[1].colour: 'red' is not a colour" in result.stderr
    assert not (tmp_path / "data" / "events.sqlite3").exists()


def test_serve_prints_every_problem_of_the_show_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_TEAM + 'colour = "red"\nendpoint = "ftp://x"\n'
                 '[[criteria]]\nid = "x"\npoints = -1\n')
    result = subprocess.run(
        [sys.executable, "-m", "showcase", "serve", str(path), "--port", "0",
         "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2
    assert f"{path}: teams[1].colour: 'red' is not a colour" in result.stderr
    assert f"{path}: teams[1].endpoint: 'ftp://x' must start with http://" in result.stderr
    assert f"{path}: criteria[1].points: must be more than 0, not -1" in result.stderr


def test_every_problem_of_a_show_file_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[show]\nprecision = 9\n'
                 '[[teams]]\nid = "LG!"\nname_ko = ""\nname_en = "LG"\ncolour = "red"\n'
                 '[[teams]]\nid = "skt"\nname_ko = "SKT"\nname_en = 5\n'
                 '[[criteria]]\nid = "x"\npoints = "forty"\n'
                 '[proxy]\nidle_timeout = 0\n')
    with pytest.raises(ShowFileError) as info:
        load_show(path)
    lines = str(info.value).splitlines()
    assert lines[0] == "7 problems:" and all(line.startswith(f"{path}: ") for line in lines[1:])
    # in the file's order, each with its key
    assert [line.removeprefix(f"{path}: ") for line in lines[1:]] == [
        "show.precision: must be from 0 to 6, not 9",
        "teams[1].id: 'LG!' is not a valid id (lower-case letters, digits, '-' or '_', "
        "at most 32)",
        "teams[1].name_ko: must not be empty",
        "teams[1].colour: 'red' is not a colour like '#a50034'",
        "teams[2].name_en: must be a string, not an integer",
        "criteria[1].points: must be a number, not a string",
        "proxy.idle_timeout: must be more than 0 and at most 3600, not 0",
    ]
    assert info.value.problems[0] == ("show.precision", "must be from 0 to 6, not 9")


def test_showfile_provenance_paths_lie_under_its_roots(tmp_path: Path) -> None:
    """[provenance]: relative paths are the show file's folder's, and a team's weights or a
    reference outside every root is refused at start, with the key that names it."""
    text = sample_show_path().read_text(encoding="utf-8")
    good = tmp_path / "show.toml"
    good.write_text(text + '\n[provenance]\nroots = ["models"]\n'
                    '[provenance.weights]\nnaver = "models/naver"\n'
                    '[provenance.references]\n"Qwen2.5-VL" = "models/ref/../qwen"\n',
                    encoding="utf-8")
    settings = load_show(good).provenance
    assert settings.roots == (str(tmp_path / "models"),)
    assert settings.weights == {"naver": str(tmp_path / "models" / "naver")}
    bad = tmp_path / "bad.toml"
    bad.write_text(text + '\n[provenance]\nroots = ["models"]\n'
                   '[provenance.weights]\nnaver = "models/../etc"\nkakao = "models/k"\n'
                   '[provenance.references]\nqwen = "/srv/qwen"\n', encoding="utf-8")
    with pytest.raises(ShowFileError) as info:
        load_show(bad)
    message = str(info.value)
    assert "provenance.weights.naver: 'models/../etc' is under none of provenance.roots" \
        in message
    assert "provenance.weights.kakao: is not a team of this show" in message
    assert "provenance.references.qwen: '/srv/qwen' is under none" in message
    rootless = tmp_path / "rootless.toml"
    rootless.write_text(text + '\n[provenance.weights]\nnaver = "/m/naver"\n',
                        encoding="utf-8")
    with pytest.raises(ShowFileError, match=r"provenance\.roots: is needed"):
        load_show(rootless)
