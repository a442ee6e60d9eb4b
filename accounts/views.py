from __future__ import annotations

from base64 import b32encode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import PasswordChangeForm
from django.db.models import Q
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tables2 import RequestConfig

from billing_bo.lib.qr import group_key, qr_svg
from billing_bo.lib.redirects import redirect_to_next

from . import audit, services
from .audit import ACTIONS, Actor
from .filters import AuditEntryFilter
from .forms import AccountForm, CallbackSettingsForm, EnrollForm, SignInForm, UserCreateForm, UserEditForm
from .models import AuditEntry, User
from .stepup import step_up_response
from .tables import AuditEntryTable, UserTable
from .tenancy import admin_required, get_merchant_row, menu_required, merchant_rows

MANAGE_USER = "manage_user"


# Sign-in (A1, A3), sign-out (A6), enrollment (A2)


@login_not_required
@sensitive_post_parameters("password", "code")
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request):
    if request.user.is_authenticated and request.user.is_verified():
        return redirect("reports:dashboard")
    form = SignInForm(request.POST or None)
    error = ""
    if request.method == "POST":
        if form.is_valid():
            result = services.sign_in(
                request, form.cleaned_data["username"], form.cleaned_data["password"], form.cleaned_data["code"]
            )
            if result.user is not None:
                fallback = "/" if result.user.merchant_id else "/admin/"
                return redirect_to_next(request, fallback)
            error = result.error
        else:
            error = services.SIGN_IN_ERROR
    return render(
        request,
        "accounts/sign_in.html",
        {"form": form, "error": error, "next": request.POST.get("next") or request.GET.get("next", "")},
    )


@require_POST
def sign_out(request):
    services.sign_out(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:sign_in")


def _authenticator_context(device: TOTPDevice) -> dict:
    return {"qr_svg": qr_svg(device.config_url), "key": group_key(b32encode(device.bin_key).decode())}


@login_not_required
@sensitive_post_parameters("new_password1", "new_password2", "code")
@never_cache
@require_http_methods(["GET", "POST"])
def enroll(request, uidb64: str, token: str):
    """The link of the invitation and reset e-mails: set a password, and enroll the authenticator if new."""
    user = services.user_from_link(uidb64, token)
    if user is None:
        return render(request, "accounts/enroll_invalid.html", status=400)
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    device = None
    if not confirmed:
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or services.create_device(
            user, confirmed=False
        )
    form = EnrollForm(user, request.POST or None, needs_code=not confirmed)
    if request.method == "POST" and form.is_valid():
        services.complete_enrollment(
            Actor.from_request(request, user=user), form.cleaned_data["new_password1"], form.device
        )
        if request.user.is_authenticated:
            logout(request)
        messages.success(request, "Your account is ready. Sign in with your new password and the current code.")
        return redirect("accounts:sign_in")
    context = {"form": form, "enroll_user": user, "merchant": user.merchant}
    if device is not None:
        context.update(_authenticator_context(device))
    return render(request, "accounts/enroll.html", context)


# Setting Account (A5)


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@require_http_methods(["GET", "POST"])
def account(request):
    user = request.user
    which = request.POST.get("form")
    account_form = AccountForm(request.POST if which == "account" else None, instance=user)
    callback_form = None
    if user.is_merchant_admin:
        merchant = user.merchant
        callback_form = CallbackSettingsForm(request.POST if which == "callback" else None, instance=merchant)
        if which == "callback" and callback_form.is_valid():
            services.change_callback_url(Actor.from_request(request), callback_form.cleaned_data["callback_url"])
            messages.success(request, "The callback URL is saved.")
            return redirect("accounts:account")
    password_form = PasswordChangeForm(user, request.POST if which == "password" else None)
    password_form.fields["old_password"].widget.attrs.pop("autofocus", None)
    if which == "account" and account_form.is_valid():
        changed = {
            field: {"before": account_form.initial.get(field), "after": account_form.cleaned_data[field]}
            for field in account_form.changed_data
        }
        account_form.save()
        audit.record("accounts.account.changed", request=request, target=user, data=changed)
        messages.success(request, "Your account details are saved.")
        return redirect("accounts:account")
    if which == "password" and password_form.is_valid():
        services.change_own_password(request, password_form.cleaned_data["new_password1"])
        messages.success(request, "Your password is changed. Your other sessions were signed out.")
        return redirect("accounts:account")
    return render(
        request,
        "accounts/account.html",
        {"account_form": account_form, "password_form": password_form, "callback_form": callback_form},
    )


@never_cache
@require_http_methods(["GET", "POST"])
@admin_required
def callback_secret(request):
    """P8: a new signing secret, shown once after step-up; the old one stops signing at once."""

    def act(reason: str):
        secret = services.reissue_callback_secret(Actor.from_request(request), reason)
        return render(request, "accounts/callback_secret.html", {"secret": secret})

    return step_up_response(
        request,
        action="accounts.merchant.callback_secret_reissued",
        title="New callback signing secret",
        message="Callbacks are signed with the new secret from now on: update your server with it.",
        act=act,
    )


# Manage User (U1-U6)


@require_GET
@menu_required(MANAGE_USER)
def user_list(request):
    users = merchant_rows(request, User)
    query = request.GET.get("q", "").strip()
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    table = UserTable(users, empty_text="Nothing found: no user matches this search." if query else "")
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "accounts/users.html", {"table": table, "query": query})


