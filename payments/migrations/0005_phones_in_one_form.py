"""Card holders' phones stored before billing_bo.lib.phones.normalise_phone, in its form (+62812...)."""

from django.db import migrations

from ._phones import normalise


def forwards(apps, schema_editor):
    normalise(apps.get_model("payments", "Transaction"), "holder_phone")


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_billing_number_upper_index")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
