"""The device side of the MQTT contract (docs/mqtt.md).

``topics`` (the topic tree), ``messages`` (versioned payload models, JSON Schemas in
``uplink/schemas/``), ``outbox`` (the durable SQLite outbox), ``session`` (the durable session
counter), ``connection`` and ``drain`` (MQTT 5 connection, presence, publishing the outbox),
``requests`` (request/response with offline fallbacks), ``signing`` and ``commands`` (signed
commands, the replay store, audit and two-stage acks). Components (lockerd, the kiosk) wire these
together; this package knows nothing of lockers or tickets.
"""
