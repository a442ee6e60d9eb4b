from __future__ import annotations

import django_tables2 as tables

from .audit import ACTIONS
from .models import AuditEntry


class AuditEntryTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name="Time", format="Y-m-d H:i:s")
    actor_username = tables.Column(verbose_name="User")
    action = tables.Column(verbose_name="Activity")
    ip_address = tables.Column(verbose_name="IP")
    target_repr = tables.Column(verbose_name="Object")
    data = tables.Column(verbose_name="Data", orderable=False)
    detail = tables.LinkColumn(
        "accounts:activity_detail", args=[tables.A("pk")], text="Detail", orderable=False, empty_values=()
    )

    class Meta:
        model = AuditEntry
        fields = ("created_at", "actor_username", "action", "ip_address", "target_repr", "data")
        order_by = ("-created_at",)
        attrs = {"class": "table"}

    def render_action(self, value):
        return ACTIONS.get(value, value)

    def render_data(self, value):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
