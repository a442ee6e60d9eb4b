"""Billings: what Registration and Manage Recurring do (recurring.services), for the merchant's systems."""

from __future__ import annotations

from datetime import timedelta

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.tenancy import merchant_rows
from payments.acquirer import AcquirerError, CardRejected
from recurring import services
from recurring.models import Billing
from recurring.scheduler import next_schedulable_day

from ..base import ApiView
from ..idempotency import idempotent
from ..models import Scope
from ..pagination import keyset_page
from ..problems import Conflict
from ..serializers import (
    BillingCreateSerializer,
    BillingPageSerializer,
    BillingQuerySerializer,
    BillingSerializer,
    BillingUpdateSerializer,
    PreviewQuerySerializer,
    PreviewSerializer,
    tokenize_arguments,
)

NUMBER = OpenApiParameter("billing_number", str, OpenApiParameter.PATH, description="The billing number.")


def card_refused(exc: AcquirerError) -> Conflict:
    if isinstance(exc, CardRejected):
        return Conflict(f"The acquirer refused the card: {exc.response_code} {exc.message}.")
    return Conflict("The acquirer cannot be reached right now. Nothing was changed; try again.")


class BillingMixin:
    def billing(self, billing_number: str) -> Billing:
        """A live billing of the key's merchant (ignoring case, the exact one first); 404 otherwise."""
        rows = merchant_rows(self.request, Billing).filter(deleted_at__isnull=True)
        matches = rows.filter(billing_number__iexact=billing_number)
        found = matches.filter(billing_number=billing_number).first() or matches.first()
        if found is None:
            raise Http404("No billing has this number.")
        return found

    def schedule_context(self) -> dict:
        return {"first_day": next_schedulable_day(self.request.user.merchant)}


class BillingList(BillingMixin, ApiView):
    required_scope = Scope.BILLINGS

    @extend_schema(
        operation_id="billings_list",
        summary="List billings",
        description="Live billings, newest first, paged by cursor; optionally by Customer ID or Billing Number.",
        parameters=[BillingQuerySerializer],
        responses={200: BillingPageSerializer},
    )
    def get(self, request):
        query = BillingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = merchant_rows(request, Billing).filter(deleted_at__isnull=True)
        if customer_id := query.validated_data.get("customer_id"):
            rows = rows.filter(customer_id=customer_id)
        if billing_number := query.validated_data.get("billing_number"):
            rows = rows.filter(billing_number__iexact=billing_number)
        page, links = keyset_page(request, rows, ("created_at", "id"), "created", query.validated_data["page_size"])
        return Response({**links, "results": BillingSerializer(page.rows, many=True).data})

    @extend_schema(
        operation_id="billings_create",
        summary="Register a billing",
        description="The card goes to the acquirer for a token (number, expiry and CVV are never stored or "
        "echoed); the billing is charged on its schedule from the first day the scheduler may still run.",
        request=BillingCreateSerializer,
        responses={201: BillingSerializer},
    )
    @idempotent
    def post(self, request):
        given = BillingCreateSerializer(data=request.data, context=self.schedule_context())
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            billing = services.register_billing(
                self.actor(),
                card=tokenize_arguments(data["card"]),
                billing_number=data.get("billing_number", ""),
                billing_type=data["type"],
                customer_id=data["customer_id"],
                customer_name=data["customer_name"],
                email=data.get("email", ""),
                phone=data.get("phone", ""),
                amount=data["amount"],
                schedule=data["schedule"],
            )
        except services.RecurringError as refusal:
            raise Conflict(str(refusal)) from refusal
        except AcquirerError as exc:
            raise card_refused(exc) from exc
        url = request.build_absolute_uri(f"/api/v1/billings/{billing.billing_number}/")
        return Response(BillingSerializer(billing).data, status=status.HTTP_201_CREATED, headers={"Location": url})


class BillingDetail(BillingMixin, ApiView):
    required_scope = Scope.BILLINGS

    @extend_schema(
        operation_id="billings_retrieve", summary="A billing", parameters=[NUMBER], responses={200: BillingSerializer}
    )
    def get(self, request, billing_number: str):
        return Response(BillingSerializer(self.billing(billing_number)).data)

    @extend_schema(
        operation_id="billings_update",
        summary="Change a billing's schedule, status or type",
        description="As Manage Recurring's Edit Date, Inactivate / Activate and Change Type (each audited).",
        parameters=[NUMBER],
        request=BillingUpdateSerializer,
        responses={200: BillingSerializer},
    )
    @idempotent
    def patch(self, request, billing_number: str):
        billing = self.billing(billing_number)
        given = BillingUpdateSerializer(data=request.data, context=self.schedule_context())
        given.is_valid(raise_exception=True)
        data, actor = given.validated_data, self.actor()
        try:
            if "schedule" in data and data["schedule"] != billing.schedule:
                billing = services.change_schedule(actor, billing, data["schedule"])
            if "status" in data and data["status"] != billing.status:
                billing = services.set_status(actor, billing, data["status"])
            if "type" in data and data["type"] != billing.billing_type:
                billing = services.change_type(actor, billing, data["type"])
        except services.RecurringError as refusal:
            raise Conflict(str(refusal)) from refusal
        return Response(BillingSerializer(billing).data)

    @extend_schema(
        operation_id="billings_destroy",
        summary="Delete a billing",
        description="As Manage Recurring's Delete: nothing runs after it; its transactions stay, and those "
        "not sent to the bank are cancelled.",
        parameters=[
            NUMBER,
            OpenApiParameter("reason", str, description="Kept in User Activity (default: deleted through the API)."),
        ],
        responses={204: None},
    )
    @idempotent
    def delete(self, request, billing_number: str):
        billing = self.billing(billing_number)
        reason = request.query_params.get("reason", "").strip()[:500] or "Deleted through the API."
        try:
            services.delete(self.actor(), billing, reason)
        except services.RecurringError as refusal:
            raise Conflict(str(refusal)) from refusal
        return Response(status=status.HTTP_204_NO_CONTENT)


class BillingPreview(BillingMixin, ApiView):
    required_scope = Scope.BILLINGS

    @extend_schema(
        operation_id="billings_preview",
        summary="The next execute dates of a billing",
        parameters=[NUMBER, PreviewQuerySerializer],
        responses={200: PreviewSerializer},
    )
    def get(self, request, billing_number: str):
        billing = self.billing(billing_number)
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data.get("after") or next_schedulable_day(billing.merchant) - timedelta(days=1)
        schedule = billing.schedule
        dates = schedule.next_dates(after, query.validated_data["count"])
        return Response(
            PreviewSerializer({"schedule": schedule, "description": schedule.describe(), "dates": dates}).data
        )
