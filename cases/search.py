"""The queue's search box: what a person types, turned into a filter on cases.

    AD-123, #123            that case
    198.51.100.7            cases with a report from that address
    100.64.0.0/22           cases with a report from inside that network
    reporter:fbl@mail.example   cases with a report from that reporter (an address, or @domain)
    someone@example.net     a customer contact's e-mail, or a reporter's address
    "failed logins"         words in the evidence (full-text search on PostgreSQL)
    anything else           a customer's account or name, or words in the evidence

Each branch is one subquery on an index (named below), so a search over a million reports
costs what the matching rows cost, not a scan.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, F, Func, Q, QuerySet, Value

from cases.models import Case, Report
from customers.models import Customer

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# The configuration the GIN index report_evidence_fts_idx (migration 0007) was built with: a query
# only uses the index when its expression is the index's, word for word.
FTS_CONFIG = "english"
MAX_TERM = 200
# Ranges SQLite matches by text: at most this many prefixes or addresses in one OR.
SQLITE_MAX_ALTERNATIVES = 256

_CASE_REF = re.compile(r"^(?:AD-|#)(\d{1,18})$", re.IGNORECASE)


@dataclass(frozen=True)
class Search:
    """A parsed search: kind is case, ip, network, reporter, email, text or words ("" for none)."""

    kind: str
    term: str
    value: object = None

    @property
    def label(self) -> str:
        return {
            "case": "case reference",
            "ip": "reports from the address",
            "network": "reports from inside the network",
            "reporter": "reporter",
            "email": "contact or reporter e-mail",
            "text": "words in the evidence",
            "words": "account, name or words in the evidence",
        }.get(self.kind, "")


def parse(term: str) -> Search:
    term = (term or "").strip()[:MAX_TERM].strip()
    if not term:
        return Search("", "")
    if match := _CASE_REF.match(term):
        return Search("case", term, int(match.group(1)))
    lowered = term.lower()
    if lowered.startswith("reporter:"):
        return Search("reporter", term, term.split(":", 1)[1].strip())
    if lowered.startswith("text:"):
        return Search("text", term, term.split(":", 1)[1].strip())
    if len(term) > 1 and term[0] == term[-1] == '"':
        return Search("text", term, term[1:-1].strip())
    network = parse_network(term)
    if network is not None:
        if network.prefixlen == network.max_prefixlen:
            return Search("ip", term, network.network_address)
        return Search("network", term, network)
    if "@" in term and " " not in term:
        return Search("email", term, term)
    return Search("words", term, term)


def parse_network(text: str) -> IPNetwork | None:
    """An address (as a /32 or /128) or a CIDR network; IPv4-mapped IPv6 is read as IPv4."""
    if ":" not in text and "." not in text:
        return None  # "12345" would otherwise parse as an IPv4 integer
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if network.version == 6:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def filter_cases(cases: QuerySet[Case], search: Search) -> QuerySet[Case]:
    """The cases matching a parsed search (a no-op for an empty one)."""
    kind, value = search.kind, search.value
    if not kind:
        return cases
    if kind == "case":
        return cases.filter(pk=value)
    if kind in ("ip", "network"):
        network = value if kind == "network" else ipaddress.ip_network(value)
        return cases.filter(ids_q("id", _report_cases(network_q(network))))
    if kind == "reporter":
        return cases.filter(ids_q("id", _report_cases(reporter_q(value)))) if value else cases.none()
    if kind == "email":
        customers = _customers(Q(contacts__email__iexact=value))
        return cases.filter(_either(customers, _report_cases(reporter_q(value))))
    if kind == "text":
        return cases.filter(ids_q("id", _report_cases(evidence_q(value)))) if value else cases.none()
    customers = _customers(Q(account__iexact=value) | Q(name__icontains=value))
    return cases.filter(_either(customers, _report_cases(evidence_q(value))))


# Matches are read once, as a list of case ids, when there are at most this many: the queue then
# counts and sorts by primary key instead of re-running the report search for its count and its page.
MATERIALIZE_MAX = 20_000


def _ids_or_subquery(qs: QuerySet) -> list[int] | QuerySet:
    ids = list(qs[: MATERIALIZE_MAX + 1])
    if len(ids) > MATERIALIZE_MAX:
        return qs  # too many for a list: the database joins
    return [pk for pk in ids if pk is not None]


def _report_cases(q: Q | Func) -> list[int] | QuerySet:
    """The ids of the cases with a report matching q (one pass over report_ip_case_idx for a
    network, over report_evidence_fts_idx for words)."""
    return _ids_or_subquery(Report.objects.filter(q).order_by().values_list("case_id", flat=True).distinct())


def _customers(q: Q) -> list[int] | QuerySet:
    return _ids_or_subquery(Customer.objects.filter(q).order_by().values_list("pk", flat=True).distinct())


class AnyOf(Func):
    """column = ANY(%s): thousands of ids as ONE array parameter (IN (%s, %s, ...) would have
    Django prepare, and PostgreSQL parse and plan, every id)."""

    template = "%(expressions)s::bigint[])"
    arg_joiner = " = ANY("
    output_field = BooleanField()
    conditional = True

    def __init__(self, column: str, ids: list[int]) -> None:
        # An array literal as text ('{1,2,3}'): PostgreSQL parses one constant; a list adapted
        # as ARRAY[1, 2, 3] is thousands of constants to parse and fold (50 ms vs 10 ms at 8,192).
        super().__init__(F(column), Value("{" + ",".join(str(int(pk)) for pk in ids) + "}"))


def ids_q(column: str, ids: list[int] | QuerySet) -> Q:
    """column among ids (a list, or a subquery when there were too many to list)."""
    if isinstance(ids, list) and ids and connection.vendor == "postgresql":
        return Q(AnyOf(column, ids))
    return Q(**{f"{column}__in": ids})


def _either(customers: list[int] | QuerySet, cases: list[int] | QuerySet) -> Q:
    """Cases of these customers or with these ids; an empty side is left out, so the database is
    not asked to OR a join it does not need."""
    q = Q(pk__in=[])
    if not isinstance(customers, list) or customers:
        q |= ids_q("customer_id", customers)
    if not isinstance(cases, list) or cases:
        q |= ids_q("id", cases)
    return q


# --- reports by address -------------------------------------------------------------------------------


def network_q(network: IPNetwork) -> Q:
    """Reports whose address lies in network.

    PostgreSQL stores Report.ip as inet, which orders addresses numerically: the network is the
    range first..last, one scan of report_ip_time_idx. SQLite stores the address as text (IPv4
    dotted, IPv6 compressed), so a range is matched by dotted prefixes or listed addresses.
    """
    first, last = network.network_address, network.broadcast_address
    if network.prefixlen == network.max_prefixlen:
        return Q(ip=str(first))
    if connection.vendor == "postgresql":
        return Q(ip__gte=str(first), ip__lte=str(last))
    if network.num_addresses <= SQLITE_MAX_ALTERNATIVES:
        return Q(ip__in=[str(a) for a in network])
    if network.version == 4:
        return _ipv4_prefixes_q(network)
    return Q(pk__in=_ipv6_ids_in(network))


def _ipv4_prefixes_q(network: ipaddress.IPv4Network) -> Q:
    """An IPv4 network as dotted-text prefixes on whole octets: a /22 is four "a.b.c." prefixes."""
    if network.prefixlen == 0:
        return Q(ip__contains=".")
    boundary = next(b for b in (8, 16, 24) if network.prefixlen <= b and 2 ** (b - network.prefixlen) <= 256)
    q = Q()
    for subnet in network.subnets(new_prefix=boundary):
        octets = str(subnet.network_address).split(".")[: boundary // 8]
        q |= Q(ip__startswith=".".join(octets) + ".")
    return q


def _ipv6_ids_in(network: ipaddress.IPv6Network) -> list[int]:
    # SQLite only (the development default): compressed IPv6 text has no usable prefix, so the
    # IPv6 reports are read and tested here; production runs on PostgreSQL's inet range above.
    return [
        pk
        for pk, ip in Report.objects.filter(ip__contains=":").values_list("pk", "ip").iterator()
        if ipaddress.ip_address(ip) in network
    ]


# --- reports by reporter and by words ----------------------------------------------------------------


def reporter_q(value: str) -> Q:
    """An exact reporter address (report_reporter_upper_idx), or every reporter at "@domain"."""
    value = value.strip()
    if value.startswith("@"):
        return Q(reporter__iendswith=value)
    return Q(reporter__iexact=value)


class EvidenceMatches(Func):
    """to_tsvector(evidence) @@ plainto_tsquery(words): exactly the expression report_evidence_fts_idx
    indexes, so PostgreSQL answers from the GIN index. The column stays an expression (not text),
    so the alias Django gives the table inside a subquery is respected."""

    template = f"to_tsvector('{FTS_CONFIG}'::regconfig, %(expressions)s)"
    arg_joiner = f") @@ plainto_tsquery('{FTS_CONFIG}'::regconfig, "
    output_field = BooleanField()
    conditional = True

    def __init__(self, words: str) -> None:
        super().__init__(F("evidence"), Value(words))


def evidence_q(words: str) -> Q | Func:
    """Reports whose evidence has these words: full-text on PostgreSQL; on SQLite each word
    appears somewhere in the evidence (a scan, fine for a development database)."""
    if connection.vendor == "postgresql":
        return EvidenceMatches(words)
    q = Q()
    for word in words.split()[:8]:
        q &= Q(evidence__icontains=word)
    return q
