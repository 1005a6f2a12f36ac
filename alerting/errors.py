"""Errors of the rule engine.

::

    XiuhuaError (telemetry_core)
    └── AlertingError
        ├── RuleError       a rules file is wrong: names the file, the rule and the field
        ├── NetworkError    a network file is wrong: names the file and the node
        ├── StoreError      the state store failed (a database error, translated); ``retryable``
        │                   says whether trying again can help (connection lost, lock timeout)
        │                   or not (an integrity or data error: the same write fails again)
        ├── SimDirError     a simulator run's directory cannot be replayed (also a ValueError)
        └── InfluxHistoryError  InfluxDB did not answer a history query (also a RuntimeError)
"""

from __future__ import annotations

from telemetry_core.errors import ConfigError, XiuhuaError


class AlertingError(XiuhuaError):
    """Root of the rule engine's errors."""


class RuleError(AlertingError, ConfigError):
    """A rules file that cannot be used; the message names the file, the rule and the field."""


class NetworkError(AlertingError):
    """A network file that cannot be used; the message names the file and the node."""


class StoreError(AlertingError):
    """The alert store failed; the message names the database and the operation."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class SimDirError(AlertingError, ValueError):
    """A simulator output directory that cannot be replayed; names the file and line."""


class InfluxHistoryError(AlertingError, RuntimeError):
    """InfluxDB did not answer a history query; names the query and the reply."""
