"""The dashboard's charts (D3-D8): django-chartjs JSON views over the daily rollups, one per chart, each
refused (403) without the menu its data belongs to (``reports.views`` says which)."""

from __future__ import annotations

from itertools import cycle

from chartjs.views.lines import BaseLineChartView
from django.views.decorators.http import require_GET

from accounts.tenancy import menu_required, merchant_rows
from recurring.models import Billing

from . import dashboard as figures
from .models import DailyRollup, PeriodTotal
from .periods import period_from_params
from .views import ALL_REPORT, REGISTRATIONS_MENU

# Chart colours (RGB), after the stylesheet's success, danger, muted and primary.
SUCCESS = (18, 128, 92)
FAILED = (192, 54, 44)
REVERSED = (152, 162, 179)
ACTIVE = ISSUER = (36, 83, 214)
INACTIVE = (208, 213, 221)


class RollupChart(BaseLineChartView):
    """A django-chartjs JSON view of one dashboard chart: ``{"type", "data": {labels, datasets}, "options"}``
    for Chart.js, for the period of the query string (``period``, ``back``)."""

    chart_type = "bar"
    palette: tuple = (ACTIVE,)
    options: dict = {}

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.merchant = request.user.merchant
        self.period = period_from_params(request.GET, self.merchant.local_today())
        self.rollups = merchant_rows(request, DailyRollup)

    def get_colors(self):
        return cycle([list(color) for color in self.palette])

    def get_dataset_options(self, index, color):
        rgb = "rgb({}, {}, {})".format(*color)
        return {"backgroundColor": rgb, "borderColor": rgb, "borderWidth": 0, "maxBarThickness": 36}

    def get_options(self) -> dict:
        base = {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": {"duration": 0},
            "legend": {"position": "bottom"},
        }
        return {**base, **self.options}

    def load(self) -> None:
        """Read the figures once, before labels and datasets are drawn from them."""

    def get_context_data(self, **kwargs):
        self.load()
        return {
            "type": self.chart_type,
            "data": {"labels": self.get_labels(), "datasets": self.get_datasets()},
            "options": self.get_options(),
        }


class DailyChart(RollupChart):
    """D5: success vs failed per day (and reversed: voided or refunded)."""

    palette = (SUCCESS, FAILED, REVERSED)
    options = {
        "scales": {
            "xAxes": [{"stacked": True}],
            "yAxes": [{"stacked": True, "ticks": {"beginAtZero": True, "precision": 0}}],
        }
    }

    def load(self):
        self.series = figures.daily(self.rollups, self.period)

    def get_labels(self):
        return [
            day.strftime("%a %d") if len(self.series["days"]) <= 7 else day.strftime("%d")
            for day in self.series["days"]
        ]

    def get_providers(self):
        return ["Success", "Failed", "Reversed"]

    def get_data(self):
        return [self.series["success"], self.series["failed"], self.series["reversed"]]


class _BarList(RollupChart):
    chart_type = "horizontalBar"
    options = {"legend": {"display": False}, "scales": {"xAxes": [{"ticks": {"beginAtZero": True, "precision": 0}}]}}
    provider = ""

    def items(self) -> list[tuple[str, int]]:
        raise NotImplementedError

    def load(self):
        self.found = self.items()

    def get_labels(self):
        return [label for label, _ in self.found]

    def get_providers(self):
        return [self.provider]

    def get_data(self):
        return [[count for _, count in self.found]]


class FailedMessageChart(_BarList):
    """D6: the bank's answers to failed charges."""

    palette = (FAILED,)
    provider = "Failed"

    def items(self):
        return figures.failed_messages(self.rollups, self.period)


class TopIssuerChart(_BarList):
    """D9: issuers by transactions."""

    palette = (ISSUER,)
    provider = "Transactions"

    def items(self):
        return figures.top_issuers(self.rollups, self.period)


class _Doughnut(RollupChart):
    chart_type = "doughnut"
    options = {"cutoutPercentage": 60}

    def slices(self) -> list[tuple[str, int, tuple]]:
        raise NotImplementedError

    def load(self):
        self.found = self.slices()

    def get_labels(self):
        return [label for label, _, _ in self.found]

    def get_datasets(self):
        colors = ["rgb({}, {}, {})".format(*color) for _, _, color in self.found]
        return [{"data": [count for _, count, _ in self.found], "backgroundColor": colors, "borderWidth": 1}]


class SinglePaymentChart(_Doughnut):
    """D7: single payments, success vs failed."""

    def slices(self):
        summary = figures.summary(self.rollups, merchant_rows(self.request, PeriodTotal), self.period)
        return [("Success", summary.single_success, SUCCESS), ("Failed", summary.single_failed, FAILED)]


class RegistrationChart(_Doughnut):
    """D8: registrations of the period, active vs inactive."""

    def slices(self):
        counts = figures.registrations(merchant_rows(self.request, Billing), self.period, self.merchant.tzinfo)
        return [("Active", counts["active"], ACTIVE), ("Inactive", counts["inactive"], INACTIVE)]


def _chart(view_class, menu: str):
    return require_GET(menu_required(menu)(view_class.as_view()))


daily_chart = _chart(DailyChart, ALL_REPORT)
failed_message_chart = _chart(FailedMessageChart, ALL_REPORT)
single_payment_chart = _chart(SinglePaymentChart, ALL_REPORT)
top_issuer_chart = _chart(TopIssuerChart, ALL_REPORT)
registration_chart = _chart(RegistrationChart, REGISTRATIONS_MENU)
