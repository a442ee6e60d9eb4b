"""Issue #16.6: no view follows a ``next`` off this site. Walks every URL pattern of the project (the
permission matrix's walk and rows), as the merchant admin who holds every menu, with hostile ``next``
values in the query and the form, with and without a fresh step-up code, and checks every redirect."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import current_code
from tests import test_permission_matrix as matrix
from tests.conftest import PASSWORD, verified_client
from tests.test_permission_matrix import PATTERNS, pk_model, url_for

T0 = 1_795_000_000.0
HOSTILE = ["https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example", "\\\\evil.example"]
world = matrix.world  # the permission matrix's rows of Alpha, one per <pk> model


def stays_on_site(response) -> bool:
    location = response.headers.get("Location")
    return location is None or url_has_allowed_host_and_scheme(location, allowed_hosts={"testserver"})


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_no_view_redirects_to_a_next_off_this_site(world, alice, name, route):
    model = pk_model(route)
    path = url_for(route, world["rows"][model].pk if model else None)
    with time_machine.travel(T0, tick=False) as clock:
        for i, target in enumerate(HOSTILE[:2]):  # one absolute, one scheme-relative
            clock.move_to(T0 + 30 * i)  # a fresh code for each step-up
            alice.device = TOTPDevice.objects.get(user=alice.user)  # "new key" on alice replaces it
            form = {"next": target, "code": current_code(alice.device, at=T0 + 30 * i), "reason": "ticket 42"}
            client = verified_client(alice)
            for response in (
                client.get(path, {"next": target}),
                client.post(f"{path}?next={target}", {"reason": "ticket 42"}),
                client.post(path, {**form, "amount": "1.000"}),
            ):
                assert stays_on_site(response), (name, target, response.headers.get("Location"))


@pytest.mark.parametrize("target", HOSTILE)
def test_sign_in_does_not_follow_a_next_off_this_site(client, alice, target):
    with time_machine.travel(T0, tick=False):
        response = client.post(
            reverse("accounts:sign_in"),
            {"username": "alice", "password": PASSWORD, "code": current_code(alice.device, at=T0), "next": target},
        )
    assert response.status_code == 302 and response.url == "/"


def test_a_next_on_this_site_is_followed(world, alice):
    billing = world["rows"][pk_model("recurring/<int:pk>/status/")]
    response = verified_client(alice).post(
        reverse("recurring:status", args=[billing.pk]), {"next": "/recurring/?q=BILL-A-1"}
    )
    assert response.status_code == 302 and response.url == "/recurring/?q=BILL-A-1"
