"""What every API view shares: the key's authentication, its scope, its throttle, JSON in and out, the
request id (``X-Request-Id``: the client's when it sends a sane one, else a new one; answered back, in
error bodies and in User Activity) and the ``Actor`` the services take."""

from __future__ import annotations

import re
import uuid

from rest_framework.views import APIView

from accounts.audit import Actor, client_ip

from .authentication import ApiKeyAuthentication, KeyPrincipal
from .permissions import HasScope
from .throttles import ApiKeyRateThrottle

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_of(request) -> str:
    given = request.headers.get("X-Request-Id", "")
    return given if REQUEST_ID.match(given) else uuid.uuid4().hex


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyRateThrottle]
    required_scope = ""

    def initialize_request(self, request, *args, **kwargs):
        request.request_id = request_id_of(request)
        drf_request = super().initialize_request(request, *args, **kwargs)
        drf_request.request_id = request.request_id
        return drf_request

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["X-Request-Id"] = getattr(request, "request_id", "")
        return response

    def actor(self) -> Actor:
        principal: KeyPrincipal = self.request.user
        return Actor.of_api_key(
            principal.merchant,
            principal.key.name,
            request_id=self.request.request_id,
            ip_address=client_ip(self.request),
            site_url=self.request.build_absolute_uri("/"),
        )

    @property
    def merchant(self):
        return self.request.user.merchant
