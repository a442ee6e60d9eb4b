"""R10: the merchant's retry policy, set by a merchant admin (Setting Account -> Retries and card updates).

Which soft declines are charged again and after how many days, which hard declines send the cardholder
a card update link (recurring/card_notices.py), and how many days before its expiry a card counts as
expiring. A hard decline is never retried: the form offers only soft codes to retry and only hard codes
for card updates. Each change is in User Activity with its before and after.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import audit
from accounts.audit import Actor
from accounts.tenancy import admin_required

from .models import RetryPolicy

# ISO 8583 response codes a bank may answer; a soft decline may pass on another day, a hard one never.
SOFT_DECLINES = {
    "05": "Do not honor",
    "51": "Insufficient funds",
    "61": "Exceeds withdrawal amount limit",
    "65": "Exceeds withdrawal frequency limit",
    "91": "Issuer unavailable",
    "96": "System malfunction",
}
HARD_DECLINES = {
    "04": "Pick up card",
    "14": "Invalid card number",
    "15": "No such issuer",
    "41": "Lost card",
    "43": "Stolen card",
    "54": "Expired card",
    "57": "Transaction not permitted to cardholder",
    "62": "Restricted card",
}
MAX_RETRIES = 5
MAX_RETRY_DAY = 30
MAX_EXPIRING_DAYS = 90


def _choices(codes: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, f"{code} {label}") for code, label in codes.items()]


class RetryPolicyForm(forms.Form):
    retry_codes = forms.MultipleChoiceField(
        label="Charge again after these declines",
        choices=_choices(SOFT_DECLINES),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Soft declines only: a hard decline (such as an invalid or expired card) is never charged again.",
    )
    retry_after_days = forms.CharField(
        label="Days after the execute date",
        required=False,
        help_text=f"Up to {MAX_RETRIES} days from 1 to {MAX_RETRY_DAY}, separated by commas, such as 1, 3.",
    )
    card_update_codes = forms.MultipleChoiceField(
        label="Send a card update link after these declines",
        choices=_choices(HARD_DECLINES),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    expiring_days = forms.IntegerField(
        label="A card is expiring this many days before its expiry",
        min_value=1,
        max_value=MAX_EXPIRING_DAYS,
        help_text="Its billing is marked, and its cardholder is e-mailed a card update link.",
    )

    def clean_retry_after_days(self) -> list[int]:
        parts = [part.strip() for part in self.cleaned_data["retry_after_days"].split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            raise forms.ValidationError("Write whole numbers of days separated by commas, such as 1, 3.")
        days = sorted({int(part) for part in parts})
        if any(day < 1 or day > MAX_RETRY_DAY for day in days):
            raise forms.ValidationError(f"Each day must be from 1 to {MAX_RETRY_DAY}.")
        if len(days) > MAX_RETRIES:
            raise forms.ValidationError(f"At most {MAX_RETRIES} retries.")
        return days

    def clean(self):
        data = super().clean()
        if data.get("retry_codes") and not data.get("retry_after_days") and "retry_after_days" not in self.errors:
            self.add_error("retry_after_days", "Give at least one day, or untick every decline to charge again.")
        return data


def initial(policy: RetryPolicy) -> dict:
    return {
        "retry_codes": list(policy.retry_codes),
        "retry_after_days": ", ".join(str(day) for day in policy.retry_after_days),
        "card_update_codes": list(policy.card_update_codes),
        "expiring_days": policy.expiring_days,
    }


def change_retry_policy(actor: Actor, values: dict) -> RetryPolicy:
    """Save ``values`` (a valid RetryPolicyForm's cleaned data) as the policy of ``actor``'s merchant;
    what changed is audited."""
    fields = tuple(RetryPolicyForm.base_fields)  # named as the policy's fields
    with transaction.atomic():
        policy, _ = RetryPolicy.objects.select_for_update().get_or_create(
            merchant=actor.merchant, defaults=RetryPolicy.default_retries()
        )
        changed = {
            field: {"before": getattr(policy, field), "after": values[field]}
            for field in fields
            if getattr(policy, field) != values[field]
        }
        if changed:
            for field in fields:
                setattr(policy, field, values[field])
            policy.save()
            audit.record("recurring.retry_policy.changed", actor=actor, target=policy, data=changed)
    return policy


@never_cache
@require_http_methods(["GET", "POST"])
@admin_required
def retry_policy(request):
    policy = RetryPolicy.for_merchant(request.user.merchant)
    form = RetryPolicyForm(request.POST or None, initial=initial(policy))
    if request.method == "POST" and form.is_valid():
        change_retry_policy(Actor.from_request(request), form.cleaned_data)
        messages.success(request, "The retry policy is saved. It applies to declines from now on.")
        return redirect("accounts:account")
    return render(request, "recurring/retry_policy.html", {"form": form})
