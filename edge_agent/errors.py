"""Errors of the edge agent.

::

    XiuhuaError                       (telemetry_core.errors)
    ├── ConfigError
    │   └── AgentConfigError          an agent config or a set_config command that does not validate
    └── EdgeError                     anything else the edge agent raises on purpose
        ├── SpoolError                the on-disk store-and-forward queue cannot be used
        └── TransportError            the MQTT transport cannot be set up (bad TLS file, bad URL)

A sensor that cannot be read raises ``telemetry_core.driver.DriverError``; the agent turns it into
a ``device_fault`` event and never lets it escape.
"""

from __future__ import annotations

from telemetry_core.errors import ConfigError, XiuhuaError


class EdgeError(XiuhuaError):
    """The root of the edge agent's own errors."""


class AgentConfigError(ConfigError):
    """An agent config (file, settings or remote command) that does not validate."""


class SpoolError(EdgeError):
    """The store-and-forward spool cannot be opened or written."""


class TransportError(EdgeError):
    """The MQTT transport cannot be set up."""
