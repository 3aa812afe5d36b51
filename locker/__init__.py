"""The certificate locker: bays, deposits, pickups, overdue items, door watch, alarms.

Runs as ``lockerd`` (see ``locker.daemon``); ``lockerctl`` is its CLI (``locker.cli``).
"""
