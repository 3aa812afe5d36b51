"""The device side of the MQTT contract (docs/mqtt.md).

Here today: the topic tree (``uplink.topics``), the versioned payload models and their JSON
Schemas (``uplink.messages``, ``uplink/schemas/``) and the durable SQLite outbox
(``uplink.outbox``). The MQTT connection, presence, request/response and command verification,
and the wiring into lockerd, come next (issue 3).
"""
