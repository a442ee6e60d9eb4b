"""The Content-Security-Policy (TESTING "Pages"): script-src 'self', no inline code. Every browser test
fails on a violation (tests/e2e/conftest.py); this one proves the policy is sent and a violation is seen."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.services import current_code
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_policy_refuses_inline_script_and_style_and_the_lane_sees_it(page, csp_violations):
    response = page.goto("/sign-in/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "'unsafe-inline'" not in policy
    page.expect_csp_violations = True  # this test makes them on purpose
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.inlineRan = true";
            document.body.append(script);
            const style = document.createElement("style");
            style.textContent = "body { color: red }";
            document.head.append(style);
        }"""
    )
    expect(page.locator("body")).to_be_visible()
    assert page.evaluate("() => window.inlineRan") is None
    page.wait_for_timeout(200)  # the violation events are dispatched asynchronously
    assert any("script-src" in text for text in csp_violations)
    assert any("style-src" in text for text in csp_violations)


def test_the_signed_in_pages_with_scripts_run_under_the_policy(page, alice, bob):
    """The dashboard's charts (Chart.js) and the step-up dialog pages load without a violation."""
    page.goto("/sign-in/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authenticator code").fill(current_code(alice.device))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    for canvas in page.locator("canvas[data-chart-url]").all():
        expect(canvas).to_have_attribute("data-chart-state", "drawn")
    for path in (
        "/recurring/",
        "/void/",
        "/void/cancel-execute-date/",
        "/batch/single-payment/",
        "/registration/link/",
        "/reports/all/",
        "/users/",
        "/activity/",
        "/account/",
        f"/users/{bob.user.pk}/unlock/",
    ):
        page.goto(path)
        expect(page.locator("h1").first).to_be_visible()
