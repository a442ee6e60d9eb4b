"""What the API reads and writes. Amounts are whole Rupiah integers, dates ISO 8601, times with their
offset (the merchant's zone). Card number, expiry and CVV are read, handed to the acquirer for a token,
and never stored or echoed: answers carry the masked number only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from rest_framework import serializers

from billing_bo.lib.cards import luhn_valid, normalise_pan
from billing_bo.lib.references import NOT_A_REFERENCE, REFERENCE
from payments.models import Adjustment, Transaction
from recurring.models import Billing
from recurring.schedule import DATE, DAY, FULL_DATE, KINDS, MAX_FULL_DATES, Schedule, ScheduleError

MAX_AMOUNT = 10**14 - 1  # MONEY: 14 digits


def reference_field(**kwargs) -> serializers.RegexField:
    return serializers.RegexField(
        f"^{REFERENCE}$", max_length=64, error_messages={"invalid": NOT_A_REFERENCE}, **kwargs
    )


class WholeRupiahField(serializers.IntegerField):
    """An integer in JSON, a Decimal for the services (money is never a float)."""

    def to_internal_value(self, data) -> Decimal:
        return Decimal(super().to_internal_value(data))


def amount_field(**kwargs) -> serializers.IntegerField:
    return WholeRupiahField(min_value=1, max_value=MAX_AMOUNT, help_text="Whole Rupiah.", **kwargs)


class CardInSerializer(serializers.Serializer):
    """A card for the acquirer: tokenized, never stored or echoed."""

    number = serializers.RegexField(
        r"^[0-9 -]{13,23}$",
        write_only=True,
        error_messages={"invalid": "Enter the 13 to 19 digits of the card."},
        help_text="13-19 digits, spaces or dashes allowed. Sent to the acquirer only.",
    )
    expiry = serializers.RegexField(
        r"^(0[1-9]|1[0-2])/[0-9]{2}$", write_only=True, error_messages={"invalid": "Enter the expiry as MM/YY."}
    )
    cvv = serializers.RegexField(
        r"^[0-9]{3,4}$",
        write_only=True,
        required=False,
        error_messages={"invalid": "Enter the 3 or 4 digits on the back."},
        help_text="Sent to the acquirer only.",
    )
    holder_name = serializers.CharField(max_length=120, write_only=True)
    holder_phone = serializers.RegexField(
        r"^\+?[0-9]{8,15}$",
        write_only=True,
        required=False,
        error_messages={"invalid": "Enter 8 to 15 digits, optionally starting with +."},
    )

    def validate_number(self, value: str) -> str:
        number = normalise_pan(value)
        if not (13 <= len(number) <= 19 and luhn_valid(number)):
            raise serializers.ValidationError("This card number fails the check digit (Luhn): a typo?")
        return number


def tokenize_arguments(card: dict) -> dict:
    """The arguments of ``payments.tokenize_card`` for a validated ``CardInSerializer``."""
    month, year = card["expiry"].split("/")
    return {
        "pan": card["number"],
        "expiry_month": int(month),
        "expiry_year": 2000 + int(year),
        "cvv": card.get("cvv"),
        "holder_name": card["holder_name"],
        "holder_phone": card.get("holder_phone", ""),
    }


class CardOutSerializer(serializers.Serializer):
    masked = serializers.CharField(source="card_masked", help_text="First 6 and last 4 digits.")
    expiry = serializers.SerializerMethodField(help_text="YYYY-MM")
    issuer = serializers.CharField(source="card_issuer")
    brand = serializers.CharField(source="card_brand")
    holder_name = serializers.CharField()
    holder_phone = serializers.CharField()

    def get_expiry(self, obj) -> str | None:
        return f"{obj.card_expiry:%Y-%m}" if obj.card_expiry else None


class ScheduleSerializer(serializers.Serializer):
    """A schedule as Edit Date takes it: Date (days 1-28 and months), Day (weekdays 0 = Monday ... 6 and
    months), or Full Date (dates, none before the first day the scheduler may still run)."""

    kind = serializers.ChoiceField(choices=KINDS)
    days = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=28), required=False)
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False)
    months = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=12), required=False)
    dates = serializers.ListField(child=serializers.DateField(), required=False, max_length=MAX_FULL_DATES)

    def validate(self, attrs):
        first_day: date = self.context["first_day"]
        kind = attrs["kind"]
        try:
            if kind == DATE:
                schedule = Schedule.by_date(attrs.get("days") or [], attrs.get("months") or [])
            elif kind == DAY:
                schedule = Schedule.by_day(attrs.get("weekdays") or [], attrs.get("months") or [])
            else:
                schedule = Schedule.full_dates(attrs.get("dates") or [], first_day=first_day)
        except ScheduleError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return schedule

    def to_representation(self, schedule: Schedule) -> dict:
        data = schedule.to_dict()
        return {
            "kind": data["kind"],
            "days": list(data.get("days", [])) if schedule.kind == DATE else [],
            "weekdays": list(data.get("weekdays", [])) if schedule.kind == DAY else [],
            "months": list(data.get("months", [])) if schedule.kind != FULL_DATE else [],
            "dates": [str(day) for day in data.get("dates", [])] if schedule.kind == FULL_DATE else [],
        }


class BillingSerializer(serializers.Serializer):
    billing_number = serializers.CharField()
    customer_id = serializers.CharField()
    customer_name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    amount = serializers.IntegerField(help_text="Whole Rupiah.")
    type = serializers.ChoiceField(source="billing_type", choices=Billing.Type.choices)
    status = serializers.ChoiceField(choices=Billing.Status.choices)
    source = serializers.ChoiceField(choices=Billing.Source.choices)
    schedule = ScheduleSerializer()
    schedule_description = serializers.SerializerMethodField()
    next_execute_date = serializers.DateField(allow_null=True)
    next_retry_date = serializers.DateField(allow_null=True)
    card = CardOutSerializer(source="*")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_schedule_description(self, obj: Billing) -> str:
        return obj.schedule.describe()


class BillingCreateSerializer(serializers.Serializer):
    billing_number = reference_field(
        required=False, help_text="Unique per merchant (ignoring case); made up (REG-...) when left out."
    )
    customer_id = serializers.CharField(max_length=64)
    customer_name = serializers.CharField(max_length=120)
    email = serializers.EmailField(required=False)
    phone = serializers.RegexField(
        r"^\+?[0-9]{8,15}$",
        required=False,
        error_messages={"invalid": "Enter 8 to 15 digits, optionally starting with +."},
    )
    amount = amount_field()
    type = serializers.ChoiceField(choices=Billing.Type.choices, default=Billing.Type.RECURRING)
    schedule = ScheduleSerializer()
    card = CardInSerializer()


class BillingUpdateSerializer(serializers.Serializer):
    """Manage Recurring's changes: Edit Date, Inactivate / Activate, Change Type (amounts are not edited)."""

    schedule = ScheduleSerializer(required=False)
    status = serializers.ChoiceField(choices=Billing.Status.choices, required=False)
    type = serializers.ChoiceField(choices=Billing.Type.choices, required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one of schedule, status and type.")
        return attrs


class PreviewSerializer(serializers.Serializer):
    schedule = ScheduleSerializer()
    description = serializers.CharField()
    dates = serializers.ListField(child=serializers.DateField())


class PreviewQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=60, default=12, help_text="How many dates (1-60).")
    after = serializers.DateField(
        required=False, help_text="Dates strictly after this day (default: the day before the next schedulable day)."
    )


