"""The alerting package's public surface is what we meant."""

from __future__ import annotations

import alerting

EXPECTED = {
    "Engine", "load_rules", "default_rules_dir", "RuleSet", "LoadedRule", "Silence",
    "AlertStore", "ActiveAlert", "Network", "Node", "load_network", "network_from_dict",
    "Trend", "theil_sen", "AlertingError", "RuleError", "NetworkError", "StoreError",
    # the service and the backtest, for the front door (xiuhua imports nothing private)
    "AlertingService", "AlertingSettings", "AlertingSection", "build_service", "load_fleet",
    "Item", "Replay", "RuleSummary", "replay", "summarize", "sim_dir_items", "SimDirError",
    "InfluxHistory", "InfluxHistoryError", "rules_of", "ForecastCounts",
}  # fmt: skip


def test_exported_members_are_what_we_meant() -> None:
    assert set(alerting.__all__) == EXPECTED
    for name in alerting.__all__:
        assert getattr(alerting, name) is not None
