from __future__ import annotations

from django.shortcuts import redirect, render

from .periods import KINDS, period_for


def dashboard(request):
    """The landing page (D1-D9). Its widgets read the daily rollup once transactions exist."""
    merchant = request.user.merchant
    if merchant is None:  # platform operators work in the admin
        return redirect("admin:index")
    kind = request.GET.get("period", "weekly")
    try:
        back = int(request.GET.get("back", "0"))
    except ValueError:
        back = 0
    period = period_for(kind, merchant.local_today(), back)
    return render(request, "reports/dashboard.html", {"period": period, "kinds": KINDS})
