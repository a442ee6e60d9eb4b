from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"

    def ready(self) -> None:
        from accounts.audit import register_actions

        from . import schema  # noqa: F401  (the API key's security scheme in the OpenAPI document)

        register_actions(
            {
                "api.key.created": "API key created",
                "api.key.revoked": "API key revoked",
                "payments.single_payment.created": "Single payment created",
            }
        )
