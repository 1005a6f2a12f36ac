"""mqtt_fastpath: paho-mqtt's client with a receive path fit for tens of thousands of messages/s.

A library, not a component: the ingester and the alerting consumer both read MQTT through it, so it
imports no component and no part of Xiuhua (import-linter holds this). See ``_client`` for what it
changes in paho and why.
"""

from mqtt_fastpath._client import Delivery, FastClient, puback_frames

__all__ = ["Delivery", "FastClient", "puback_frames"]
