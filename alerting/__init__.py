"""Tiered streaming rule engine: graded warnings (blue, yellow, orange, red) in event time.

Rules come from YAML files validated at load (:func:`load_rules`); the :class:`Engine` turns
readings, events and statuses into :class:`telemetry_core.AlertTransition` messages, groups
alerts on connected drain nodes into incidents, and snapshots its whole state for the
:class:`AlertStore`, which keeps alerts, silences and the checkpoint (SQLite or PostgreSQL).
See ``docs/alerting.md``.
"""

from alerting._engine import Engine
from alerting._fit import Trend, theil_sen
from alerting._hygiene import Silence
from alerting._network import Network, Node, load_network, network_from_dict
from alerting._rules import LoadedRule, RuleSet, default_rules_dir, load_rules
from alerting._store import ActiveAlert, AlertStore
from alerting.errors import AlertingError, NetworkError, RuleError, StoreError

__all__ = [
    "ActiveAlert",
    "AlertStore",
    "AlertingError",
    "Engine",
    "LoadedRule",
    "Network",
    "NetworkError",
    "Node",
    "RuleError",
    "RuleSet",
    "Silence",
    "StoreError",
    "Trend",
    "default_rules_dir",
    "load_network",
    "load_rules",
    "network_from_dict",
    "theil_sen",
]
