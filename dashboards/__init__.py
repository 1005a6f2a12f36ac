"""Grafana dashboards as code, proven against a real InfluxDB filled by the simulator.

Not built yet: a later issue fills this package. It exists now so that the import contracts
(components never import each other) already hold over the whole layout.
"""
