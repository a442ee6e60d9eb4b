"""Operator commands (README "Operator commands"): a platform operator who can sign in, and e-mailed links
that point at the address the web server listens on."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, User
from accounts.services import current_code
from tests.test_platform import manage

NEW_PASSWORD = "operator-strong-passphrase"
PRINT_LINK = (
    "from accounts.models import User; from accounts.services import enrollment_link; "
    "print(enrollment_link(User(pk=1, username='x')))"
)


def create_operator(*args: str) -> str:
    out = StringIO()
    call_command("create_operator", *args, stdout=out)
    return out.getvalue()


def test_create_operator_makes_a_platform_operator_who_enrolls_by_link_and_signs_in_to_the_admin(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        printed = create_operator("--username", "ops", "--email", "ops@platform.example")
    operator = User.objects.get(username="ops")
    assert operator.merchant is None and operator.is_staff and operator.is_superuser
    assert not operator.has_usable_password()  # chosen by the operator through the link
    assert "ops@platform.example" in printed
    assert AuditEntry.objects.filter(action="accounts.operator.created", target_id=str(operator.pk)).exists()
    [mail] = mailoutbox
    assert mail.to == ["ops@platform.example"] and "platform" in mail.subject
    path = re.search(r"https?://[^/\s]+(/welcome/\S+/)", mail.body).group(1)

    client = Client()
    assert client.get(path).status_code == 200
    device = TOTPDevice.objects.get(user=operator)
    enrolled = client.post(
        path, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD, "code": current_code(device)}
    )
    assert enrolled.status_code == 302
    device.refresh_from_db()
    signed_in = client.post(
        reverse("accounts:sign_in"),
        {"username": "ops", "password": NEW_PASSWORD, "code": current_code(device, at=device.last_t * 30 + 30)},
    )
    assert signed_in.status_code == 302 and signed_in.url == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--username", "alice", "--email", "new@platform.example"], "is taken"),
        (["--username", "ops", "--email", "alice@example.com"], "e-mail"),
        (["--username", "no spaces", "--email", "ops@platform.example"], "username"),
        (["--username", "ops", "--email", "not-an-email"], "email"),
    ],
)
def test_create_operator_refuses_bad_input_and_creates_nothing(alice, args, message):
    users, entries = User.objects.count(), AuditEntry.objects.count()
    with pytest.raises(CommandError, match=message):
        create_operator(*args)
    assert (User.objects.count(), AuditEntry.objects.count()) == (users, entries)


def link_with(**env: str) -> str:
    """The set-up link a command run with ``env`` would e-mail (printed by a fresh process)."""
    return manage("shell", "-c", PRINT_LINK, env=env).stdout.strip().splitlines()[-1]


def test_links_e_mailed_outside_a_request_point_at_the_port_the_web_server_listens_on():
    assert link_with(WEB_PORT="9123").startswith("http://127.0.0.1:9123/welcome/")
    # listening on every address: the link names this machine's
    assert link_with(WEB_HOST="0.0.0.0", WEB_PORT="8010").startswith("http://127.0.0.1:8010/welcome/")
    assert link_with(SITE_URL="https://billing.example.com", WEB_PORT="9123").startswith(
        "https://billing.example.com/welcome/"
    )
