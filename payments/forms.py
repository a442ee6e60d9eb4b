from __future__ import annotations

from django import forms

from billing_bo.lib.money import RupiahField, format_number


class TransactionSearchForm(forms.Form):
    """Void Transaction / Refund search (P4, P5): by Billing Number, Invoice Number or Approval Code."""

    billing_number = forms.CharField(label="Billing Number", max_length=64, required=False)
    invoice_number = forms.CharField(label="Invoice Number", max_length=64, required=False)
    approval_code = forms.CharField(label="Approval Code", max_length=12, required=False)

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(name, "").strip() for name in self.fields):
            raise forms.ValidationError("Enter a Billing Number, an Invoice Number or an Approval Code.")
        return cleaned


class RefundForm(forms.Form):
    amount = RupiahField(label="Refund amount (Rp)")

    def __init__(self, *args, transaction, **kwargs):
        super().__init__(*args, **kwargs)
        self.transaction = transaction
        self.fields["amount"].initial = format_number(transaction.refundable_amount)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        refusal = self.transaction.refund_refused_because(amount)
        if refusal:
            raise forms.ValidationError(refusal)
        return amount
