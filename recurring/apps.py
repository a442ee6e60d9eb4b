from django.apps import AppConfig


class RecurringConfig(AppConfig):
    name = "recurring"

    def ready(self) -> None:
        from accounts.audit import register_actions

        from . import card_notices, retries  # noqa: F401  (connect their receivers)

        register_actions(
            {
                "recurring.billing.created": "Billing registered",
                "recurring.billing.schedule_changed": "Billing schedule changed",
                "recurring.billing.activated": "Billing activated",
                "recurring.billing.inactivated": "Billing inactivated",
                "recurring.billing.type_changed": "Billing type changed",
                "recurring.billing.deleted": "Billing deleted",
                "recurring.execution.cancelled": "Execute date cancelled",
                "recurring.single_payment.cancelled": "Scheduled single payment cancelled",
                "recurring.link.created": "Registration link created",
                "recurring.link.spent": "Registration or card update link spent (failed card attempts)",
                "recurring.card_link.created": "Card update link created",
                "recurring.card_link.sent": "Card update link e-mailed",
                "recurring.billing.card_updated": "Billing card updated",
                "recurring.retry_policy.changed": "Retry policy changed",
            }
        )
