from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from accounts.audit import register_actions

        from . import callbacks  # noqa: F401  (connects the callback receiver)

        register_actions(
            {
                "payments.transaction.void_requested": "Void requested",
                "payments.transaction.voided": "Transaction voided",
                "payments.transaction.void_declined": "Void declined",
                "payments.transaction.refund_requested": "Refund requested",
                "payments.transaction.refunded": "Transaction refunded",
                "payments.transaction.refund_declined": "Refund declined",
                "payments.callback.resent": "Callback resent",
            }
        )
