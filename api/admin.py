"""Tokens are made and revoked in the admin; the key is shown once, on creation, and only its hash is kept."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from api.auth import forget
from api.models import ApiCall, ApiKey, Scope
from api.throttling import parse_rate

# The library registers its own concrete model; this project's tokens are api.ApiKey.
admin.site.unregister(APIKey)


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["name", "user", "scopes", "rate", "expiry_date", "revoked"]

    def clean_rate(self) -> str:
        rate = self.cleaned_data["rate"].strip()
        if rate:
            try:
                parse_rate(rate)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return rate


@admin.register(ApiKey)
class ApiKeyAdmin(APIKeyModelAdmin):
    form = ApiKeyForm
    list_display = ("prefix", "name", "user", "scopes", "created", "expiry_date", "last_used_at", "revoked")
    list_filter = ("revoked", "created")
    search_fields = ("name", "prefix", "user__username")
    raw_id_fields = ("user",)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at")

    # A change (a revocation above all) holds at once in this process; the others' caches let the
    # old token go within API_TOKEN_CACHE_SECONDS (api.auth).
    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        forget(obj.prefix)

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        forget(obj.prefix)

    def delete_queryset(self, request, queryset) -> None:
        prefixes = list(queryset.values_list("prefix", flat=True))
        super().delete_queryset(request, queryset)
        forget(*prefixes)


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ("at", "key_prefix", "method", "path", "status", "duration_ms", "remote_addr")
    list_filter = ("status", "method")
    search_fields = ("key_prefix", "path")
    date_hierarchy = "at"
    list_select_related = ("key",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
