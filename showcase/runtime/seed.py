"""What ``showcase demo`` adds to the sample show: a first round scored and ready to publish."""

from __future__ import annotations

from showcase.core import commands
from showcase.runtime.engine import Engine

BENCHMARK = {"lg": 71.2, "skt": 61.6, "upstage": 59.73, "naver": 55.33, "ncai": 44.4}
FEEDBACK = {"lg": 4.4, "skt": 4.3, "upstage": 4.0, "naver": 3.8, "ncai": 3.5}
SHEETS = {
    "lg": [88, 91, 85, 90, 87],
    "skt": [80, 84, 79, 83, 82],
    "upstage": [82, 78, 85, 80, 79],
    "naver": [75, 77, 72, 79, 74],
    "ncai": [70, 68, 73, 66, 71],
}


async def seed(engine: Engine) -> bool:
    """Enter the sample scores of round r1 once, as the demo's judges and operator would."""
    state = engine.head
    if state.counts.get("score_entered") or state.current_round != "r1":
        return False
    judges = [j.id for j in engine.show.judges]
    for team, value in BENCHMARK.items():
        await engine.run("operator:demo", commands.enter_score, "operator",
                         {"criterion": "benchmark", "team": team, "value": value})
    for team, sheets in SHEETS.items():
        for judge, value in zip(judges, sheets, strict=False):
            await engine.run(f"judge:{judge}", commands.enter_score, "judge",
                             {"criterion": "expert", "team": team, "judge": judge,
                              "value": value})
    for team, value in FEEDBACK.items():
        await engine.run("operator:demo", commands.enter_score, "operator",
                         {"criterion": "feedback", "team": team, "value": value})
    return True
