"""Tiered streaming rule engine: graded warnings (blue, yellow, orange, red) in event time.

Rules come from YAML files validated at load (:func:`load_rules`); the :class:`Engine` turns
readings, events and statuses into :class:`telemetry_core.AlertTransition` messages, groups
alerts on connected drain nodes into incidents, and snapshots its whole state for the
:class:`AlertStore`, which keeps alerts, silences and the checkpoint (SQLite or PostgreSQL).
The service around it (:func:`build_service` from :class:`AlertingSettings`) and the backtest
(:func:`replay` of history from :func:`sim_dir_items` or :class:`InfluxHistory`) are here too:
the front door imports this package and ``alerting.errors``, never the private modules.
See ``docs/alerting.md``.
"""

from alerting._backtest import Item, Replay, RuleSummary, replay, sim_dir_items, summarize
from alerting._backtest_influx import InfluxHistory
from alerting._engine import Engine
from alerting._fit import Trend, theil_sen
from alerting._forecast import ForecastCounts
from alerting._hygiene import Silence
from alerting._network import Network, Node, load_network, network_from_dict
from alerting._rules import LoadedRule, RuleSet, default_rules_dir, load_rules
from alerting._service import AlertingService
from alerting._service_build import build_service, load_fleet, rules_of
from alerting._settings import AlertingSection, AlertingSettings
from alerting._store import ActiveAlert, AlertStore
from alerting.errors import (
    AlertingError,
    InfluxHistoryError,
    NetworkError,
    RuleError,
    SimDirError,
    StoreError,
)

__all__ = [
    "ActiveAlert",
    "AlertStore",
    "AlertingError",
    "AlertingSection",
    "AlertingService",
    "AlertingSettings",
    "Engine",
    "ForecastCounts",
    "InfluxHistory",
    "InfluxHistoryError",
    "Item",
    "LoadedRule",
    "Network",
    "NetworkError",
    "Node",
    "Replay",
    "RuleError",
    "RuleSet",
    "RuleSummary",
    "Silence",
    "SimDirError",
    "StoreError",
    "Trend",
    "build_service",
    "default_rules_dir",
    "load_fleet",
    "load_network",
    "load_rules",
    "network_from_dict",
    "replay",
    "rules_of",
    "sim_dir_items",
    "summarize",
    "theil_sen",
]
