"""Cross-cutting core shared by every hallkiosk package: errors, clock, config loading, privacy.

Nothing here knows about lockers, kiosks or MQTT; those packages depend on this one, never the
other way round (see docs/architecture.md).
"""

__version__ = "0.1.0"
