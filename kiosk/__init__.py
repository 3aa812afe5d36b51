"""The Kivy touch app and kiosk services (tickets, appointments, pre-review, evaluation).

Empty until the kiosk issue; the package exists so the layout matches DESIGN §2.
"""
