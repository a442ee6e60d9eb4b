from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo data for the embedded default (`make run`). Imports the other apps; nothing imports it."""

    name = "demo"
