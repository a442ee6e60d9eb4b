from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from . import views

# Platform operators sign in on the same form (password + authenticator code), then use the admin.
admin.site.login = login_not_required(RedirectView.as_view(pattern_name="accounts:sign_in", query_string=True))
admin.site.site_header = "Billing Back Office: platform"

urlpatterns = [
    path("health", views.health, name="health"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    path("", include("api.ui_urls")),
    path("", include("accounts.urls")),
    path("", include("payments.urls")),
    path("", include("recurring.urls")),
    path("", include("batch.urls")),
    path("", include("reports.urls")),
]

# Under /api/ a missing page or a server error is answered as problem+json, elsewhere with the HTML pages.
handler404 = "api.problems.not_found"
handler500 = "api.problems.server_error"
