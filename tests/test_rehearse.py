"""``showcase rehearse``: a show file's whole day against mock teams, as a crew runs it
the day before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.tui.conftest import write_show


def test_rehearse_runs_the_whole_show_and_reports_each_step(tmp_path: Path) -> None:
    show = write_show(tmp_path, "http://127.0.0.1:9/v1", 0)  # the mocks replace it
    done = subprocess.run(
        [sys.executable, "-m", "showcase", "rehearse", str(show), "--data",
         str(tmp_path / "data")], capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "REFUSED" not in out
    # Scores as the desks and both judges enter them, a demo every team answered, a run.
    assert "benchmark (values): lg 90, skt 60, upstage 30" in out
    assert "expert (2 judges' sheets each)" in out
    for team in ("lg", "skt", "upstage"):
        assert f"   {team}: ok, first token after" in out
    assert "run " in out and ": finished" in out
    # The whole reveal, as the public screens show it, the elimination armed first.
    assert "  1/10  First evaluation: the results" in out
    assert "Upstage is eliminated  (an elimination: armed, then shown)" in out
    assert " 10/10  Through to the next round: LG AI Research, SK Telecom" in out
    assert "phase: published" in out and "upstage" in out.split("phase: published")[1]
    assert out.rstrip().endswith("finished: every step was accepted")
    assert (tmp_path / "data" / "events.sqlite3").exists()  # the rehearsal's own log
