"""The Kivy touch UI. Importing this package does not import Kivy (see ``kivy_env``)."""
