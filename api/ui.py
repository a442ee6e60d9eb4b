"""Setting Account's API keys (merchant admins): a new key and a revocation, each after the authenticator
code and a reason (accounts.stepup, A7). The key is shown once, on the page that made it."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.audit import Actor
from accounts.stepup import step_up_response
from accounts.tenancy import admin_required, get_merchant_row

from . import keys
from .models import ApiKey, Scope


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=80, help_text="What uses it, e.g. membership system.")
    scopes = forms.MultipleChoiceField(
        label="Scopes", choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=list(Scope.values)
    )

    def __init__(self, *args, merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if ApiKey.objects.filter(merchant_id=self.merchant.pk, name=name, revoked_at__isnull=True).exists():
            raise forms.ValidationError("A key with this name exists already: revoke it or choose another name.")
        return name


@never_cache
@require_http_methods(["GET", "POST"])
@admin_required
def key_new(request):
    form = ApiKeyForm(request.POST or None, merchant=request.user.merchant)

    def act(reason: str, name: str, scopes: list[str]):
        try:
            key, raw = keys.create_key(Actor.from_request(request), name, scopes, reason)
        except keys.KeyRefused as refusal:
            messages.error(request, str(refusal))
            return redirect("accounts:account")
        return render(request, "api/key_created.html", {"key": key, "raw": raw})

    return step_up_response(
        request,
        action="api.key.created",
        title="New API key",
        message="The key is shown once, after this. Your systems send it as Authorization: Api-Key <key>.",
        act=act,
        action_form=form,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@admin_required
def key_revoke(request, pk: int):
    key = get_merchant_row(request, ApiKey, pk=pk)

    def act(reason: str):
        if keys.revoke_key(Actor.from_request(request), key, reason):
            messages.success(request, f"The API key {key.name} is revoked: it is refused from now on.")
        return redirect("accounts:account")

    return step_up_response(
        request,
        action="api.key.revoked",
        title=f"Revoke the API key {key.name}",
        message="Requests with this key are refused at once.",
        act=act,
    )
