"""What every service module shares: the transition error, actors, storable text."""

from __future__ import annotations

from cases.models import ActorKind


class TransitionError(ValueError):
    """The change asked for is not allowed from the current state."""


def actor_kwargs(actor) -> dict:
    if getattr(actor, "is_authenticated", False):
        return {"actor_kind": ActorKind.USER, "actor": actor}
    if actor == ActorKind.CUSTOMER:
        return {"actor_kind": ActorKind.CUSTOMER, "actor": None}
    return {"actor_kind": ActorKind.SYSTEM, "actor": None}


_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])


def storable(text: str) -> str:
    """Text any database column accepts: undecodable bytes (surrogates) become U+FFFD, and NUL
    and other control characters (PostgreSQL refuses NUL in text) are dropped."""
    if not text:
        return text
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.translate(_CONTROL)


def actor_label(actor) -> str:
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()
    if actor == ActorKind.CUSTOMER:
        return "customer"
    return "system"
