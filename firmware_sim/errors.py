"""Errors of the device simulator.

::

    XiuhuaError (telemetry_core)
    └── SimError                 the simulator cannot do what it was asked
        ├── ScenarioError        a scenario file that does not validate (also a ConfigError)
        ├── HydraulicsError      the SWMM child process failed or returned unusable results
        └── FleetError           a fleet that cannot be generated or simulated (bad district, kind)

``DriverError`` (telemetry_core.driver) is what a simulated *device* raises when a reading fails
on purpose (a dropout fault); it is not a simulator error.
"""

from __future__ import annotations

from telemetry_core.errors import ConfigError, XiuhuaError


class SimError(XiuhuaError):
    """The simulator cannot do what it was asked."""


class ScenarioError(SimError, ConfigError):
    """A scenario file that does not load or validate; the message names the file and field."""


class HydraulicsError(SimError):
    """The SWMM run failed, in its child process or when its results were read."""


class FleetError(SimError):
    """A fleet that cannot be generated or simulated: unknown district, kind or attributes."""