@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_add(request):
    """U2. A valid form comes back with a pop-up asking to confirm it (only what the server validated is
    asked about); the pop-up's Confirm posts it again with ``confirmed``, which creates the user."""
    form = UserCreateForm(request.POST or None, merchant=request.user.merchant)
    confirm = ""
    if request.method == "POST" and form.is_valid():
        if request.POST.get("confirmed") == "1":
            user = services.create_user(Actor.from_request(request), **form.cleaned_data)
            messages.success(
                request, f"User {user.username} was created. The sign-in instructions were sent to {user.email}."
            )
            return redirect("accounts:users")
        data = form.cleaned_data
        confirm = f"Create user {data['username']} and e-mail the sign-in instructions to {data['email']}?"
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "title": "Add New User", "submit": "Create User", "confirm": confirm},
    )


@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_edit(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)
    initial = {"mobile_number": user.mobile_number, "menu_access": user.menu_access}
    form = UserEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        services.update_user(Actor.from_request(request), user, **form.cleaned_data)
        messages.success(request, f"User {user.username} was saved.")
        return redirect("accounts:users")
    return render(
        request,
        "accounts/user_form.html",
        {"form": form, "title": f"Edit User {user.username}", "submit": "Save", "edited": user},
    )


@require_POST
@menu_required(MANAGE_USER)
def user_lock(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)
    if user == request.user:
        messages.error(request, "You cannot lock your own user.")
    elif user.locked:
        messages.info(request, f"User {user.username} is locked already.")
    else:
        ended = services.lock_user(Actor.from_request(request), user)
        messages.success(request, f"User {user.username} is locked; {ended} open session(s) ended.")
    return redirect("accounts:users")


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_unlock(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)

    def act(reason: str):
        services.unlock_user(Actor.from_request(request), user, reason)
        messages.success(request, f"User {user.username} is unlocked.")
        return redirect("accounts:users")

    return step_up_response(
        request,
        action="accounts.user.unlocked",
        title=f"Unlock {user.username}",
        message="The user can sign in again.",
        act=act,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_reset_password(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)

    def act(reason: str):
        services.reset_password(Actor.from_request(request), user, reason)
        messages.success(request, f"The password of {user.username} was reset; a new link was sent to {user.email}.")
        return redirect("accounts:users")

    return step_up_response(
        request,
        action="accounts.user.password_reset",
        title=f"Reset the password of {user.username}",
        message="The current password stops working, open sessions end, and the user gets an e-mail with a new link.",
        act=act,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_secret_key(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)

    def act(reason: str):
        device = services.reveal_key(Actor.from_request(request), user, reason)
        if device is None:
            messages.error(request, f"{user.username} has no authenticator key yet.")
            return redirect("accounts:users")
        return render(
            request, "accounts/secret_key.html", {"shown_user": user, "new": False, **_authenticator_context(device)}
        )

    return step_up_response(
        request,
        action="accounts.user.key_revealed",
        title=f"Show the secret key of {user.username}",
        message="The key lets anyone generate this user's codes. Showing it is recorded in User Activity.",
        act=act,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@menu_required(MANAGE_USER)
def user_new_key(request, pk: int):
    user = get_merchant_row(request, User, pk=pk)

    def act(reason: str):
        device = services.reissue_key(
            Actor.from_request(request), user, reason, own_session=request.session.session_key
        )
        return render(
            request, "accounts/secret_key.html", {"shown_user": user, "new": True, **_authenticator_context(device)}
        )

    return step_up_response(
        request,
        action="accounts.user.key_reissued",
        title=f"Issue a new secret key for {user.username}",
        message="The old key stops working at once: the user must scan the new key before the next sign-in.",
        act=act,
    )


# User Activity (L1-L3)


@require_GET
@menu_required("user_activity")
def activity_list(request):
    entries = merchant_rows(request, AuditEntry)
    filterset = AuditEntryFilter(request.GET or None, queryset=entries)
    empty_text = "No activity yet."
    if not filterset.is_bound:
        rows = entries
    elif filterset.is_valid():
        rows, empty_text = filterset.qs, "Nothing found: no activity matches this search."
    else:  # an invalid search shows its errors and no rows
        rows, empty_text = entries.none(), ""
    table = AuditEntryTable(rows, empty_text=empty_text)
    RequestConfig(request, paginate={"per_page": 25}).configure(table)
    return render(request, "accounts/activity_list.html", {"filter": filterset, "table": table})


@require_GET
@menu_required("user_activity")
def activity_detail(request, pk: int):
    entry = get_merchant_row(request, AuditEntry, pk=pk)
    return render(
        request,
        "accounts/activity_detail.html",
        {"entry": entry, "action_label": ACTIONS.get(entry.action, entry.action)},
    )
