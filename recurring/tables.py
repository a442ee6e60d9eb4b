from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html

from billing_bo.lib.money import format_rupiah

from .models import Billing


class BillingTable(tables.Table):
    """Manage Recurring (R1): a billing per row with its Edit menu."""

    billing_number = tables.Column(verbose_name="Billing Number")
    customer_id = tables.Column(verbose_name="Customer ID")
    customer_name = tables.Column(verbose_name="Name")
    card_masked = tables.Column(verbose_name="Card")
    amount = tables.Column(verbose_name="Amount", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    billing_type = tables.Column(verbose_name="Type")
    schedule_kind = tables.Column(verbose_name="Schedule", orderable=False)
    next_execute_date = tables.DateColumn(verbose_name="Next Execute Date", format="Y-m-d")
    retry = tables.TemplateColumn(
        template_name="recurring/includes/retry.html", verbose_name="Retry", orderable=False, empty_values=()
    )
    status = tables.TemplateColumn(template_name="recurring/includes/billing_status.html", verbose_name="Status")
    edit = tables.TemplateColumn(
        template_name="recurring/includes/edit_menu.html", verbose_name="", orderable=False, empty_values=()
    )

    class Meta:
        model = Billing
        fields = (
            "billing_number",
            "customer_id",
            "customer_name",
            "card_masked",
            "amount",
            "billing_type",
            "schedule_kind",
            "next_execute_date",
            "status",
        )
        # The Edit menu right after the number, so it stays in view on narrow screens.
        sequence = ("billing_number", "edit", "...")
        order_by = ("billing_number",)
        attrs = {"class": "table"}
        row_attrs = {"data-billing": lambda record: record.billing_number}

    def __init__(self, *args, expiring=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.expiring = expiring or (lambda billing: False)  # card_expiry.marker of the merchant

    def render_amount(self, value):
        return format_rupiah(value)

    def render_card_masked(self, value, record):
        if self.expiring(record):
            return format_html(
                '{} <span class="status status-warn" data-testid="card-expiring">Card expiring</span>', value
            )
        return value

    def render_schedule_kind(self, record):
        return record.schedule.describe()


class RegistrationTable(tables.Table):
    """The Registration menu (R9, B4): hosted and batch registrations."""

    created_at = tables.DateTimeColumn(verbose_name="Registered", format="Y-m-d H:i")
    source = tables.Column(verbose_name="Source")
    billing_number = tables.Column(verbose_name="Billing Number")
    customer_id = tables.Column(verbose_name="Customer ID")
    customer_name = tables.Column(verbose_name="Name")
    card_masked = tables.Column(verbose_name="Card")
    card_issuer = tables.Column(verbose_name="Issuer")
    amount = tables.Column(verbose_name="Amount", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    schedule_kind = tables.Column(verbose_name="Schedule", orderable=False)
    status = tables.TemplateColumn(template_name="recurring/includes/billing_status.html", verbose_name="Status")

    class Meta:
        model = Billing
        fields = (
            "created_at",
            "source",
            "billing_number",
            "customer_id",
            "customer_name",
            "card_masked",
            "card_issuer",
            "amount",
            "schedule_kind",
            "status",
        )
        order_by = ("-created_at",)
        attrs = {"class": "table"}

    def render_amount(self, value):
        return format_rupiah(value)

    def render_schedule_kind(self, record):
        return record.schedule.describe()
