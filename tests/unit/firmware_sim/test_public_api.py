"""The package's public surface is what we mean it to be."""

from __future__ import annotations

import firmware_sim


def test_all_lists_exactly_the_public_names() -> None:
    expected = {
        "DEFAULT_NODES_PER_DISTRICT", "FleetError", "FleetSimulation", "GroundTruthRecord",
        "HydraulicsError", "RunSummary", "Scenario", "ScenarioError", "ScenarioInfo", "SimError",
        "SimulatedDriver", "list_scenarios", "load_scenario", "make_fleet", "parse_duration",
        "run_to_files", "write_ground_truth", "MERGE_GAP_S", "OUTPUT_FORMATS", "TIERS",
        "LabelScore", "ScoredAlert",
        "TruthEvent", "TruthFileError", "load_truth_events", "merge_events", "score_alerts",
        "write_truth_events", "write_network",
    }  # fmt: skip
    assert set(firmware_sim.__all__) == expected
    assert all(hasattr(firmware_sim, name) for name in expected)


def test_errors_share_the_project_root() -> None:
    from telemetry_core.errors import ConfigError, XiuhuaError

    assert issubclass(firmware_sim.SimError, XiuhuaError)
    assert issubclass(firmware_sim.ScenarioError, ConfigError)
    assert issubclass(firmware_sim.HydraulicsError, firmware_sim.SimError)
