"""Xiuhua front door: CLI, local services and the demo; wires the components together."""

__version__ = "0.1.0"
