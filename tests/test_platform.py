"""Health, production settings, security headers, error pages, operator commands."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, Merchant, User
from accounts.services import current_code
from tests.conftest import verified_client

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 60 + "production-secret-key-for-the-check",
    "ALLOWED_HOSTS": "billing.example.com",
    "DATABASE_URL": "postgres://billing:pw@db.example.com:5432/billing",
    "REDIS_URL": "redis://redis.example.com:6379/0",
    "CARD_FINGERPRINT_KEY": "fingerprint-key-from-a-vault",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def operator_client():
    from tests.conftest import make_persona

    operator = make_persona(None, "operator")
    operator.user.is_staff = True
    operator.user.save()
    return verified_client(operator)


def test_health_answers_without_sign_in_and_names_its_checks_to_operators_only(client, db):
    response = client.get(reverse("health"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    detailed = operator_client().get(reverse("health"))
    assert detailed.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_is_503_when_the_broker_is_unreachable_and_only_operators_see_which(client, db, monkeypatch, alice):
    from billing_bo import views

    monkeypatch.setattr(views, "_check_broker", lambda: False)
    for anonymous_or_merchant_user in (client, verified_client(alice)):
        response = anonymous_or_merchant_user.get(reverse("health"))
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable"}
    detailed = operator_client().get(reverse("health"))
    assert detailed.status_code == 503
    assert detailed.json() == {"status": "unavailable", "database": "ok", "broker": "failing"}


def test_check_deploy_reports_nothing_with_production_variables():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout


def test_production_refuses_to_start_without_its_required_variables():
    result = manage("check", env={"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS, DATABASE_URL, REDIS_URL, CARD_FINGERPRINT_KEY" in result.stderr


def test_responses_carry_the_security_headers(client, db):
    response = client.get(reverse("accounts:sign_in"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_unknown_pages_get_the_404_page(alice):
    response = verified_client(alice).get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_a_refused_or_missing_page_is_logged_as_one_line_without_a_traceback(alice, bob, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    assert verified_client(bob).get(reverse("accounts:users")).status_code == 403
    assert verified_client(alice).get(reverse("accounts:activity_detail", args=[999999])).status_code == 404
    logged = [record for record in caplog.records if record.name == "django.request"]
    assert [record.status_code for record in logged] == [403, 404]
    assert all(record.exc_info is None and record.exc_text is None for record in logged)
    assert "Traceback" not in caplog.text
    assert logged[0].getMessage() == "Forbidden (Permission denied): /users/"


def test_create_merchant_makes_the_merchant_and_emails_its_admin_a_set_up_link(
    db, mailoutbox, django_capture_on_commit_callbacks
):
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "create_merchant",
            "--name",
            "Gamma Telco",
            "--code",
            "gamma",
            "--admin-username",
            "gadmin",
            "--admin-email",
            "admin@gamma.example",
            stdout=out,
        )
    merchant = Merchant.objects.get(code="gamma")
    admin = User.objects.get(username="gadmin")
    assert admin.merchant == merchant and admin.is_merchant_admin
    assert not admin.has_usable_password()  # an operator never sets a password: the admin does, by link
    assert not TOTPDevice.objects.get(user=admin).confirmed
    assert merchant.time_zone == "Asia/Jakarta"
    assert AuditEntry.objects.filter(action="accounts.merchant.created", merchant=merchant).exists()
    [mail] = mailoutbox
    assert mail.to == ["admin@gamma.example"] and "/welcome/" in mail.body and "Gamma Telco" in mail.subject


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--code", "alpha"], "exists already"),
        (["--admin-username", "alice"], "is taken"),
        (["--time-zone", "Mars/Olympus"], "not a known time zone"),
        (["--code", "bad code!"], "slug"),
        (["--admin-email", "not-an-email"], "email"),
    ],
)
def test_create_merchant_refuses_bad_input_and_creates_nothing(alice, args, message):
    base = {"--name": "Gamma", "--code": "gamma", "--admin-username": "gadmin", "--admin-email": "a@g.example"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    merchants, users = Merchant.objects.count(), User.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command("create_merchant", *[x for kv in base.items() for x in kv], stdout=StringIO())
    assert (Merchant.objects.count(), User.objects.count()) == (merchants, users)


def test_seed_demo_is_idempotent_and_keeps_data(db):
    call_command("seed_demo", stdout=StringIO())
    keys = dict(TOTPDevice.objects.values_list("user__username", "key"))
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.filter(merchant__code="demo").count() == 2
    assert dict(TOTPDevice.objects.values_list("user__username", "key")) == keys
    assert User.objects.get(username="admin").check_password("demo-admin-pass")
    assert not User.objects.get(username="staff").has_menu("user_activity")


def test_the_demo_dashboard_has_two_months_of_varied_data(db):
    from payments.models import Transaction

    call_command("seed_demo", stdout=StringIO())
    merchant = Merchant.objects.get(code="demo")
    today = merchant.local_today()
    this_month = Transaction.objects.filter(
        merchant=merchant, execute_date__month=today.month, execute_date__year=today.year
    )
    before = Transaction.objects.filter(merchant=merchant, execute_date__lt=today.replace(day=1))
    assert this_month.filter(status="success").exists() and this_month.filter(status="failed").exists()
    assert before.filter(status="success").exists() and before.filter(status="failed").exists()
    assert before.order_by("execute_date").first().execute_date <= today.replace(day=1) - timedelta(days=28)


def test_totp_code_prints_the_devices_current_code(alice):
    out = StringIO()
    call_command("totp_code", "alice", stdout=out)
    assert out.getvalue().strip() == current_code(alice.device)
    with pytest.raises(CommandError):
        call_command("totp_code", "nobody", stdout=StringIO())


def test_production_cookies_are_secure_httponly_samesite_with_hsts():
    probe = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SECURE, s.CSRF_COOKIE_HTTPONLY, s.SECURE_HSTS_SECONDS > 0, "
        "s.X_FRAME_OPTIONS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.DEBUG)"
    )
    result = manage("shell", "--no-imports", "-c", probe, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "Lax", "True", "True", "True", "DENY", "True", "False"]


def test_a_web_process_does_not_load_pandas_or_arrow():
    """Only the workers validate and process batches: a web process (the URLs, every task module as
    sending a task loads them) stays without pandas, numpy and Arrow (~100 MB each process)."""
    found = _last_line_of_a_django_process(
        "from django.urls import get_resolver; get_resolver().url_patterns",
        "from billing_bo.celery import app; app.loader.import_default_modules()",
        "print(sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules))",
    )
    assert found == "[]"


def test_arrow_allocates_from_the_system_pool_in_a_django_process():
    """A process of the project (a worker validating batches) gives Arrow the C library's allocator, not
    mimalloc, whose fresh pages cost the first validation of a process ~0.1 s of system time (B2)."""
    found = _last_line_of_a_django_process("import pyarrow as pa; print(pa.default_memory_pool().backend_name)")
    assert found == "system"


def _last_line_of_a_django_process(*lines: str) -> str:
    """The last line a fresh Python process prints after django.setup() and then ``lines`` (without an
    ARROW_DEFAULT_MEMORY_POOL of the test run's environment)."""
    code = "\n".join(
        (
            "import os, sys; os.environ.pop('ARROW_DEFAULT_MEMORY_POOL', None)",
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'billing_bo.settings'",
            "import django; django.setup()",
            *lines,
        )
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return found.strip().splitlines()[-1]


def test_a_task_messages_argument_repr_is_cut_short_and_its_arguments_are_whole():
    from billing_bo.celery import app

    ids = list(range(1_000_000, 1_000_200))  # a charge_many chunk
    message = app.amqp.as_task_v2("task-id", "payments.charge_many", args=(ids,))
    argsrepr = message.headers["argsrepr"]
    assert len(argsrepr) < 200 < len(repr(ids)) and argsrepr.startswith("([1000000, 1000001, ")
    assert message.body[0] == (ids,)


def test_the_file_broker_keeps_every_folder_under_var(settings):
    """The embedded default's broker writes nothing into the working directory (kombu's control folder
    defaults to ./control): every folder it uses is under VAR_DIR."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    folders = [options[name] for name in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")]
    assert all(Path(folder).is_relative_to(settings.VAR_DIR) for folder in folders)


def test_the_embedded_default_keeps_var_private_to_its_user(tmp_path):
    """Issue #16.9: var/ is 0700 and what the embedded default writes there (database, simulated bank,
    e-mails with live set-up links, secrets) is 0600, whatever the umask of the shell that started it."""
    var = tmp_path / "var"
    old_install = tmp_path / "old-var"
    old_install.mkdir(mode=0o755)
    (old_install / "db.sqlite3").write_text("")
    code = "\n".join(
        (
            "import os; os.umask(0o022)",
            "os.environ['DJANGO_SETTINGS_MODULE'] = 'billing_bo.settings'",
            "import django; django.setup()",
            "from django.core.management import call_command; call_command('migrate', verbosity=0)",
            "from django.core.mail import send_mail; send_mail('link', 'a set-up link', None, ['a@example.com'])",
            "from payments.acquirer.simulated import SimulatedBank; SimulatedBank().find('no-such-key')",
        )
    )
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "SIMULATED_BANK_PATH"}
    for folder in (var, old_install):
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env={**clean, "VAR_DIR": str(folder)}, check=True, timeout=120
        )
    assert oct(old_install.stat().st_mode & 0o777) == "0o700"  # an install from before is closed too
    assert oct(var.stat().st_mode & 0o777) == "0o700"
    written = {path.relative_to(var).as_posix(): path.stat().st_mode & 0o777 for path in var.rglob("*")}
    assert {"db.sqlite3", "simulated-bank.sqlite3", "secret_key", "card_fingerprint_key"} <= written.keys()
    assert any(name.startswith("mail/") for name in written)
    opened = {name: oct(mode) for name, mode in written.items() if mode & 0o077}
    assert opened == {}


def test_pages_send_a_content_security_policy_without_inline_code(client, db):
    policy = client.get(reverse("accounts:sign_in"))["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_no_template_holds_inline_script_style_or_event_handlers():
    """What the policy would refuse, found before a browser does (e-mails are not pages: they keep styles)."""
    import re

    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=|javascript:", re.IGNORECASE)
    found = []
    for template in ROOT.glob("**/templates/**/*.html"):
        if ".venv" in template.parts or "emails" in template.parts:
            continue
        found += [f"{template.relative_to(ROOT)}: {m.group(0)}" for m in inline.finditer(template.read_text())]
    assert found == []
