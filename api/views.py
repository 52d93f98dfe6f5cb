"""The API's views: thin, as the desk's are. Each checks its scope (api.permissions), validates with a
serializer, and calls the same service the desk or the admin calls."""

from __future__ import annotations

import ipaddress
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from abusedesk.roles import ADMIN, NOC, has_role
from api import serializers as s
from api import services as api_services
from api.errors import error_body
from api.models import ApiCall, Scope
from cases.intake import api_events
from cases.models import (
    Approval,
    ApprovalStatus,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Channel,
    InboundMessage,
    Notice,
    Report,
    Rung,
)
from cases.services import intake, ladder, workflow
from cases.services.common import TransitionError
from customers import services as customer_services
from customers.models import Allocation, Contact, Customer
from customers.resolver import normalize_ip, resolution_json, resolve

# A case page shows this many of its newest reports; report_count says how many there are.
CASE_REPORTS_SHOWN = 100
RAW_TYPES = ("message/rfc822", "text/plain", "text/csv")

ERRORS = {
    400: OpenApiResponse(description="Invalid request; `error.fields` names the fields."),
    401: OpenApiResponse(description="No token, or an unknown one."),
    403: OpenApiResponse(description="The token lacks the scope, or its user the role."),
    404: OpenApiResponse(description="Not found."),
    409: OpenApiResponse(description="Not possible in the case's current state."),
    413: OpenApiResponse(description="The body is over the size limit."),
    415: OpenApiResponse(description="A content type the API does not take."),
    429: OpenApiResponse(description="Too many requests; see Retry-After."),
}


def errors(*codes: int) -> dict:
    return {code: ERRORS[code] for code in (401, 403, 429, *codes)}


def require_role(user, role: str, what: str) -> None:
    if not has_role(user, role):
        raise PermissionDenied(f"This token's user must have the {role} role to {what}.")


def valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --- submission --------------------------------------------------------------------------------


class ReportSubmitView(APIView):
    scopes = {"POST": Scope.SUBMIT}

    @extend_schema(
        operation_id="submit_report",
        summary="Submit a report",
        description="A raw message (`message/rfc822`), an XARF v4 JSON document, or one JSON event or a "
        "list of them. The body is stored and parsed on a worker, as mail is: 202 with the message's id. "
        "The same bytes sent twice are one message (`created: false`).",
        request={
            "application/json": PolymorphicProxySerializer(
                component_name="EventOrList",
                serializers=[s.EventSerializer, s.EventSerializer(many=True)],
                resource_type_field_name=None,
                many=False,
            ),
            "message/rfc822": OpenApiTypes.BINARY,
        },
        responses={202: s.SubmissionSerializer, **errors(400, 413, 415)},
    )
    def post(self, request):
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        try:
            body = request.body
        except RequestDataTooBig:
            body = None
        if body is None or len(body) > settings.API_MAX_BODY_BYTES:
            return Response(error_body(413, f"The limit is {settings.API_MAX_BODY_BYTES:,} bytes."), status=413)
        if not body.strip():
            raise exceptions.ValidationError({"body": ["The body is empty."]})
        if content_type in RAW_TYPES:
            raw = body
        elif content_type == "application/json":
            raw = self._json_message(body)
        else:
            raise exceptions.UnsupportedMediaType(
                content_type or "(none)",
                detail=f"Send application/json or message/rfc822, not {content_type or 'no content type'}.",
            )
        message, created = intake.receive(raw, Channel.API, actor=request.user)
        request._request.api_message_id = message.pk  # logged with the call: the token may follow it
        url = reverse("api:message_detail", args=[message.pk])
        data = {"id": message.pk, "status": message.status, "created": created, "url": url}
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @staticmethod
    def _json_message(body: bytes) -> bytes:
        try:
            doc = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"The body is not JSON: {exc}") from None
        items = doc if isinstance(doc, list) else [doc]
        if items and all(isinstance(i, dict) and str(i.get("xarf_version", "")).startswith("4") for i in items):
            return body  # XARF v4: stored as sent; the xarf parser reads it as it reads a mailed one
        if isinstance(doc, list):
            valid(s.EventSerializer, doc, many=True, allow_empty=False, max_length=api_events.MAX_EVENTS)
        elif isinstance(doc, dict):
            valid(s.EventSerializer, doc)
        else:
            raise exceptions.ValidationError({"body": ["Send an event object, a list of them, or an XARF v4 report."]})
        return api_events.wrap(body)


