"""Shared fixtures live in tests/fixtures/ and are loaded here as plugins."""

pytest_plugins = ["tests.fixtures.ptys", "tests.fixtures.processes", "tests.fixtures.mosquitto"]
