from __future__ import annotations

from django import forms
from django.contrib.auth.forms import SetPasswordForm
from django.db.models import Q

from billing_bo.lib import outbound

from .menus import GRANTABLE_CHOICES
from .models import Merchant, User, mobile_number_validator


def authenticator_code_field(label: str = "Authenticator code", required: bool = True) -> forms.CharField:
    """The 6-digit Google Authenticator code, as every form asks for it."""
    return forms.CharField(
        label=label,
        max_length=10,
        required=required,
        widget=forms.TextInput(
            attrs={
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9]{6}",
                "placeholder": "6 digits",
            }
        ),
    )


class SignInForm(forms.Form):
    username = forms.CharField(
        label="User name",
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}),
    )
    password = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = authenticator_code_field()


class MenuAccessField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(
            choices=GRANTABLE_CHOICES,
            label="Menu access",
            error_messages={"required": "Choose at least one menu."},
            **kwargs,
        )


class UserCreateForm(forms.Form):
    """Add New User (U2): user name, mobile number, email, menu access."""

    username = forms.RegexField(
        label="User name",
        max_length=150,
        regex=r"^[\w.@+-]+$",
        error_messages={"invalid": "Use letters, digits and . @ + - _ only."},
    )
    mobile_number = forms.CharField(label="Mobile number", max_length=16, validators=[mobile_number_validator])
    email = forms.EmailField(label="Email")
    menu_access = MenuAccessField()

    # User names and e-mails are unique across merchants. One taken by a user of the admin's own merchant is
    # named (the admin sees that user in the list); one of another merchant gets this answer, naming neither.
    NOT_AVAILABLE = "This user name or email cannot be used. Choose another."

    def __init__(self, *args, merchant: Merchant, **kwargs):
        super().__init__(*args, **kwargs)
        self.merchant = merchant

    def clean_username(self):
        username = self.cleaned_data["username"]
        if User.objects.filter(merchant=self.merchant, username__iexact=username).exists():
            raise forms.ValidationError("This user name is taken.")
        return username

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(merchant=self.merchant, email__iexact=email).exists():
            raise forms.ValidationError("A user with this email exists already.")
        return email

    def clean(self):
        cleaned = super().clean()
        taken = Q()
        if cleaned.get("username"):
            taken |= Q(username__iexact=cleaned["username"])
        if cleaned.get("email"):
            taken |= Q(email__iexact=cleaned["email"])
        if taken and User.objects.exclude(merchant=self.merchant).filter(taken).exists():
            raise forms.ValidationError(self.NOT_AVAILABLE)
        return cleaned


class UserEditForm(forms.Form):
    """Edit User (U3): phone and menu access."""

    mobile_number = forms.CharField(label="Mobile number", max_length=16, validators=[mobile_number_validator])
    menu_access = MenuAccessField()


class EnrollForm(SetPasswordForm):
    """A2: choose a password and, for a new authenticator, prove it with one code."""

    code = authenticator_code_field("Code from Google Authenticator", required=False)

    def __init__(self, user, *args, needs_code: bool, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.needs_code = needs_code
        self.device = None
        if not needs_code:
            del self.fields["code"]

    def clean(self):
        from .services import verify_code

        cleaned = super().clean()
        if self.needs_code and not self.errors:
            self.device = verify_code(self.user, cleaned.get("code", ""), confirmed=False)
            if self.device is None:
                self.add_error("code", "This code is not correct. Check the phone's time and enter the current code.")
        return cleaned


class AccountForm(forms.ModelForm):
    """Setting Account (A5): own name, phone and email."""

    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "mobile_number"]
        labels = {"mobile_number": "Mobile number"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A user with this email exists already.")
        return email


class CallbackSettingsForm(forms.ModelForm):
    """P8: where the merchant's server receives payment results and reminders (admin only)."""

    callback_url = forms.URLField(
        label="Callback URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="HTTPS address of your server; leave empty to send no callbacks.",
    )

    class Meta:
        model = Merchant
        fields = ["callback_url"]

    def clean_callback_url(self):
        url = self.cleaned_data["callback_url"].strip()
        if url:
            try:
                outbound.check_url(url)  # checked again at each delivery: DNS can change
            except outbound.RefusedAddress as exc:
                raise forms.ValidationError(str(exc)) from exc
        return url
