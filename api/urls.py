"""/api/: the schema, the docs and version 1. Tokens replace the desk's login, so every view here is
exempt from LoginRequiredMiddleware; api.permissions decides who may call what."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import views

app_name = "api"


class SchemaView(SpectacularAPIView):
    scopes: dict = {}  # public: the schema says how to call, not what is there


class DocsView(SpectacularSwaggerView):
    scopes: dict = {}


def open_(view_class, **kwargs):
    return login_not_required(view_class.as_view(**kwargs))


urlpatterns = [
    path("schema/", open_(SchemaView), name="schema"),
    path("docs/", open_(DocsView, url_name="api:schema"), name="docs"),
    path("v1/reports/", open_(views.ReportSubmitView), name="report_submit"),
    path("v1/messages/<int:pk>/", open_(views.MessageDetailView), name="message_detail"),
    path("v1/cases/", open_(views.CaseListView), name="case_list"),
    path("v1/cases/<int:pk>/", open_(views.CaseDetailView), name="case_detail"),
    path("v1/cases/<int:pk>/note/", open_(views.CaseNoteView), name="case_note"),
    path("v1/cases/<int:pk>/assign/", open_(views.CaseAssignView), name="case_assign"),
    path("v1/cases/<int:pk>/hold/", open_(views.CaseHoldView), name="case_hold"),
    path("v1/cases/<int:pk>/resolve/", open_(views.CaseResolveView), name="case_resolve"),
    path("v1/cases/<int:pk>/reject/", open_(views.CaseRejectView), name="case_reject"),
    path("v1/cases/<int:pk>/approve/", open_(views.CaseApproveView), name="case_approve"),
    path("v1/customers/", open_(views.CustomerListView), name="customer_list"),
    path("v1/customers/<str:account>/", open_(views.CustomerDetailView), name="customer_detail"),
    path("v1/customers/<str:account>/contacts/", open_(views.ContactCreateView), name="contact_create"),
    path("v1/customers/<str:account>/allocations/", open_(views.AllocationCreateView), name="allocation_create"),
    path("v1/contacts/<int:pk>/", open_(views.ContactDetailView), name="contact_detail"),
    path("v1/allocations/<int:pk>/", open_(views.AllocationDetailView), name="allocation_detail"),
    path("v1/resolve", open_(views.ResolveView), name="resolve"),
]
