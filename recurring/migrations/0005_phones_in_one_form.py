"""Billings' phones stored before billing_bo.lib.phones.normalise_phone in its form (see payments 0005)."""

from django.db import migrations

from payments.migrations._phones import normalise


def forwards(apps, schema_editor):
    billing = apps.get_model("recurring", "Billing")
    for field in ("phone", "holder_phone"):
        normalise(billing, field)


class Migration(migrations.Migration):
    dependencies = [("recurring", "0004_billing_number_upper_index"), ("payments", "0005_phones_in_one_form")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
