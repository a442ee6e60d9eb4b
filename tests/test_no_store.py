"""Issue #16.8: every page of a signed-in user carries customer data and is sent with no-store (one
middleware), walked over every URL pattern as the merchant admin."""

from __future__ import annotations

import pytest

from tests import test_permission_matrix as matrix
from tests.conftest import verified_client
from tests.test_permission_matrix import PATTERNS, pk_model, url_for

world = matrix.world  # the permission matrix's rows of Alpha, one per <pk> model


@pytest.mark.parametrize(("name", "route"), PATTERNS, ids=[name for name, _ in PATTERNS])
def test_every_signed_in_page_is_sent_with_no_store(world, alice, name, route):
    model = pk_model(route)
    path = url_for(route, world["rows"][model].pk if model else None)
    response = verified_client(alice).get(path)
    assert "no-store" in response.headers.get("Cache-Control", ""), (name, response.status_code)
