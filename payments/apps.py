from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from . import callbacks  # noqa: F401  (connects the callback receiver)
