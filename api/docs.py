"""The browsable docs at /api/v1/docs/: Swagger UI from drf-spectacular-sidecar (vendored, no CDN), in a
page with no inline script or style (the site's CSP is ``script-src 'self'; style-src 'self'``): the
initialising script is served by the same view (``?script``), the page's few styles from static/."""

from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerSplitView


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
