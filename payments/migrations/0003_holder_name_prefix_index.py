"""All Report's Card Holder Name filter ("starts with", any case) on PostgreSQL: an expression index with
text_pattern_ops, which a Django Index cannot declare portably (SQLite has no operator classes)."""

from django.db import migrations


def add(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS tx_merchant_holder_prefix_idx "
            "ON payments_transaction (merchant_id, (UPPER(holder_name::text)) text_pattern_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS tx_merchant_holder_prefix_idx")


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_report_indexes")]
    operations = [migrations.RunPython(add, drop)]
