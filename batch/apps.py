from django.apps import AppConfig


class BatchConfig(AppConfig):
    name = "batch"

    def ready(self) -> None:
        from accounts.audit import register_actions

        register_actions({"batch.uploaded": "File uploaded", "batch.processed": "File processed"})
