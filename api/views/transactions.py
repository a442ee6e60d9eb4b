"""Transactions: All Report's search (reports.filters / services / pagination), single payments
(batch.services), Void / Refund (payments.services) and Cancel Execute Date (recurring.cancellation)."""

from __future__ import annotations

import re
from datetime import date

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.tenancy import get_merchant_row, merchant_rows
from batch import services as batch_services
from payments import services as payments
from payments.acquirer import AcquirerError
from payments.models import Transaction
from recurring import cancellation
from recurring.services import RecurringError
from reports.filters import AllReportFilter
from reports.services import parse_sort, rows, totals, totals_from_token, totals_token, with_file_names

from ..base import ApiView
from ..idempotency import idempotent
from ..models import Scope
from ..pagination import keyset_page
from ..problems import Conflict
from ..serializers import (
    AdjustmentResultSerializer,
    CancelResultSerializer,
    ReasonSerializer,
    RefundSerializer,
    ReportQuerySerializer,
    SinglePaymentSerializer,
    TransactionDetailSerializer,
    TransactionPageSerializer,
    TransactionRowSerializer,
    tokenize_arguments,
)
from .billings import card_refused

INVOICE = OpenApiParameter("invoice_number", str, OpenApiParameter.PATH, description="The invoice number.")
FILTERS = [name for name in ReportQuerySerializer().fields if name not in ("sort", "after", "totals", "page_size")]


def transaction_of(request, invoice_number: str) -> Transaction:
    return get_merchant_row(request, Transaction.objects.select_related("merchant"), invoice_number=invoice_number)


class TransactionList(ApiView):
    required_scope = Scope.TRANSACTIONS

    @extend_schema(
        operation_id="transactions_list",
        summary="Search transactions (All Report)",
        description="All Report's filters (empty dates: the last REPORTS_DEFAULT_RANGE_DAYS days; at most "
        "REPORTS_MAX_RANGE_DAYS at a time; a CSV File Name search covers the whole file), its sort orders, "
        "Total Data and Total Amount of the whole result, and cursor pages: follow `next` (no OFFSET). "
        "A card number is not a filter here: it must never be in a URL.",
        parameters=[ReportQuerySerializer],
        responses={200: TransactionPageSerializer},
    )
    def get(self, request):
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        given = query.validated_data
        data = {name: str(given[name]) for name in FILTERS if given.get(name) not in (None, "")}
        merchant = request.user.merchant
        found = AllReportFilter(
            data, merchant_rows(request, Transaction), request=request, today=merchant.local_today()
        )
        if not found.is_valid():
            raise ValidationError(
                {
                    "non_field_errors" if name == "__all__" else name: [error["message"] for error in errors]
                    for name, errors in found.form.errors.get_json_data().items()
                }
            )
        search = found.query()
        sort, keys, descending = parse_sort(given["sort"])
        result = totals_from_token(given.get("totals", ""), merchant.pk, search) or totals(found.qs)
        params = request.query_params.copy()
        for name in ("start_date", "end_date"):  # the default window, written out: kept while paging
            if name in search:
                params[name] = search[name]
        params["totals"] = totals_token(merchant.pk, search, result)
        page, links = keyset_page(
            request, rows(found.qs), keys, sort, given["page_size"], descending=descending, params=params
        )
        cleaned = found.form.cleaned_data
        body = {
            "count": result.count,
            "total_amount": int(result.amount),
            "start_date": cleaned.get("start_date"),
            "end_date": cleaned.get("end_date"),
            **links,
            "results": TransactionRowSerializer(list(with_file_names(merchant.pk, page.rows)), many=True).data,
        }
        return Response(TransactionPageSerializer(body).data)

    @extend_schema(
        operation_id="transactions_create",
        summary="Create a single payment",
        description="Charged on its execute date (today: at today's run, or at once when it is over), with a "
        "Batch Transaction row's rules. The card goes to the acquirer for a token.",
        request=SinglePaymentSerializer,
        responses={201: TransactionDetailSerializer},
    )
    @idempotent
    def post(self, request):
        given = SinglePaymentSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            tx = batch_services.create_single_payment(
                self.actor(),
                card=tokenize_arguments(data["card"]),
                invoice_number=data["invoice_number"],
                amount=data["amount"],
                execute_date=data["execute_date"],
                billing_number=data.get("billing_number", ""),
                customer_id=data.get("customer_id", ""),
                description=data.get("description", ""),
            )
        except batch_services.PaymentRefused as refusal:
            raise Conflict(str(refusal)) from refusal
        except AcquirerError as exc:
            raise card_refused(exc) from exc
        url = request.build_absolute_uri(f"/api/v1/transactions/{tx.invoice_number}/")
        body = TransactionDetailSerializer(tx).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": url})


