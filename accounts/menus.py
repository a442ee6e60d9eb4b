"""The menus of PRODUCT.md, in one place: menu access codes, the navigation and the access check read this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Menu:
    code: str
    label: str
    url_name: str
    icon: str
    admin_only: bool = False


# Order is the navigation order. Setting Account and Log Out are icons in the header, open to everyone.
MENUS: tuple[Menu, ...] = (
    Menu("manage_user", "Manage User", "accounts:users", "users", admin_only=True),
    Menu("batch_transaction", "Batch Transaction", "batch:single_payment", "upload"),
    Menu("registration", "Registration", "recurring:registrations", "clipboard"),
    Menu("void_transaction", "Void Transaction", "payments:void", "undo"),
    Menu("manage_recurring", "Manage Recurring", "recurring:billings", "repeat"),
    Menu("user_activity", "User Activity", "accounts:activity", "activity"),
    Menu("batch_report", "Batch Report", "reports:batches", "layers"),
    Menu("all_report", "All Report", "reports:all", "table"),
)
MENUS_BY_CODE = {menu.code: menu for menu in MENUS}
# What an admin may grant a staff user (Manage User stays with merchant admins).
GRANTABLE_CHOICES = [(menu.code, menu.label) for menu in MENUS if not menu.admin_only]
