"""The rule of billing_bo.lib.phones.normalise_phone for phones stored before it, as two set-wise UPDATEs:
0812... and 62812... become +62812... (used by payments 0005 and recurring 0005; not a migration)."""

from django.db.models import F, Value
from django.db.models.functions import Concat, Substr

NATIONAL = r"^0[1-9][0-9]{0,12}$"  # 0, then at most 13 digits: +62 and them fit 16 characters
WITHOUT_PLUS = r"^62[1-9][0-9]{0,12}$"


def normalise(model, field: str) -> None:
    model.objects.filter(**{f"{field}__regex": NATIONAL}).update(**{field: Concat(Value("+62"), Substr(field, 2))})
    model.objects.filter(**{f"{field}__regex": WITHOUT_PLUS}).update(**{field: Concat(Value("+"), F(field))})
