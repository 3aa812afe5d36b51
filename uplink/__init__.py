"""The device side of the MQTT contract: topics, schemas, durable outbox, presence, commands.

Empty until the uplink issue; the package exists so the layout matches DESIGN §2.
"""
