from __future__ import annotations

import django_tables2 as tables

from billing_bo.lib.money import format_rupiah

from .models import CallbackDelivery, Transaction


class VoidRefundTable(tables.Table):
    """Void Transaction results (P4, P5): each row offers Void / Refund, or says why not (P7)."""

    invoice_number = tables.Column(verbose_name="Invoice Number")
    billing_number = tables.Column(verbose_name="Billing Number")
    execute_date = tables.DateColumn(verbose_name="Execute Date", format="Y-m-d")
    card_masked = tables.Column(verbose_name="Card")
    amount = tables.Column(verbose_name="Amount", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    refunded_amount = tables.Column(verbose_name="Refunded", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    approval_code = tables.Column(verbose_name="Approval Code")
    status = tables.TemplateColumn(template_name="payments/includes/status.html", verbose_name="Status")
    actions = tables.TemplateColumn(
        template_name="payments/includes/void_actions.html", verbose_name="Action", orderable=False, empty_values=()
    )

    class Meta:
        model = Transaction
        fields = (
            "invoice_number",
            "billing_number",
            "execute_date",
            "card_masked",
            "amount",
            "refunded_amount",
            "approval_code",
            "status",
        )
        order_by = ("-execute_date",)
        attrs = {"class": "table"}
        row_attrs = {"data-invoice": lambda record: record.invoice_number}

    def render_amount(self, value):
        return format_rupiah(value)

    def render_refunded_amount(self, value):
        return format_rupiah(value) if value else "—"


class CallbackDeliveryTable(tables.Table):
    """The delivery log of callbacks (P8), newest first."""

    created_at = tables.DateTimeColumn(verbose_name="Created", format="Y-m-d H:i:s")
    event = tables.Column(verbose_name="Event")
    invoice = tables.Column(verbose_name="Invoice Number", accessor="payload__data__invoice_number", orderable=False)
    url = tables.Column(verbose_name="URL")
    status = tables.TemplateColumn(template_name="payments/includes/status.html", verbose_name="Status")
    attempts = tables.Column(verbose_name="Attempts")
    next_attempt_at = tables.DateTimeColumn(verbose_name="Next attempt", format="Y-m-d H:i")
    detail = tables.LinkColumn(
        "payments:callback_detail", args=[tables.A("pk")], text="Detail", orderable=False, empty_values=()
    )

    class Meta:
        model = CallbackDelivery
        fields = ("created_at", "event", "invoice", "url", "status", "attempts", "next_attempt_at")
        order_by = ("-created_at",)
        attrs = {"class": "table"}
