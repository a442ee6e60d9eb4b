from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self) -> None:
        from accounts.audit import register_actions
        from payments.signals import transaction_changed

        from .rollups import on_transaction_changed

        # Connected last of the receivers (reports is installed after payments and recurring), so the
        # rollup rows are locked for the shortest time before the charge's transaction commits.
        transaction_changed.connect(on_transaction_changed, dispatch_uid="reports.rollups.on_transaction_changed")
        register_actions({"reports.exported": "Report exported"})
