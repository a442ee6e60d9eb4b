from django.urls import path

from . import ui

app_name = "api_keys"
urlpatterns = [
    path("account/api-keys/new/", ui.key_new, name="new"),
    path("account/api-keys/<int:pk>/revoke/", ui.key_revoke, name="revoke"),
]
