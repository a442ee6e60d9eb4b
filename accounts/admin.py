from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from .models import AuditEntry, Merchant, User


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "time_zone", "created_at")
    search_fields = ("name", "code")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "merchant", "email", "is_merchant_admin", "locked", "last_login")
    list_filter = ("merchant", "is_merchant_admin", "locked", "is_staff")
    fieldsets = BaseUserAdmin.fieldsets + (
        (
            "Merchant",
            {
                "fields": (
                    "merchant",
                    "mobile_number",
                    "is_merchant_admin",
                    "menu_access",
                    "locked",
                    "locked_until",
                    "failed_sign_ins",
                )
            },
        ),
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only (L3)."""

    list_display = ("created_at", "merchant", "actor_username", "action", "ip_address", "target_repr")
    list_filter = ("action", "merchant")
    search_fields = ("actor_username", "search_text")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
