"""The hall side: queue authority, appointments, pre-review intake, device registry, hallctl.

Empty until the hall issue; the package exists so the layout matches DESIGN §2.
"""
