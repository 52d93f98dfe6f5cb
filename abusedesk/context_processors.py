from django.http import HttpRequest

from abusedesk.roles import user_roles


def roles(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"roles": frozenset()}
    return {"roles": user_roles(user)}
