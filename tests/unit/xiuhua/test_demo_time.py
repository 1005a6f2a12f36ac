"""The demo's simulated time: it starts in the past so that it ends at the present."""

from __future__ import annotations

from datetime import datetime

import typer
from typer.testing import CliRunner

from xiuhua.demo import STOP_SLACK_S, DemoPlan, demo_command, sim_start_iso

NOW_S = 1_786_291_200.0  # 2026-08-09T16:00:00Z


def test_simulated_time_starts_duration_times_speed_before_now() -> None:
    plan = DemoPlan("jiaojiang", 30, "typhoon_rainstorm", 600.0, 60.0, 7)
    start = datetime.fromisoformat(sim_start_iso(plan, NOW_S))
    assert start.utcoffset() is not None
    assert NOW_S - start.timestamp() == (60.0 + STOP_SLACK_S) * 600.0
    assert plan.simulated_s == 36_000.0  # ten simulated hours: the storm's rain from hour 2


def test_a_run_longer_than_the_ingester_accepts_is_refused_before_starting() -> None:
    app = typer.Typer()
    app.command()(demo_command)
    result = CliRunner().invoke(app, ["--duration", "3600s", "--speed", "600"])
    assert result.exit_code == 2
    assert "7 days" in result.output
