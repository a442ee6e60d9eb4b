from django.contrib import admin

from .models import Billing, RetryPolicy, SchedulerRun


@admin.register(SchedulerRun)
class SchedulerRunAdmin(admin.ModelAdmin):
    """Platform operators watch the scheduler here (O2)."""

    list_display = (
        "day",
        "merchant",
        "due",
        "charged",
        "reminded",
        "skipped",
        "single_payments",
        "retries",
        "finished_at",
        "seconds",
    )
    list_filter = ("merchant",)
    date_hierarchy = "day"
    readonly_fields = [f.name for f in SchedulerRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Billing)
class BillingAdmin(admin.ModelAdmin):
    list_display = (
        "billing_number",
        "merchant",
        "customer_id",
        "billing_type",
        "status",
        "schedule_kind",
        "next_execute_date",
        "deleted_at",
    )
    list_filter = ("merchant", "billing_type", "status", "source")
    search_fields = ("billing_number", "customer_id")
    readonly_fields = ("card_token", "card_masked", "card_fingerprint")


@admin.register(RetryPolicy)
class RetryPolicyAdmin(admin.ModelAdmin):
    """A merchant's retry days and codes (R10) and its card update settings (issue #19): the decline codes
    that send the cardholder a card update link, and how many days ahead a card counts as expiring."""

    list_display = ("merchant", "retry_codes", "retry_after_days", "card_update_codes", "expiring_days")
