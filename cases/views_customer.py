"""The customer's page: opened from the signed link in a notice, with no login.

Everything here is reached only through a valid token (cases.services.replies); a bad,
expired or revoked token gets a plain page that says so, never the case.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from cases.services.replies import LinkError, read_link_token


@login_not_required
def customer_case(request: HttpRequest, token: str) -> HttpResponse:
    try:
        case = read_link_token(token)
    except LinkError as exc:
        return render(request, "customer/link_error.html", {"error": str(exc)}, status=403)
    return render(request, "customer/case.html", {"case": case, "token": token})
