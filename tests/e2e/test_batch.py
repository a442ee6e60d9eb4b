"""Batch upload in the browser: a file with errors shows its invalid cells, a clean one is processed,
the progress bar follows a running batch, and the history lists both."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from batch import pipeline, tasks
from batch.models import Batch
from recurring.models import Billing
from tests.batch.conftest import csv_bytes, rows_of
from tests.conftest import PASSWORD
from tests.dates import card_expiry
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_tasks(settings, tmp_path, monkeypatch):
    settings.BATCH_UPLOAD_DIR = tmp_path / "uploads"
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    monkeypatch.setattr(tasks.validate_batch, "delay", pipeline.validate)
    monkeypatch.setattr(tasks.process_batch, "delay", pipeline.process)


def test_upload_with_errors_then_a_clean_file_then_process(page, alice, tmp_path, screenshot):
    future = card_expiry(years=2)
    bad_rows = rows_of("registration", 4, expiry=future)
    bad_rows[1]["card_number"] = "4111 1111 1111 1112"
    bad_rows[2]["amount"] = "12,5"
    bad = tmp_path / "members-bad.csv"
    bad.write_bytes(csv_bytes(bad_rows, kind="registration"))
    good = tmp_path / "members.csv"
    good.write_bytes(csv_bytes(rows_of("registration", 4, expiry=future), kind="registration"))

    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="registration"]').click()
    page.get_by_role("link", name="Upload a registration file").click()
    page.locator("[data-dropzone-input]").set_input_files(str(bad))
    page.get_by_role("button", name="Upload and check").click()

    expect(page.get_by_test_id("invalid-data")).to_have_text("2")
    expect(page.get_by_test_id("total-data")).to_have_text("4")
    expect(page.locator("td.cell-error")).to_have_count(2)
    luhn = page.locator("td.cell-error").first
    expect(luhn).to_have_attribute("title", "This card number fails the check digit (Luhn): a typo?")
    expect(luhn).to_contain_text("411111******1112")
    expect(page.get_by_role("button", name="Process")).to_have_count(0)
    screenshot("batch-invalid")

    page.get_by_role("link", name="RE UPLOAD FILE").click()
    page.locator("[data-dropzone-input]").set_input_files(str(good))
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_test_id("invalid-data")).to_have_text("0")
    expect(page.get_by_test_id("total-amount")).to_have_text("Rp 1.000.000")
    page.get_by_role("button", name="Process").click()
    expect(page.get_by_text("Done", exact=True)).to_be_visible()
    assert Billing.objects.filter(source="batch").count() == 4

    page.get_by_role("link", name="Back to Batch Registration").click()
    history = page.locator("table").last
    expect(history).to_contain_text("members.csv")
    expect(history).to_contain_text("members-bad.csv")
    screenshot("batch-history")


def test_the_progress_bar_follows_a_running_batch_and_the_page_updates_when_it_ends(page, alice, merchant, screenshot):
    batch = Batch.objects.create(
        merchant=merchant,
        kind="single_payment",
        file_name="big.csv",
        content_hash="a" * 64,
        status="processing",
        total_rows=1000,
        rows_done=250,
        uploaded_by=alice.user,
    )
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto(f"/batch/{batch.pk}/")
    expect(page.locator("[data-progress-text]")).to_have_text("250 of 1.000 rows")
    assert page.locator("[data-progress-bar]").evaluate("el => el.style.width") == "25%"
    Batch.objects.filter(pk=batch.pk).update(rows_done=800)
    expect(page.locator("[data-progress-text]")).to_have_text("800 of 1.000 rows")
    screenshot("batch-progress")
    Batch.objects.filter(pk=batch.pk).update(status="done", rows_done=1000)
    expect(page.locator("[data-progress-status]")).to_have_text("Done")
    expect(page.locator("[data-progress-bar]")).to_have_count(0)


# Every width the progress bar is given, from the first script on (before the page's first poll).
RECORD_WIDTHS = """
window.__widths = [];
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.querySelector("[data-progress-bar]");
  if (!bar) return;
  window.__widths.push(bar.style.width);
  new MutationObserver(() => window.__widths.push(bar.style.width)).observe(bar, { attributes: true });
});
"""


def test_the_progress_bar_counts_up_through_checking_and_processing_and_never_jumps_back(
    page, alice, merchant, monkeypatch, screenshot
):
    monkeypatch.setattr(tasks.process_batch, "delay", lambda batch_id: None)  # queued; this test plays the worker
    batch = Batch.objects.create(
        merchant=merchant,
        kind="registration",
        file_name="members.csv",
        content_hash="d" * 64,
        status="validating",
        total_rows=20_000,
        rows_done=5_000,
        uploaded_by=alice.user,
    )
    page.add_init_script(RECORD_WIDTHS)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.goto(f"/batch/{batch.pk}/")
    expect(page.locator("[data-progress-status]")).to_have_text("Validating")
    expect(page.locator("[data-progress-text]")).to_have_text("5.000 of 20.000 rows")
    expect(page.get_by_test_id("total-data")).to_have_text("20.000")
    assert page.locator("[data-progress-bar]").evaluate("el => el.style.width") == "25%"

    Batch.objects.filter(pk=batch.pk).update(status="validated", rows_done=20_000)
    page.get_by_role("button", name="Process").click()  # the page reloaded when the check ended
    expect(page.locator("[data-progress-status]")).to_have_text("Processing")
    expect(page.locator("[data-progress-text]")).to_have_text("0 of 20.000 rows")
    page.wait_for_timeout(1500)  # a poll or two
    Batch.objects.filter(pk=batch.pk).update(rows_done=2_000, chunks_done=2)
    expect(page.locator("[data-progress-text]")).to_have_text("2.000 of 20.000 rows")
    expect(page.locator("[data-progress-bar]")).to_have_attribute("style", "width: 10%;")
    screenshot("batch-processing-progress")
    widths = [int(width.rstrip("%")) for width in page.evaluate("window.__widths")]
    assert widths == sorted(widths) and max(widths) == 10, widths  # from 0 up, never 100 first
