"""The kiosk's journeys as plain state machines, tested without Kivy.

``base`` holds the framework (Flow, Worker, Msg, Bilingual, Notice, Pager); ``session`` the
router, idle timeout, language and elderly mode; ``home`` what journeys and the session share;
``printing`` the print-with-checks helper. One module per journey: ``ticket``, ``checkin``,
``status``, ``evaluation`` (and ``pickup``, ``prereview``, ``staff``).
"""
