from __future__ import annotations

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from billing_bo.lib.money import format_rupiah

from .menus import MENUS_BY_CODE


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError("%(value)s is not a known time zone.", params={"value": value})


class Merchant(models.Model):
    """The tenant: every business row belongs to one merchant."""

    name = models.CharField(max_length=120)
    code = models.SlugField(max_length=32, unique=True)
    time_zone = models.CharField(
        max_length=64, default=settings.DEFAULT_MERCHANT_TIME_ZONE, validators=[validate_time_zone]
    )
    # B2: the amounts a charge of this merchant may have (whole Rupiah).
    min_charge_amount = models.DecimalField(max_digits=14, decimal_places=0, default=10_000)
    max_charge_amount = models.DecimalField(max_digits=14, decimal_places=0, default=100_000_000)
    # P8: where payment results and reminders are sent, and the key that signs them (HMAC-SHA256).
    callback_url = models.URLField(max_length=500, blank=True)
    callback_secret = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def local_today(self):
        return timezone.localdate(timezone=self.tzinfo)

    @property
    def charge_limits(self) -> tuple[Decimal, Decimal]:
        """B2: the lowest and highest amount of a billing or a charge of this merchant (whole Rupiah)."""
        return max(self.min_charge_amount, Decimal(1)), self.max_charge_amount

    def charge_amount_refused_because(self, amount: Decimal) -> str:
        """Why ``amount`` cannot be a billing's or a charge's amount here, or "" when it can: the one rule of
        every path that creates one (hosted registration and its link; batch validation reads the limits)."""
        low, high = self.charge_limits
        if not low <= amount <= high or amount != amount.to_integral_value():
            return f"The amount must be between {format_rupiah(low)} and {format_rupiah(high)}."
        return ""


mobile_number_validator = RegexValidator(
    r"^\+?[0-9]{8,15}$", "Enter a mobile number of 8 to 15 digits, optionally starting with +."
)


class User(AbstractUser):
    """A member of a merchant's staff; platform operators have no merchant."""

    merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    mobile_number = models.CharField(max_length=16, blank=True, validators=[mobile_number_validator])
    is_merchant_admin = models.BooleanField(default=False)
    menu_access = models.JSONField(default=list, blank=True)
    locked = models.BooleanField(default=False, help_text="Locked by an admin: cannot sign in.")
    failed_sign_ins = models.PositiveSmallIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True, help_text="Locked after repeated failed sign-ins.")

    class Meta:
        ordering = ["username"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="user_email_unique_ci",
                violation_error_message="A user with this email exists already.",
            )
        ]

    def has_menu(self, code: str) -> bool:
        menu = MENUS_BY_CODE.get(code)
        if menu is None or self.merchant_id is None:
            return False
        if self.is_merchant_admin:
            return True
        return not menu.admin_only and code in self.menu_access

    def is_sign_in_locked(self, now=None) -> bool:
        now = now or timezone.now()
        return self.locked or (self.locked_until is not None and self.locked_until > now)


class SignedInSession(models.Model):
    """The sessions a user signed in, so a lock or a password change can end all of them (A4, U4)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signed_in_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class AuditEntry(models.Model):
    """One line of User Activity (L1). Append-only: the application never updates or deletes it (L3)."""

    merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    # Lower-cased text of target and data, for the "Data" search (L2).
    search_text = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # Used by accounts.views.activity_list (newest first, optionally by action).
            models.Index(fields=["merchant", "-created_at"], name="audit_merchant_created_idx"),
            models.Index(fields=["merchant", "action", "-created_at"], name="audit_merchant_action_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_username} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit entries are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit entries are append-only.")
