"""The shared device/broker fixtures (tests/uplink/helpers.py) for every test in this directory."""

from tests.uplink.helpers import broker, device, device_cert, hall

__all__ = ["broker", "device", "device_cert", "hall"]
