"""Sensitive actions (A7): one confirmation form, checked on the server in the request that acts.

A view validates its own form first (amount, target...), then ``StepUpForm``; only when both are valid
does it act, passing the reason on to the audit log. The code is checked against the signed-in user's
own device, once (django-otp's ``last_t``), so another user's code, an old code or a replayed one fail.
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from billing_bo.lib.redirects import back_url

from . import audit
from .forms import authenticator_code_field
from .services import verify_code

STEP_UP_ERROR = "The authenticator code is not correct or was used already. Wait for the next code."


class StepUpForm(forms.Form):
    code = authenticator_code_field()
    reason = forms.CharField(
        label="Reason",
        min_length=3,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why this is needed (kept in User Activity)"}),
    )

    def __init__(self, *args, request: HttpRequest, action: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        self.action = action

    def clean(self):
        cleaned = super().clean()
        # Spend the code only when everything else is valid, so a typo in the reason does not burn it.
        if not self.errors:
            if verify_code(self.request.user, cleaned.get("code", "")) is None:
                audit.record("accounts.stepup.failed", request=self.request, data={"for": self.action})
                self.add_error("code", STEP_UP_ERROR)
        return cleaned

    def clean_reason(self) -> str:
        return self.cleaned_data["reason"].strip()


def step_up_response(
    request: HttpRequest,
    *,
    action: str,
    title: str,
    message: str,
    act: Callable[..., HttpResponse],
    action_form: forms.Form | None = None,
) -> HttpResponse:
    """The one flow of a sensitive action: GET shows the confirmation page, POST checks the action's own
    form (amount...) and then the code and reason, and only then calls ``act(reason, **cleaned_data)``."""
    form = StepUpForm(request.POST or None, request=request, action=action)
    if request.method == "POST":
        if action_form is not None and not action_form.is_valid():
            # Show the action's errors with an unbound code form: validating it would spend the code.
            form = StepUpForm(initial={"reason": request.POST.get("reason", "")}, request=request, action=action)
        elif form.is_valid():
            extra = action_form.cleaned_data if action_form is not None else {}
            return act(form.cleaned_data["reason"], **extra)
    context = {
        "form": form,
        "action_form": action_form,
        "title": title,
        "message": message,
        "back_url": back_url(request),
    }
    return render(request, "accounts/step_up.html", context, status=400 if request.method == "POST" else 200)