class TransactionSerializer(serializers.Serializer):
    invoice_number = serializers.CharField()
    billing_number = serializers.CharField()
    customer_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=Transaction.Kind.choices)
    status = serializers.ChoiceField(choices=Transaction.Status.choices)
    amount = serializers.IntegerField(help_text="Whole Rupiah.")
    refunded_amount = serializers.IntegerField(help_text="Whole Rupiah.")
    execute_date = serializers.DateField()
    next_retry_date = serializers.DateField(allow_null=True)
    attempts = serializers.IntegerField()
    response_code = serializers.CharField()
    approval_code = serializers.CharField()
    error_code = serializers.CharField()
    bank_message = serializers.CharField()
    card = CardOutSerializer(source="*")


class TransactionDetailSerializer(TransactionSerializer):
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)


class TransactionRowSerializer(TransactionSerializer):
    """A row of the list, as All Report shows it (with its CSV File Name)."""

    file_name = serializers.CharField(help_text="The uploaded file it came from, or empty.")
    card = None
    card_masked = serializers.CharField()
    card_issuer = serializers.CharField()
    holder_name = serializers.CharField()
    holder_phone = serializers.CharField()


class TransactionPageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Total Data of the whole result.")
    total_amount = serializers.IntegerField(help_text="Total Amount of the whole result, whole Rupiah.")
    start_date = serializers.DateField(allow_null=True, help_text="The execute-date range searched.")
    end_date = serializers.DateField(allow_null=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last page.")
    previous = serializers.CharField(allow_null=True)
    results = TransactionRowSerializer(many=True)


class SinglePaymentSerializer(serializers.Serializer):
    invoice_number = reference_field(help_text="Unique per merchant.")
    billing_number = reference_field(required=False, help_text="One of your billings' numbers (this or customer_id).")
    customer_id = serializers.CharField(max_length=64, required=False, help_text="This or billing_number.")
    amount = amount_field()
    execute_date = serializers.DateField(help_text="The merchant's today or later.")
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    card = CardInSerializer()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(min_length=3, max_length=500, help_text="Kept in User Activity.")


class RefundSerializer(ReasonSerializer):
    amount = amount_field()


class AdjustmentSerializer(serializers.Serializer):
    kind = serializers.CharField()
    status = serializers.ChoiceField(
        choices=Adjustment.Status.choices, help_text="pending: the bank's answer is awaited."
    )
    amount = serializers.IntegerField()
    response_code = serializers.CharField()
    bank_message = serializers.CharField()


class AdjustmentResultSerializer(serializers.Serializer):
    adjustment = AdjustmentSerializer()
    transaction = TransactionDetailSerializer()


class CancelResultSerializer(serializers.Serializer):
    invoice_number = serializers.CharField()
    billing_number = serializers.CharField()
    execute_date = serializers.DateField()
    status = serializers.CharField(help_text="cancelled")


class ReportQuerySerializer(serializers.Serializer):
    """The query of the transaction list: All Report's filters (except the card number, which must not be in
    a URL), its sort and its cursor."""

    billing_number = serializers.CharField(required=False, max_length=64)
    invoice_number = serializers.CharField(required=False, max_length=64)
    file_name = serializers.CharField(required=False, max_length=255)
    amount = serializers.IntegerField(required=False, min_value=0, max_value=MAX_AMOUNT)
    holder_name = serializers.CharField(required=False, max_length=120)
    holder_phone = serializers.CharField(required=False, max_length=20)
    start_date = serializers.DateField(required=False)
    end_date = serializers.DateField(required=False)
    batch_type = serializers.ChoiceField(choices=["registration", "single_payment"], required=False)
    status = serializers.ChoiceField(choices=Transaction.Status.choices, required=False)
    response_code = serializers.CharField(required=False, max_length=4)
    approval_code = serializers.CharField(required=False, max_length=12)
    error_code = serializers.CharField(required=False, max_length=32)
    sort = serializers.ChoiceField(
        choices=[
            "execute_date",
            "-execute_date",
            "invoice_number",
            "-invoice_number",
            "billing_number",
            "-billing_number",
            "amount",
            "-amount",
            "status",
            "-status",
        ],
        required=False,
        default="-execute_date",
    )
    after = serializers.CharField(required=False, max_length=500, help_text="The cursor of the next page.")
    totals = serializers.CharField(required=False, max_length=500, help_text="Carried by the next link.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=settings.REPORTS_PAGE_SIZE)


class PageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="The next page's URL; null on the last page.")
    previous = serializers.CharField(allow_null=True, help_text="The previous page's URL; null on the first.")


class BillingPageSerializer(PageSerializer):
    results = BillingSerializer(many=True)


class BillingQuerySerializer(serializers.Serializer):
    customer_id = serializers.CharField(required=False, max_length=64)
    billing_number = serializers.CharField(required=False, max_length=64, help_text="Ignoring case.")
    after = serializers.CharField(required=False, max_length=500, help_text="The cursor of the next page.")
    before = serializers.CharField(required=False, max_length=500, help_text="The cursor of the previous page.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
