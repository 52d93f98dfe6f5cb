"""Customers' answers: the signed link in every notice, and replies threaded onto a case.

The link needs no login. It carries the case id and the case's link_version, signed with
Django's signing (salted, timestamped): it expires after CUSTOMER_LINK_MAX_AGE_DAYS, and
bumping link_version (revoke_links) makes every link sent before unusable.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from cases.models import Case, CaseEvent
from cases.services.common import actor_kwargs

LINK_SALT = "abusedesk.customer-link"


class LinkError(Exception):
    """The link is not valid: tampered with, expired or revoked. The message is fit to show."""


def make_link_token(case: Case) -> str:
    return signing.dumps({"c": case.pk, "v": case.link_version}, salt=LINK_SALT, compress=True)


def customer_url(case: Case) -> str:
    """The absolute URL of the case's customer page, as put into notices."""
    return settings.SITE_URL + reverse("customer_case", args=[make_link_token(case)])


def read_link_token(token: str) -> Case:
    """The case a token opens. Raises LinkError."""
    max_age = settings.CUSTOMER_LINK_MAX_AGE_DAYS * 86400
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkError("This link has expired. Reply to the notice by e-mail to get a new one.") from None
    except signing.BadSignature:
        raise LinkError("This link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int) or not isinstance(data.get("v"), int):
        raise LinkError("This link is not valid.")
    case = Case.objects.select_related("customer").filter(pk=data["c"]).first()
    if case is None:
        raise LinkError("This link is not valid.")
    if case.link_version != data["v"]:
        raise LinkError("This link has been withdrawn. Reply to the notice by e-mail to get a new one.")
    return case


@transaction.atomic
def revoke_links(case: Case, *, actor, note: str = "") -> Case:
    """Make every customer link sent for this case unusable."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    old = case.link_version
    case.link_version = old + 1
    case.save(update_fields=["link_version", "updated_at"])
    CaseEvent.objects.create(
        case=case, kind="links_revoked", old=str(old), new=str(case.link_version), note=note, **actor_kwargs(actor)
    )
    return case
