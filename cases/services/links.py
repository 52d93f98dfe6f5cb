"""The signed link in every customer notice: a page that needs no login.

The token carries the case id and the case's link_version, signed with Django's signing (salted,
timestamped): it expires after CUSTOMER_LINK_MAX_AGE_DAYS, and bumping link_version
(replies.revoke_links) makes every link sent before unusable. Its own module, importing no other
service, so that notices (which put the link in) and replies (which read it back) share it
without an import circle.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

from cases.models import Case

LINK_SALT = "abusedesk.customer-link"
TOKEN_MAX_CHARS = 500


ANSWER_BY_MAIL = "Reply to our e-mail instead; our abuse team reads every reply."


class LinkError(Exception):
    """The link is not valid: tampered with, expired or revoked. The message is fit to show."""


# --- the signed link -------------------------------------------------------------------------------


def make_link_token(case: Case) -> str:
    return signing.dumps({"c": case.pk, "v": case.link_version}, salt=LINK_SALT, compress=True)


def customer_url(case: Case) -> str:
    """The absolute URL of the case's customer page, as put into notices."""
    return settings.SITE_URL + reverse("customer_case", args=[make_link_token(case)])


def read_link_token(token: str) -> Case:
    """The case a token opens. Raises LinkError."""
    if not isinstance(token, str) or len(token) > TOKEN_MAX_CHARS:
        raise LinkError("This link is not valid.")
    max_age = settings.CUSTOMER_LINK_MAX_AGE_DAYS * 86400
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkError(f"This link has expired. {ANSWER_BY_MAIL}") from None
    except signing.BadSignature:
        raise LinkError("This link is not valid.") from None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int) or not isinstance(data.get("v"), int):
        raise LinkError("This link is not valid.")
    case = Case.objects.select_related("customer").filter(pk=data["c"]).first()
    if case is None:
        raise LinkError("This link is not valid.")
    if case.link_version != data["v"]:
        raise LinkError(f"This link has been withdrawn. {ANSWER_BY_MAIL}")
    return case
