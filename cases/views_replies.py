"""Staff actions on customers' replies and links (the replies panel on the case page).

Thin, like cases/views.py: POST only, the noc role checked here (and again by the service),
the object through its access helper (404), one service call, a message, back to the case.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from abusedesk.roles import NOC, role_required
from cases.models import Case, CustomerReply
from cases.services import replies
from cases.services.common import TransitionError


class ReviewForm(forms.Form):
    note = forms.CharField(max_length=1000, required=False)


class RevokeLinksForm(forms.Form):
    note = forms.CharField(max_length=500, required=False)


def _get_reply(pk: int) -> CustomerReply:
    return get_object_or_404(CustomerReply.objects.select_related("case"), pk=pk)


def _get_case(pk: int) -> Case:
    return get_object_or_404(Case, pk=pk)


@require_POST
@role_required(NOC)
def reply_review(request: HttpRequest, pk: int) -> HttpResponse:
    reply = _get_reply(pk)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long.")
        return redirect(reply.case)
    try:
        replies.review_reply(reply, actor=request.user, note=form.cleaned_data["note"])
    except (TransitionError, PermissionDenied) as exc:
        messages.error(request, str(exc) or "You may not do that.")
    else:
        messages.success(request, "Reply marked as reviewed.")
    return redirect(reply.case)


@require_POST
@role_required(NOC)
def case_revoke_links(request: HttpRequest, pk: int) -> HttpResponse:
    case = _get_case(pk)
    form = RevokeLinksForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long.")
        return redirect(case)
    replies.revoke_links(case, actor=request.user, note=form.cleaned_data["note"])
    messages.success(request, "Customer links withdrawn: the links sent so far no longer open this case.")
    return redirect(case)
