"""Reports in the browser: the dashboard draws every chart, All Report searches with counts, and an
export downloads the rows the screen shows."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in
from tests.reports.conftest import mixed_history

pytestmark = pytest.mark.django_db(transaction=True)

CHARTS = ("daily", "failed-messages", "single-payment", "registrations", "top-issuers")
# Share of a canvas's pixels that must be painted for a chart to count as drawn (not blank).
PAINTED = """canvas => {
  const {width, height} = canvas;
  const data = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return painted / (width * height);
}"""


@pytest.fixture
def bank_file(settings, tmp_path):
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")


@pytest.fixture
def history(merchant, other_merchant, alice, charlie, bank_file):
    mixed_history(merchant, other_merchant, alice, charlie, merchant.local_today())


def test_the_dashboard_draws_every_chart(page, alice, history, screenshot):
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    expect(page.get_by_test_id("total-success-amount")).to_contain_text("Rp ")
    for widget in CHARTS:
        canvas = page.locator(f'[data-widget="{widget}"] canvas')
        expect(canvas).to_have_attribute("data-chart-state", "drawn")
        assert canvas.evaluate(PAINTED) > 0.01, widget
        assert len(canvas.evaluate("c => c.toDataURL()")) > 3000, widget
    screenshot("dashboard-weekly")
    assert not errors

    page.get_by_role("tab", name="Monthly").click()
    expect(page.get_by_test_id("period-label")).not_to_contain_text("–")
    for widget in CHARTS:
        expect(page.locator(f'[data-widget="{widget}"] canvas')).to_have_attribute("data-chart-state", "drawn")
    screenshot("dashboard-monthly")
    page.get_by_role("link", name="Earlier period").click()
    page.get_by_role("link", name="Earlier period").click()
    page.get_by_role("link", name="Earlier period").click()
    expect(page.locator('[data-widget="daily"] .empty-state')).to_contain_text("No transactions in this period")
    expect(page.locator("canvas")).to_have_count(0)  # every widget says it has nothing, no zero charts
    screenshot("dashboard-empty")


def test_all_report_searches_and_the_export_matches_the_screen(page, alice, history, screenshot):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="all_report"]').click()
    page.get_by_label("Payment Status").select_option("success")
    page.get_by_role("button", name="Search").click()

    # approved in the last 31 days and still standing: 150.000 today and yesterday, 350.000 nine days ago
    expect(page.get_by_test_id("report-total-data")).to_have_text("3")
    expect(page.get_by_test_id("report-total-amount")).to_have_text("Rp 650.000")
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("criteria")).to_contain_text("Payment Status Success")
    expect(page.get_by_test_id("search-form")).to_be_hidden()
    screenshot("all-report-results")
    on_screen = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.invoice)")

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    assert header[1] == "Invoice Number"
    assert [row[1] for row in rows] == on_screen
    assert {row[12] for row in rows} == {"Success"}

    page.get_by_test_id("show-search-form").click()
    expect(page.get_by_test_id("search-form")).to_be_visible()
    page.get_by_label("Card No").fill("4111 1111 1111 1112")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("This is not a valid card number")).to_be_visible()
    expect(page.get_by_label("Card No")).to_have_value("")
    page.get_by_label("Card No").fill("4111 1111 1111 1111")
    page.get_by_label("Payment Status").select_option("")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("criteria")).to_contain_text("Card No 411111******1111")
    assert "4111111111111111" not in page.url
    # card 4111...: the two approvals, the voided, the refunded and the partly refunded charge
    expect(page.get_by_test_id("report-total-data")).to_have_text("5")
    screenshot("all-report-card")
