"""Card numbers typed into free text (a reason, a holder name...) are masked before any row is saved.

Models list such fields in ``FREE_TEXT_FIELDS``. Identifiers (invoice numbers, tokens, fingerprints) are
not touched: a long digit run there is not a card number, and changing it would break references.
``bulk_create`` sends no signal: code that bulk-creates rows masks their free text itself.
"""

from __future__ import annotations

from django.db.models.signals import pre_save
from django.dispatch import receiver

from billing_bo.lib.cards import mask_pans_in_text


@receiver(pre_save, dispatch_uid="accounts.mask_card_numbers_in_free_text")
def mask_card_numbers_in_free_text(sender, instance, **kwargs) -> None:
    for name in getattr(sender, "FREE_TEXT_FIELDS", ()):
        value = getattr(instance, name)
        if value:
            setattr(instance, name, mask_pans_in_text(value))
