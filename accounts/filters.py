from __future__ import annotations

import django_filters

from .audit import action_choices
from .models import AuditEntry


class AuditEntryFilter(django_filters.FilterSet):
    """User Activity search (L2): by user, activity, data, and a date range."""

    user = django_filters.CharFilter(field_name="actor_username", lookup_expr="icontains", label="User")
    action = django_filters.ChoiceFilter(choices=action_choices, label="Activity")
    data = django_filters.CharFilter(
        method="filter_data", label="Data", help_text="Invoice number, customer ID, billing number..."
    )
    date = django_filters.DateFromToRangeFilter(
        field_name="created_at__date",
        label="Date",
        widget=django_filters.widgets.DateRangeWidget(attrs={"type": "date"}),
    )

    class Meta:
        model = AuditEntry
        fields = ["user", "action", "data", "date"]

    def filter_data(self, queryset, name, value):
        return queryset.filter(search_text__contains=value.strip().lower())
