"""Fill the rollups from the transactions that exist already (later changes keep them current)."""

from django.db import migrations


def rebuild(apps, schema_editor):
    from reports.rollups import rebuild as rebuild_rollups

    tables = {
        "transaction": apps.get_model("payments", "Transaction")._meta.db_table,
        "daily": apps.get_model("reports", "DailyRollup")._meta.db_table,
        "billing": apps.get_model("reports", "BillingPeriod")._meta.db_table,
        "total": apps.get_model("reports", "PeriodTotal")._meta.db_table,
    }
    rebuild_rollups(using=schema_editor.connection.alias, tables=tables)


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("payments", "0001_initial"),
    ]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
