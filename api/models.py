"""API tokens (hashed by djangorestframework-api-key) and the log of calls made with them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from rest_framework_api_key.models import AbstractAPIKey, BaseAPIKeyManager


class Scope(models.TextChoices):
    SUBMIT = "submit", "Submit reports"
    READ = "read", "Read cases, customers and messages"
    WRITE = "write", "Case actions (as the token's user)"
    ADMIN = "admin", "Customers, contacts and allocations (as the token's user)"


class ApiKeyManager(BaseAPIKeyManager):
    def get_usable_keys(self) -> models.QuerySet:
        # The token's user comes with the key: every authenticated call needs both.
        return super().get_usable_keys().select_related("user")


class ApiKey(AbstractAPIKey):
    """A token for one person or one integration. Only its hash is stored; the key is shown once.

    Scopes say what the token may call; actions on cases and customers also need the token's user
    to hold the role the desk asks for (the services check it), so a token never does more than
    its user could in the browser.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="Whose token this is. Empty for an integration (a feed or partner): it may submit and read.",
    )
    scopes = models.JSONField(default=list, help_text='Any of "submit", "read", "write", "admin".')
    rate = models.CharField(
        max_length=20,
        blank=True,
        help_text='Requests allowed, e.g. "600/min" or "20/s". Empty: the API_RATE setting.',
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyManager()

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])

    def touch(self) -> None:
        """Record use at most once a minute: an UPDATE on every call would double a submission's cost."""
        now = timezone.now()
        if self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class ApiCall(models.Model):
    """One request to /api/v1/, with the token that made it (none for a refused anonymous call)."""

    key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls")
    key_prefix = models.CharField(max_length=8, blank=True, help_text="Kept when the token is deleted.")
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    # The message a submission stored: a token with only the submit scope may follow its own.
    message = models.ForeignKey(
        "cases.InboundMessage", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # The token admin's "recent calls" and an admin's filter by token.
            models.Index(fields=["key", "at"], name="apicall_key_time_idx"),
            # A submit-only token reading a message it sent (api.views.MessageDetailView).
            models.Index(fields=["message", "key"], name="apicall_message_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
