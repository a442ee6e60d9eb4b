"""The Merchant REST API v1 under /api/v1/ (README "API"). API-key views need no session: each is marked
``login_not_required`` (the site's sign-in middleware) and DRF exempts it from CSRF."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from .docs import ApiDocsView
from .views import batches, billings, transactions

app_name = "api"


def view(cls):
    return login_not_required(cls.as_view())


urlpatterns = [
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    path("docs/", login_not_required(ApiDocsView.as_view(url_name="api:schema")), name="docs"),
    path("billings/", view(billings.BillingList), name="billings"),
    path("billings/<str:billing_number>/", view(billings.BillingDetail), name="billing"),
    path("billings/<str:billing_number>/preview/", view(billings.BillingPreview), name="billing_preview"),
    path("transactions/", view(transactions.TransactionList), name="transactions"),
    path("transactions/<str:invoice_number>/", view(transactions.TransactionDetail), name="transaction"),
    path("transactions/<str:invoice_number>/void/", view(transactions.TransactionVoid), name="transaction_void"),
    path("transactions/<str:invoice_number>/refund/", view(transactions.TransactionRefund), name="transaction_refund"),
    path("transactions/<str:invoice_number>/cancel/", view(transactions.TransactionCancel), name="transaction_cancel"),
    path("batches/", view(batches.BatchList), name="batches"),
    path("batches/<int:pk>/", view(batches.BatchDetail), name="batch"),
    path("batches/<int:pk>/process/", view(batches.BatchProcess), name="batch_process"),
]
