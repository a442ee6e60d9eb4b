"""An XLSX as Excel saves it, through the page: dates typed into cells are date cells, amounts numbers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from accounts.services import current_code
from batch import pipeline, tasks
from batch.columns import names
from tests.conftest import PASSWORD
from tests.e2e.test_sign_in import fill_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def inline_tasks(settings, tmp_path, monkeypatch):
    settings.BATCH_UPLOAD_DIR = tmp_path / "uploads"
    settings.SIMULATED_BANK_PATH = str(tmp_path / "bank.sqlite3")
    monkeypatch.setattr(tasks.validate_batch, "delay", pipeline.validate)
    monkeypatch.setattr(tasks.process_batch, "delay", pipeline.process)


def test_the_xlsx_template_with_real_date_and_number_cells_uploads_and_validates(page, alice, merchant, tmp_path):
    fill_sign_in(page, "alice", PASSWORD, current_code(alice.device))
    page.locator('nav a[data-menu="batch_transaction"]').click()
    with page.expect_download() as download:
        page.get_by_role("link", name="XLSX").click()
    template = tmp_path / "template.xlsx"
    download.value.save_as(template)

    # What Excel keeps when a user types 2026-12-07 and 499000 into General cells: a date and a number.
    workbook = load_workbook(template)
    sheet = workbook.active
    column = {name: index for index, name in enumerate(names("single_payment"), 1)}
    today = merchant.local_today()
    dates = [today + timedelta(days=3), today + timedelta(days=10)]
    for row, day in zip((2, 3), dates, strict=True):
        cell = sheet.cell(row=row, column=column["execute_date"], value=datetime(day.year, day.month, day.day))
        cell.number_format = "yyyy-mm-dd"
        amount = sheet.cell(row=row, column=column["amount"], value=499000)
        amount.number_format = "General"
    typed = tmp_path / "payments.xlsx"
    workbook.save(typed)

    page.locator("[data-dropzone-input]").set_input_files(str(typed))
    page.get_by_role("button", name="Upload and check").click()

    expect(page.get_by_test_id("invalid-data")).to_have_text("0")
    expect(page.get_by_test_id("total-data")).to_have_text("2")
    expect(page.get_by_test_id("total-amount")).to_have_text("Rp 998.000")
    for day in dates:
        expect(page.get_by_role("cell", name=f"{day:%Y-%m-%d}", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Process")).to_be_visible()
