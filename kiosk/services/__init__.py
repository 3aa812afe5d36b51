"""Kiosk services: what the flows talk to besides the drivers (the hall, lockerd, the outbox).

Flows depend on the interfaces here, never on MQTT or sockets directly (docs/kiosk.md).
"""
