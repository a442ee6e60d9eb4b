from django.urls import path

from . import charts, views

app_name = "reports"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/charts/daily/", charts.daily_chart, name="chart_daily"),
    path("dashboard/charts/failed-messages/", charts.failed_message_chart, name="chart_failed_messages"),
    path("dashboard/charts/single-payment/", charts.single_payment_chart, name="chart_single_payment"),
    path("dashboard/charts/registrations/", charts.registration_chart, name="chart_registrations"),
    path("dashboard/charts/top-issuers/", charts.top_issuer_chart, name="chart_top_issuers"),
    path("reports/all/", views.all_report, name="all"),
    path("reports/all/export/", views.all_report_export, name="all_export"),
    path("reports/batches/", views.batch_list, name="batches"),
    path("reports/batches/<int:pk>/", views.batch_detail, name="batch_detail"),
]
