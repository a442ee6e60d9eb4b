from __future__ import annotations

import django_tables2 as tables
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from billing_bo.lib import display

from .audit import ACTIONS
from .menus import MENUS_BY_CODE
from .models import AuditEntry, User


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
        return ", ".join(f"{key}: {display.compact_json(item)}" for key, item in value.items())


class UserTable(tables.Table):
    """Manage User (U1)."""

    username = tables.Column(verbose_name="User name")
    email = tables.Column(verbose_name="Email")
    mobile_number = tables.Column(verbose_name="Mobile number")
    menu_access = tables.Column(verbose_name="Menu access", orderable=False)
    status = tables.Column(verbose_name="Status", empty_values=(), orderable=False)
    last_login = tables.DateTimeColumn(verbose_name="Last sign-in", format="Y-m-d H:i")
    actions = tables.TemplateColumn(
        template_name="accounts/includes/user_actions.html", verbose_name="", orderable=False, empty_values=()
    )

    class Meta:
        model = User
        fields = ("username", "email", "mobile_number", "menu_access", "status", "last_login")
        order_by = ("username",)
        attrs = {"class": "table"}

    def render_menu_access(self, record):
        if record.is_merchant_admin:
            return "All menus (admin)"
        return ", ".join(MENUS_BY_CODE[code].label for code in record.menu_access if code in MENUS_BY_CODE) or "—"

    def render_status(self, record):
        if record.locked:
            return mark_safe('<span class="status status-bad">Locked</span>')
        if record.is_sign_in_locked():
            return format_html(
                '<span class="status status-warn">Locked until {}</span>',
                localtime(record.locked_until).strftime("%H:%M"),
            )
        if not record.has_usable_password():
            return mark_safe('<span class="status status-pending">Invited</span>')
        return mark_safe('<span class="status status-ok">Active</span>')