class TransactionDetail(ApiView):
    required_scope = Scope.TRANSACTIONS

    @extend_schema(
        operation_id="transactions_retrieve",
        summary="A transaction",
        parameters=[INVOICE],
        responses={200: TransactionDetailSerializer},
    )
    def get(self, request, invoice_number: str):
        return Response(TransactionDetailSerializer(transaction_of(request, invoice_number)).data)


class AdjustView(ApiView):
    required_scope = Scope.REFUNDS

    def answer(self, request, adjustment) -> Response:
        tx = transaction_of(request, adjustment.transaction.invoice_number)
        body = {"adjustment": adjustment, "transaction": tx}
        return Response(AdjustmentResultSerializer(body).data)


class TransactionVoid(AdjustView):
    @extend_schema(
        operation_id="transactions_void",
        summary="Void a transaction",
        description="A successful transaction before it is settled (the merchant-local midnight after the "
        "charge), in full. The adjustment is pending while the bank's answer is awaited.",
        parameters=[INVOICE],
        request=ReasonSerializer,
        responses={200: AdjustmentResultSerializer},
    )
    @idempotent
    def post(self, request, invoice_number: str):
        tx = transaction_of(request, invoice_number)
        given = ReasonSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            adjustment = payments.void(self.actor(), tx.pk, given.validated_data["reason"])
        except payments.ActionRefused as refusal:
            raise Conflict(str(refusal)) from refusal
        return self.answer(request, adjustment)


class TransactionRefund(AdjustView):
    @extend_schema(
        operation_id="transactions_refund",
        summary="Refund a transaction",
        description="A successful (or partly refunded) transaction, in full or in part: at most what is left.",
        parameters=[INVOICE],
        request=RefundSerializer,
        responses={200: AdjustmentResultSerializer},
    )
    @idempotent
    def post(self, request, invoice_number: str):
        tx = transaction_of(request, invoice_number)
        given = RefundSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            adjustment = payments.refund(self.actor(), tx.pk, data["amount"], data["reason"])
        except payments.ActionRefused as refusal:
            raise Conflict(str(refusal)) from refusal
        return self.answer(request, adjustment)


EXECUTION = re.compile(r"^(?P<billing>.+)-(?P<day>\d{8})$")


class TransactionCancel(ApiView):
    required_scope = Scope.TRANSACTIONS

    @extend_schema(
        operation_id="transactions_cancel",
        summary="Cancel a scheduled execution",
        description="As Cancel Execute Date: a billing's execution (by its invoice number BILLINGNUMBER-YYYYMMDD, "
        "also before the scheduler created it) or a scheduled single payment, while nothing was sent to the bank.",
        parameters=[INVOICE],
        request=ReasonSerializer,
        responses={200: CancelResultSerializer},
    )
    @idempotent
    def post(self, request, invoice_number: str):
        given = ReasonSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        due = self.due(request, invoice_number)
        try:
            cancellation.cancel(self.actor(), due, given.validated_data["reason"])
        except RecurringError as refusal:
            raise Conflict(str(refusal)) from refusal
        body = {
            "invoice_number": due.invoice,
            "billing_number": due.billing_number,
            "execute_date": due.execute_date,
            "status": "cancelled",
        }
        return Response(CancelResultSerializer(body).data)

    def due(self, request, invoice_number: str) -> cancellation.Due:
        """The one row Cancel Execute Date finds for this invoice number, or 404."""
        merchant = request.user.merchant
        tx = (
            merchant_rows(request, Transaction.objects.select_related("billing"))
            .filter(invoice_number=invoice_number)
            .first()
        )
        if tx is not None:
            day, billing_number = tx.execute_date, tx.billing.billing_number if tx.billing_id else ""
        elif (match := EXECUTION.match(invoice_number)) is not None:
            try:
                day = date(int(match["day"][:4]), int(match["day"][4:6]), int(match["day"][6:]))
            except ValueError as exc:
                raise Http404("No transaction has this invoice number.") from exc
            billing_number = match["billing"]
        else:
            raise Http404("No transaction has this invoice number.")
        found = cancellation.find(merchant, day, billing_number, invoice_number)
        mine = [due for due in found if due.invoice == invoice_number] if isinstance(found, list) else []
        if not mine:
            raise Http404("No transaction or scheduled execution has this invoice number.")
        if mine[0].state not in (cancellation.SCHEDULED, cancellation.CANCELLED):
            raise Conflict(mine[0].state)
        return mine[0]