class MessageDetailView(generics.RetrieveAPIView):
    """Any message for a read token; for a submit-only token, the messages it submitted."""

    scopes = {"GET": (Scope.READ, Scope.SUBMIT)}
    serializer_class = s.MessageSerializer

    @extend_schema(
        summary="A stored message: its parse state, and the reports and cases it became",
        responses={200: s.MessageSerializer, **errors(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[InboundMessage]:
        reports = Report.objects.only(
            "id", "message_id", "ip", "port", "occurred_at", "category", "case_id", "duplicate_of_id"
        )
        messages = InboundMessage.objects.prefetch_related(Prefetch("reports", queryset=reports.order_by("id")))
        if not self.request.auth.has_scope(Scope.READ):
            messages = messages.filter(pk__in=ApiCall.objects.filter(key=self.request.auth).values("message_id"))
        return messages


# --- reads -------------------------------------------------------------------------------------


class CasePagination(CursorPagination):
    ordering = "-id"  # unique and never changes: a cursor stays valid while cases change
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def cases_from(term: str) -> QuerySet:
    """Ids of cases with a report from an address, or from anywhere in a network."""
    try:
        network = ipaddress.ip_network(term.strip(), strict=False)
    except ValueError:
        raise exceptions.ValidationError({"ip": ["Enter an IP address or a network (CIDR)."]}) from None
    if network.num_addresses == 1:
        reports = Report.objects.filter(ip=str(normalize_ip(str(network.network_address))))
    elif connection.vendor == "postgresql":
        # Report.ip is PostgreSQL's inet type, which orders addresses numerically within a family:
        # a network is a range, read from the (ip, occurred_at) index.
        reports = Report.objects.filter(ip__gte=str(network.network_address), ip__lte=str(network.broadcast_address))
    else:  # SQLite stores addresses as text: compare in Python over the distinct addresses
        ips = [ip for ip in Report.objects.values_list("ip", flat=True).distinct() if _within(ip, network)]
        reports = Report.objects.filter(ip__in=ips)
    return reports.filter(case__isnull=False).values("case_id")


def _within(ip: str, network) -> bool:
    try:
        return ipaddress.ip_address(ip) in network
    except ValueError:
        return False


CASE_FILTERS = [
    OpenApiParameter("status", str, many=True, enum=CaseStatus.values, explode=False),
    OpenApiParameter("rung", str, many=True, enum=s.RUNG_KEYS, explode=False),
    OpenApiParameter("customer", str, description="Account number."),
    OpenApiParameter("category", str, many=True, enum=Category.values, explode=False),
    OpenApiParameter("ip", str, description="An address, or a network in CIDR form."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Cases with a report at or after this time."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Cases with a report before this time."),
]


class CaseListView(generics.ListAPIView):
    scopes = {"GET": Scope.READ}
    serializer_class = s.CaseSerializer
    pagination_class = CasePagination

    @extend_schema(
        summary="Cases, newest first",
        parameters=CASE_FILTERS,
        responses={200: s.CaseSerializer(many=True), **errors(400)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Case]:
        params = {}
        for name, value in self.request.query_params.lists():
            params[name] = value if name in ("status", "rung", "category") else value[-1]
        for name in ("status", "rung", "category"):
            if name in params:
                params[name] = [v for item in params[name] for v in item.split(",") if v]
        f = valid(s.CaseFilterSerializer, params)
        cases = Case.objects.select_related("customer", "assignee")
        if f.get("status"):
            cases = cases.filter(status__in=f["status"])
        if f.get("rung"):
            cases = cases.filter(rung__in=[Rung[key.upper()] for key in f["rung"]])
        if f.get("category"):
            cases = cases.filter(category__in=f["category"])
        if f.get("customer"):
            cases = cases.filter(customer__account=f["customer"])
        if f.get("ip"):
            cases = cases.filter(pk__in=cases_from(f["ip"]))
        if f.get("since"):
            cases = cases.filter(last_report_at__gte=f["since"])
        if f.get("until"):
            cases = cases.filter(first_report_at__lt=f["until"])
        return cases


def case_for_api(pk: int) -> Case:
    case = get_object_or_404(
        Case.objects.select_related("customer", "assignee").prefetch_related(
            Prefetch("events", queryset=CaseEvent.objects.select_related("actor")),
            Prefetch("notices", queryset=Notice.objects.defer("body", "html_body").order_by("created_at", "id")),
        ),
        pk=pk,
    )
    case.api_reports = list(
        case.reports.select_related("customer").order_by("-occurred_at", "-id")[:CASE_REPORTS_SHOWN]
    )
    return case


class CaseDetailView(APIView):
    scopes = {"GET": Scope.READ}

    @extend_schema(
        summary="One case with its newest reports, its events and its notices",
        responses={200: s.CaseDetailSerializer, **errors(404)},
    )
    def get(self, request, pk: int):
        return Response(s.CaseDetailSerializer(case_for_api(pk)).data)


class CustomerPagination(CursorPagination):
    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def customers_with_details() -> QuerySet[Customer]:
    return Customer.objects.prefetch_related(
        Prefetch("contacts", queryset=Contact.objects.order_by("email")),
        Prefetch("allocations", queryset=Allocation.objects.order_by("-valid_from", "id")),
    )


class CustomerListView(APIView):
    scopes = {"GET": Scope.READ, "POST": Scope.ADMIN}

    @extend_schema(
        summary="Customers with their contacts and allocations",
        responses={200: s.CustomerSerializer(many=True), **errors(400)},
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
    )
    def get(self, request):
        paginator = CustomerPagination()
        page = paginator.paginate_queryset(customers_with_details(), request, view=self)
        return paginator.get_paginated_response(s.CustomerSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a customer (admin)",
        request=s.CustomerWriteSerializer,
        responses={201: s.CustomerSerializer, **errors(400)},
    )
    def post(self, request):
        require_role(request.user, ADMIN, "change customers")
        data = valid(s.CustomerWriteSerializer, request.data)
        if Customer.objects.filter(account=data["account"]).exists():
            raise exceptions.ValidationError({"account": ["A customer with this account number exists."]})
        customer = api_services.create_customer(actor=request.user, **data)
        return Response(s.CustomerSerializer(customers_with_details().get(pk=customer.pk)).data, status=201)


class CustomerDetailView(APIView):
    scopes = {"GET": Scope.READ, "PATCH": Scope.ADMIN}

    @extend_schema(summary="One customer", responses={200: s.CustomerSerializer, **errors(404)})
    def get(self, request, account: str):
        return Response(s.CustomerSerializer(get_object_or_404(customers_with_details(), account=account)).data)

    @extend_schema(
        summary="Change a customer (admin)",
        request=s.CustomerWriteSerializer,
        responses={200: s.CustomerSerializer, **errors(400, 404)},
    )
    def patch(self, request, account: str):
        require_role(request.user, ADMIN, "change customers")
        customer = get_object_or_404(Customer, account=account)
        data = valid(s.CustomerWriteSerializer, request.data, partial=True)
        if data.get("account", account) != account and Customer.objects.filter(account=data["account"]).exists():
            raise exceptions.ValidationError({"account": ["A customer with this account number exists."]})
        customer = api_services.update_customer(customer, actor=request.user, **data)
        return Response(s.CustomerSerializer(customers_with_details().get(pk=customer.pk)).data)


class ContactCreateView(APIView):
    scopes = {"POST": Scope.ADMIN}

    @extend_schema(
        summary="Add a contact (admin)",
        request=s.ContactWriteSerializer,
        responses={201: s.ContactSerializer, **errors(400, 404)},
    )
    def post(self, request, account: str):
        require_role(request.user, ADMIN, "change contacts")
        customer = get_object_or_404(Customer, account=account)
        data = valid(s.ContactWriteSerializer, request.data)
        if customer.contacts.filter(email__iexact=data["email"]).exists():
            raise exceptions.ValidationError({"email": ["This customer already has this contact."]})
        contact = api_services.create_contact(customer, actor=request.user, **data)
        return Response(s.ContactSerializer(contact).data, status=201)


class ContactDetailView(APIView):
    scopes = {"PATCH": Scope.ADMIN, "DELETE": Scope.ADMIN}

    @extend_schema(
        summary="Change a contact (admin)",
        request=s.ContactWriteSerializer,
        responses={200: s.ContactSerializer, **errors(400, 404)},
    )
    def patch(self, request, pk: int):
        require_role(request.user, ADMIN, "change contacts")
        contact = get_object_or_404(Contact, pk=pk)
        data = valid(s.ContactWriteSerializer, request.data, partial=True)
        if "email" in data and contact.customer.contacts.exclude(pk=pk).filter(email__iexact=data["email"]).exists():
            raise exceptions.ValidationError({"email": ["This customer already has this contact."]})
        return Response(s.ContactSerializer(api_services.update_contact(contact, actor=request.user, **data)).data)

    @extend_schema(summary="Remove a contact (admin)", responses={204: None, **errors(404)})
    def delete(self, request, pk: int):
        require_role(request.user, ADMIN, "change contacts")
        api_services.delete_contact(
            get_object_or_404(Contact.objects.select_related("customer"), pk=pk), actor=request.user
        )
        return Response(status=204)


class AllocationCreateView(APIView):
    scopes = {"POST": Scope.ADMIN}

    @extend_schema(
        summary="Allocate a network to a customer (admin)",
        request=s.AllocationWriteSerializer,
        responses={201: s.AllocationSerializer, **errors(400, 404)},
    )
    def post(self, request, account: str):
        require_role(request.user, ADMIN, "change allocations")
        customer = get_object_or_404(Customer, account=account)
        data = valid(s.AllocationWriteSerializer, request.data)
        data.setdefault("valid_from", timezone.now())
        allocation = customer_services.create_allocation(customer=customer, actor=request.user, **data)
        return Response(s.AllocationSerializer(allocation).data, status=201)


class AllocationDetailView(APIView):
    scopes = {"PATCH": Scope.ADMIN, "DELETE": Scope.ADMIN}

    @extend_schema(
        summary="Change an allocation (admin)",
        request=s.AllocationWriteSerializer,
        responses={200: s.AllocationSerializer, **errors(400, 404)},
    )
    def patch(self, request, pk: int):
        require_role(request.user, ADMIN, "change allocations")
        allocation = get_object_or_404(Allocation, pk=pk)
        data = valid(s.AllocationWriteSerializer, request.data, partial=True)
        allocation = customer_services.update_allocation(allocation, actor=request.user, **data)
        return Response(s.AllocationSerializer(allocation).data)

    @extend_schema(summary="Delete an allocation (admin)", responses={204: None, **errors(404)})
    def delete(self, request, pk: int):
        require_role(request.user, ADMIN, "change allocations")
        customer_services.delete_allocation(get_object_or_404(Allocation, pk=pk), actor=request.user)
        return Response(status=204)


class ResolveView(APIView):
    scopes = {"GET": Scope.READ}

    @extend_schema(
        summary="Who held an address at a moment (as `manage.py resolve_ip --json`)",
        parameters=[
            OpenApiParameter("ip", str, required=True),
            OpenApiParameter("at", OpenApiTypes.DATETIME, description="Default: now. No zone: UTC."),
            OpenApiParameter("port", int, description="Source port: names the subscriber behind a CGNAT address."),
        ],
        responses={200: s.ResolveAnswerSerializer, **errors(400)},
    )
    def get(self, request):
        query = valid(s.ResolveQuerySerializer, request.query_params.dict())
        addr = normalize_ip(query["ip"])
        at = query.get("at") or timezone.now()
        port = query.get("port")
        return Response(resolution_json(str(addr), at, resolve(addr, at, port), port))


# --- case actions ------------------------------------------------------------------------------


class CaseActionView(APIView):
    """POST one action on a case, as the token's user, through the desk's service; answers the case."""

    scopes = {"POST": Scope.WRITE}
    input_serializer: type = s.NoteSerializer
    what = ""

    def post(self, request, pk: int):
        require_role(request.user, NOC, self.what)
        case = get_object_or_404(Case, pk=pk)
        data = valid(self.input_serializer, request.data)
        self.perform(case, data, request.user)
        return Response(s.CaseDetailSerializer(case_for_api(pk)).data)

    def perform(self, case: Case, data: dict, user) -> None:
        raise NotImplementedError


def action_schema(summary: str, serializer) -> dict:
    return {
        "summary": summary,
        "request": serializer,
        "responses": {200: s.CaseDetailSerializer, **errors(400, 404, 409)},
    }


class CaseNoteView(CaseActionView):
    input_serializer = s.NoteSerializer
    what = "add notes"

    @extend_schema(**action_schema("Add a note", s.NoteSerializer))
    def post(self, request, pk: int):
        return super().post(request, pk)

    def perform(self, case, data, user):
        workflow.add_case_note(case, data["note"], actor=user)


class CaseAssignView(CaseActionView):
    input_serializer = s.AssignSerializer
    what = "assign cases"

    @extend_schema(**action_schema("Assign the case (or unassign with null)", s.AssignSerializer))
    def post(self, request, pk: int):
        return super().post(request, pk)

    def perform(self, case, data, user):
        assignee = None
        if data["assignee"]:
            assignee = get_user_model().objects.filter(username=data["assignee"], is_active=True).first()
            if assignee is None or not has_role(assignee, NOC):
                raise exceptions.ValidationError({"assignee": ["No active desk user has this username."]})
        workflow.assign_case(case, assignee, actor=user)


class CaseHoldView(CaseActionView):
    input_serializer = s.HoldSerializer
    what = "hold cases"

    @extend_schema(**action_schema("Hold escalation until a time", s.HoldSerializer))
    def post(self, request, pk: int):
        return super().post(request, pk)

    def perform(self, case, data, user):
        ladder.hold_case(case, until=data["until"], reason=data["reason"], actor=user)


class CaseResolveView(CaseActionView):
    input_serializer = s.CloseSerializer
    what = "close cases"
    new_status = CaseStatus.RESOLVED

    @extend_schema(**action_schema("Resolve the case", s.CloseSerializer))
    def post(self, request, pk: int):
        return super().post(request, pk)

    def perform(self, case, data, user):
        workflow.change_case_status(case, self.new_status, actor=user, note=data.get("note", ""))


class CaseRejectView(CaseResolveView):
    new_status = CaseStatus.REJECTED

    @extend_schema(**action_schema("Reject the case (a false report)", s.CloseSerializer))
    def post(self, request, pk: int):
        return super().post(request, pk)


class CaseApproveView(CaseActionView):
    input_serializer = s.ApproveSerializer
    what = "act on cases"

    @extend_schema(
        **action_schema("Approve the case's pending suspension or termination (manager)", s.ApproveSerializer)
    )
    def post(self, request, pk: int):
        return super().post(request, pk)

    def perform(self, case, data, user):
        approval = (
            Approval.objects.filter(case=case, status=ApprovalStatus.PENDING).order_by("-proposed_at", "-id").first()
        )
        if approval is None:
            raise TransitionError("This case has no proposal waiting for approval.")
        ladder.approve(approval, actor=user, reason=data["reason"], scheduled_for=data.get("scheduled_for"))
