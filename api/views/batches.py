"""Batches: Batch Transaction and Batch Registration uploads (batch.services), their check and Process."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.tenancy import get_merchant_row, merchant_rows
from batch import services
from batch.models import Batch, BatchRow
from billing_bo.uploads import file_too_large_message

from ..base import ApiView
from ..idempotency import idempotent
from ..models import Scope
from ..pagination import keyset_page
from ..problems import Conflict

BATCH_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The batch's id.")


class UploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (comma or semicolon, UTF-8) or XLSX, with the kind's columns.")
    kind = serializers.ChoiceField(choices=Batch.Kind.choices)


class BatchRowSerializer(serializers.Serializer):
    row_number = serializers.IntegerField(help_text="The line in the file (the header is line 1).")
    status = serializers.ChoiceField(choices=BatchRow.Status.choices)
    errors = serializers.DictField(child=serializers.CharField(), help_text="Column -> why the cell is invalid.")
    outcome = serializers.CharField(help_text="What processing made of the row.")


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Batch.Kind.choices)
    file_name = serializers.CharField()
    status = serializers.ChoiceField(choices=Batch.Status.choices)
    status_label = serializers.CharField(source="get_status_display")
    message = serializers.CharField(help_text="Why the file was refused or processing stopped.")
    uploaded_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)
    total_rows = serializers.IntegerField()
    invalid_rows = serializers.IntegerField()
    total_amount = serializers.IntegerField(help_text="Whole Rupiah.")
    rows_done = serializers.IntegerField(help_text="Progress of the running step.")
    percent = serializers.SerializerMethodField()

    def get_percent(self, batch: Batch) -> int:
        return min(100, 100 * batch.rows_done // batch.total_rows) if batch.total_rows else 0


class BatchDetailSerializer(BatchSerializer):
    problems = BatchRowSerializer(many=True, help_text="Invalid and failed rows, a page of them.")
    next = serializers.CharField(allow_null=True, help_text="The next page of problem rows; null on the last.")
    previous = serializers.CharField(allow_null=True)


class ProblemQuerySerializer(serializers.Serializer):
    after = serializers.CharField(required=False, max_length=500, help_text="The cursor of the next page.")
    before = serializers.CharField(required=False, max_length=500, help_text="The cursor of the previous page.")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)


def batch_of(request, pk: int) -> Batch:
    return get_merchant_row(request, Batch, pk=pk)


class BatchList(ApiView):
    required_scope = Scope.BATCHES
    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="batches_create",
        summary="Upload a file",
        description="Stored (encrypted) and checked by a worker: follow its status and problem rows on "
        "GET /api/v1/batches/{id}/, then Process it. The same file twice is refused.",
        request={"multipart/form-data": UploadSerializer},
        responses={201: BatchSerializer},
    )
    @idempotent
    def post(self, request):
        if getattr(request._request, "upload_over_limit", False):
            raise Conflict(file_too_large_message())
        given = UploadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            batch = services.upload(self.actor(), given.validated_data["file"], given.validated_data["kind"])
        except services.UploadRefused as refusal:
            raise Conflict(str(refusal)) from refusal
        url = request.build_absolute_uri(f"/api/v1/batches/{batch.pk}/")
        return Response(BatchSerializer(batch).data, status=status.HTTP_201_CREATED, headers={"Location": url})


class BatchDetail(ApiView):
    required_scope = Scope.BATCHES

    @extend_schema(
        operation_id="batches_retrieve",
        summary="A batch: status, progress, totals and its problem rows",
        parameters=[BATCH_ID, ProblemQuerySerializer],
        responses={200: BatchDetailSerializer},
    )
    def get(self, request, pk: int):
        batch = batch_of(request, pk)
        query = ProblemQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        problems = merchant_rows(request, BatchRow).filter(
            batch=batch, status__in=[BatchRow.Status.INVALID, BatchRow.Status.FAILED]
        )
        page, links = keyset_page(
            request, problems, ("row_number",), "row", query.validated_data["page_size"], descending=False
        )
        batch.problems, batch.next, batch.previous = page.rows, links["next"], links["previous"]
        return Response(BatchDetailSerializer(batch).data)


class BatchProcess(ApiView):
    required_scope = Scope.BATCHES

    @extend_schema(
        operation_id="batches_process",
        summary="Process a checked file",
        description="Only a file without invalid rows, once; a failed one resumes after its committed chunks.",
        parameters=[BATCH_ID],
        request=None,
        responses={202: BatchSerializer},
    )
    @idempotent
    def post(self, request, pk: int):
        batch = batch_of(request, pk)
        if refusal := services.process_refused_because(batch):
            raise Conflict(refusal)
        if not services.start_processing(self.actor(), batch):
            batch = batch_of(request, pk)
            raise Conflict(services.process_refused_because(batch) or "Processing started already.")
        return Response(BatchSerializer(batch_of(request, pk)).data, status=status.HTTP_202_ACCEPTED)
