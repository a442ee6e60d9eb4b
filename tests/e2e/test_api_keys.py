"""The Merchant API in the browser: a merchant admin makes an API key in Setting Account (code and reason),
copies it once, the key works, and the admin revokes it in the step-up dialog; the API docs page renders
under the site's CSP (the page fixture fails on any violation)."""

from __future__ import annotations

import time

import pytest
import time_machine
from django.test import Client
from playwright.sync_api import expect

from accounts.services import current_code
from api.models import ApiKey
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_admin_creates_an_api_key_and_revokes_it(page, alice, merchant, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto("/account/")
    expect(page.get_by_text("No API key yet.")).to_be_visible()
    page.get_by_role("link", name="New API key").click()
    page.get_by_label("Key name").fill("membership system")
    page.get_by_label("Batches: upload, read, process").uncheck()
    alice.device.refresh_from_db()
    # The sign-in spent this step's code; the next step's is within the one-step tolerance.
    page.get_by_label("Authenticator code").fill(current_code(alice.device, at=time.time() + 30))
    page.get_by_label("Reason").fill("Our membership system registers customers")
    page.get_by_role("button", name="Confirm").click()

    raw = page.get_by_test_id("api-key").inner_text().strip()
    assert raw.startswith("bbo_")
    screenshot("api-key-created")
    response = Client().get("/api/v1/billings/", headers={"Authorization": f"Api-Key {raw}"})
    assert response.status_code == 200
    assert ApiKey.objects.get(merchant=merchant).scopes == ["billings", "refunds", "transactions"]

    page.get_by_role("link", name="Back to Setting Account").click()
    row = page.get_by_test_id("api-keys").get_by_role("row").filter(has_text="membership system")
    expect(row).to_contain_text("billings, transactions, refunds")
    expect(page.get_by_text(raw)).to_have_count(0)  # shown once
    with time_machine.travel(time.time() + 60, tick=True):  # the next unused code's step
        row.get_by_role("link", name="Revoke").click()
        dialog = page.locator("#step-up-dialog")
        expect(dialog).to_contain_text("Revoke the API key membership system")
        dialog.get_by_label("Authenticator code").fill(current_code(alice.device, at=time.time()))
        dialog.get_by_label("Reason").fill("The system was retired")
        screenshot("api-key-revoke-dialog")
        dialog.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("The API key membership system is revoked")).to_be_visible()
    expect(row).to_contain_text("revoked")
    response = Client().get("/api/v1/billings/", headers={"Authorization": f"Api-Key {raw}"})
    assert response.status_code == 401


def test_the_api_docs_render_with_vendored_assets_and_no_csp_violation(page, screenshot):
    page.goto("/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Merchant API")
    expect(page.get_by_text("/api/v1/billings/", exact=True).first).to_be_visible()
    screenshot("api-docs")
