from __future__ import annotations

import re
from datetime import date, timedelta

from django import forms

from billing_bo.lib.cards import luhn_valid, normalise_pan
from billing_bo.lib.money import RupiahField

from .models import Billing
from .schedule import DATE, DAY, FULL_DATE, KIND_LABELS, MONTH_NAMES, WEEKDAY_NAMES, Schedule, ScheduleError


def parse_dates(text: str) -> tuple[list[date], str]:
    """Full Dates typed as YYYY-MM-DD, separated by commas, spaces or new lines: the dates, and a sentence
    naming every token that is not one ("" when all are)."""
    dates, bad = [], []
    for token in re.split(r"[\s,;]+", text.strip()):
        if not token:
            continue
        try:
            dates.append(date.fromisoformat(token))
        except ValueError:
            bad.append(token)
    if not bad:
        return dates, ""
    if len(bad) == 1:
        return dates, f"{bad[0]} is not a date: use YYYY-MM-DD."
    return dates, f"{', '.join(bad[:-1])} and {bad[-1]} are not dates: use YYYY-MM-DD."


class ScheduleForm(forms.Form):
    """Edit Date (R2): one form for the three types; ``clean`` returns a ``Schedule`` in ``schedule``."""

    kind = forms.ChoiceField(label="Schedule type", choices=list(KIND_LABELS.items()), widget=forms.RadioSelect)
    days = forms.TypedMultipleChoiceField(
        label="Execute days",
        choices=[(d, d) for d in range(1, 29)],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Execute days must be 1 to 28 (every month has them): %(value)s is not."},
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="Days of the week",
        choices=list(enumerate(WEEKDAY_NAMES)),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    months = forms.TypedMultipleChoiceField(
        label="Execute months",
        choices=[(m, MONTH_NAMES[m - 1]) for m in range(1, 13)],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    dates = forms.CharField(
        label="Dates",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="YYYY-MM-DD, separated by commas or new lines.",
    )

    def __init__(self, *args, first_day: date, **kwargs):
        """``first_day``: the first day a schedule may still run (``scheduler.next_schedulable_day``)."""
        super().__init__(*args, **kwargs)
        self.first_day = first_day
        # The placeholder's example dates are ahead of the first day, as a valid entry must be.
        soon, later = first_day + timedelta(days=7), first_day + timedelta(days=45)
        self.fields["dates"].widget.attrs["placeholder"] = f"{soon:%Y-%m-%d}, {later:%Y-%m-%d}"

    # A new schedule (registration link, hosted page): a Date schedule with every month ticked, as Edit Date
    # shows a billing's; the cardholder picks the days (and unticks months) instead of learning on submit.
    NEW = {"kind": DATE, "months": list(range(1, 13))}

    @classmethod
    def initial_for(cls, schedule: Schedule) -> dict:
        return {
            "kind": schedule.kind,
            "days": list(schedule.days),
            "weekdays": list(schedule.weekdays),
            "months": list(schedule.months),
            "dates": "\n".join(d.isoformat() for d in schedule.dates),
        }

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if self.errors:
            return cleaned
        try:
            if kind == DATE:
                cleaned["schedule"] = Schedule.by_date(cleaned.get("days") or [], cleaned.get("months") or [])
            elif kind == DAY:
                cleaned["schedule"] = Schedule.by_day(cleaned.get("weekdays") or [], cleaned.get("months") or [])
            elif kind == FULL_DATE:
                cleaned["schedule"] = self._full_dates(cleaned.get("dates", ""))
        except ScheduleError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned

    def _full_dates(self, text: str) -> Schedule:
        """Every bad date named at once: those that are not dates, then those in the past."""
        dates, not_dates = parse_dates(text)
        if not not_dates:
            return Schedule.full_dates(dates, first_day=self.first_day)
        errors = [not_dates]
        try:
            Schedule.full_dates(dates, first_day=self.first_day)
        except ScheduleError as exc:
            if dates:  # "choose at least one date" adds nothing to the tokens named
                errors.append(str(exc))
        raise forms.ValidationError(errors)

    def error_text(self) -> str:
        """All the form's errors as one text, for the preview (JSON and the page)."""
        return " ".join(error for field_errors in self.errors.values() for error in field_errors)


class BillingSearchForm(forms.Form):
    """Manage Recurring and Registration (R1): by Customer ID or Billing Number."""

    customer_id = forms.CharField(label="Customer ID", max_length=64, required=False)
    billing_number = forms.CharField(label="Billing Number", max_length=64, required=False)


class ChangeTypeForm(forms.Form):
    billing_type = forms.ChoiceField(label="Type", choices=Billing.Type.choices, widget=forms.RadioSelect)


class CancelSearchForm(forms.Form):
    """Cancel Execute Date (P6)."""

    execute_date = forms.DateField(label="Execute Date", widget=forms.DateInput(attrs={"type": "date"}))
    billing_number = forms.CharField(label="Billing Number", max_length=64, required=False)
    invoice_number = forms.CharField(label="Invoice Number", max_length=64, required=False)

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("billing_number") or cleaned.get("invoice_number")):
            raise forms.ValidationError("Enter the Billing Number, the Invoice Number, or both.")
        return cleaned


class RegistrationLinkForm(forms.Form):
    """R9: what the merchant fixes in a hosted registration link; the rest the cardholder fills in."""

    customer_id = forms.CharField(label="Customer ID", max_length=64, required=False)
    amount = RupiahField(label="Amount (Rp)", required=False)
    fix_schedule = forms.BooleanField(label="Fix the schedule", required=False)
    valid_days = forms.IntegerField(label="Link valid for (days)", min_value=1, max_value=30, initial=7)

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is not None and (refusal := self.merchant.charge_amount_refused_because(amount)):
            raise forms.ValidationError(refusal)
        return amount


class NotEchoedInput(forms.TextInput):
    """A text box that never writes the submitted value back into the page (a card number)."""

    def format_value(self, value):
        return None


class CardForm(forms.Form):
    """The card fields of the hosted pages (R9 registration, card update). Card number and CVV go to the
    acquirer and nowhere else; the number is Luhn-checked here and on the page (static/js/card-number.js)."""

    card_number = forms.RegexField(
        label="Card number",
        regex=r"^[0-9 -]{13,23}$",
        error_messages={"invalid": "Enter the 13 to 19 digits of the card."},
        widget=NotEchoedInput(attrs={"inputmode": "numeric", "autocomplete": "cc-number", "data-luhn": ""}),
    )
    expiry = forms.RegexField(
        label="Expiry (MM/YY)",
        regex=r"^(0[1-9]|1[0-2])/?([0-9]{2})$",
        error_messages={"invalid": "Enter the expiry as MM/YY."},
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "placeholder": "MM/YY"}),
    )
    cvv = forms.RegexField(
        label="CVV",
        regex=r"^[0-9]{3,4}$",
        error_messages={"invalid": "Enter the 3 or 4 digits on the back."},
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "cc-csc"}),
    )
    holder_name = forms.CharField(label="Name on the card", max_length=120)

    def clean_card_number(self):
        """The batch upload's rule (same message): a typo is refused here, not sent to the bank."""
        number = normalise_pan(self.cleaned_data["card_number"])
        if not (13 <= len(number) <= 19 and luhn_valid(number)):
            raise forms.ValidationError("This card number fails the check digit (Luhn): a typo?")
        return number

    def expiry_parts(self) -> tuple[int, int]:
        month, year = re.match(r"^(\d{2})/?(\d{2})$", self.cleaned_data["expiry"]).groups()
        return int(month), 2000 + int(year)

    def card(self, phone: str = "") -> dict:
        """The arguments of ``payments.tokenize_card`` for the card entered."""
        data = self.cleaned_data
        month, year = self.expiry_parts()
        return {
            "pan": data["card_number"],
            "expiry_month": month,
            "expiry_year": year,
            "cvv": data["cvv"],
            "holder_name": data["holder_name"],
            "holder_phone": phone,
        }


class HostedRegistrationForm(CardForm):
    """The cardholder's page (R9)."""

    field_order = ("customer_id", "customer_name", "email", "phone", "card_number", "expiry", "cvv", "holder_name")

    customer_id = forms.CharField(label="Customer ID", max_length=64)
    customer_name = forms.CharField(label="Full name", max_length=120)
    email = forms.EmailField(label="Email")
    phone = forms.RegexField(
        label="Mobile number",
        regex=r"^\+?[0-9]{8,15}$",
        error_messages={"invalid": "Enter 8 to 15 digits, optionally starting with +."},
    )
    amount = RupiahField(label="Amount (Rp)")

    def __init__(self, *args, fixed: dict, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant
        for name in ("customer_id", "amount"):
            if fixed.get(name) not in (None, ""):
                del self.fields[name]

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if refusal := self.merchant.charge_amount_refused_because(amount):
            raise forms.ValidationError(refusal)
        return amount
