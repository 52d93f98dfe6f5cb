"""The desk's three roles. A role is a Django group; permissions hang off the groups.

noc      triage the queue, read evidence, send notices, add notes, close cases
manager  everything noc can, plus approve or refuse suspensions and terminations, see the numbers
admin    everything, plus customers, contacts, allocations, imports and policy
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied

NOC = "noc"
MANAGER = "manager"
ADMIN = "admin"
ALL_ROLES = (NOC, MANAGER, ADMIN)

# What each role implies: a manager can do what NOC staff do, an admin what a manager does.
_IMPLIED = {NOC: {NOC}, MANAGER: {NOC, MANAGER}, ADMIN: {NOC, MANAGER, ADMIN}}


def user_roles(user) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_abusedesk_roles", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        roles = frozenset(ALL_ROLES)
    else:
        roles = set()
        for name in user.groups.values_list("name", flat=True):
            roles |= _IMPLIED.get(name, set())
        roles = frozenset(roles)
    user._abusedesk_roles = roles
    return roles


def has_role(user, role: str) -> bool:
    return role in user_roles(user)


def role_required(role: str):
    """View decorator: 403 for a signed-in user without the role.

    Anonymous users never reach the view: LoginRequiredMiddleware sends them to the login page.
    """

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
