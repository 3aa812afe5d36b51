"""The kiosk's gettext catalogs (``{language}/LC_MESSAGES/kiosk.po`` and the compiled ``.mo``)
and the small tools that keep them: a PO reader/writer, an MO compiler and a msgid extractor."""
