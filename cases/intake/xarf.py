"""X-ARF (the MIME form: `X-ARF: yes`, a YAML report part) and XARF v4 JSON (body or attachment).

X-ARF 0.1/0.2 (x-arf.org): a human part, a text/plain part "report.txt" holding a flat YAML mapping
(Reported-From, Category, Report-Type, Report-ID, Date, Source, Source-Type, Port, ...), and an
optional evidence part. XARF v4 (xarf.org): one JSON document with xarf_version "4.x.y",
reporter{org,contact,domain}, source_identifier, source_port, category/type, timestamp, evidence[].

Validation of v4: against the published JSON Schemas (SCHEMA_DIR, kept in the project), or, should
they be missing from an installation, a structural check of the fields this parser needs.
Which one ran is written into the evidence, and a report that fails the schema but still has a
usable IP, time and type is kept with lower confidence rather than lost.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from cases.intake import mime, tabular
from cases.intake.base import EVIDENCE_MAX_CHARS, ParsedEvent, ParseError

# The schemas belong to the xarf-spec project (MIT): kept unchanged beside this module, with their
# licence and source (schemas/xarf-v4/SOURCE.md), so validation runs on every installation.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "xarf-v4"
_MASTER_SCHEMA_ID = "https://xarf.org/schemas/v4/xarf-v4-master.json"

MAX_JSON_CHARS = 10 * 1024 * 1024
MAX_YAML_CHARS = 256 * 1024

# (v4 category, v4 type) -> our category. Types not listed fall back to the category's default.
_V4_TYPES = {
    ("messaging", "spam"): "spam",
    ("messaging", "bulk_messaging"): "spam",
    ("connection", "login_attack"): "login_attack",
    ("connection", "port_scan"): "scanning",
    ("connection", "reconnaissance"): "scanning",
    ("connection", "vulnerability_scan"): "scanning",
    ("connection", "ddos"): "ddos",
    ("connection", "infected_host"): "botnet",
    ("content", "phishing"): "phishing",
    ("content", "malware"): "malware",
    ("content", "remote_compromise"): "malware",
    ("content", "exposed_data"): "vulnerable_service",
    ("infrastructure", "botnet"): "botnet",
    ("infrastructure", "compromised_server"): "malware",
}
_V4_CATEGORY_DEFAULTS = {"copyright": "copyright", "vulnerability": "vulnerable_service", "messaging": "spam"}
_V4_REQUIRED = ("xarf_version", "report_id", "timestamp", "reporter", "source_identifier", "category", "type")

_XARF_YAML_KEYS = re.compile(r"^(?:Reported-From|Report-Type|Source-Type)\s*:", re.I | re.M)


# --- detection ----------------------------------------------------------------------------------


def has_xarf_header(msg: EmailMessage) -> bool:
    # The spec says "X-ARF: YES"; blocklist.de sends "X-XARF: PLAIN" instead, which means the same.
    return mime.header(msg, "X-ARF").strip().lower() == "yes" or bool(mime.header(msg, "X-XARF").strip())


def _yaml_report_text(msg: EmailMessage) -> str | None:
    """Text of the X-ARF report part: report.txt, or any text part carrying the X-ARF keys."""
    candidates: list[tuple[int, str]] = []
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        if not ctype.startswith("text/") or len(data) > MAX_YAML_CHARS:
            continue
        text = tabular.bytes_text(part, data)
        hits = len(_XARF_YAML_KEYS.findall(text))
        if hits >= 2 and re.search(r"^Source\s*:", text, re.I | re.M):
            candidates.append((0 if filename.lower() == "report.txt" else 1, text))
    return min(candidates, key=lambda c: c[0])[1] if candidates else None


def _json_documents(msg: EmailMessage) -> list[tuple[str, Any]]:
    """(where, decoded JSON) for each body or attachment that is a JSON object or list."""
    found = []
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        if not (ctype.startswith("text/") or ctype.endswith("json") or filename.lower().endswith(".json")):
            continue
        if len(data) > MAX_JSON_CHARS:
            continue
        text = tabular.bytes_text(part, data).strip()
        if not text.startswith(("{", "[")):
            continue
        try:
            found.append((filename or ctype, json.loads(text)))
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            continue
    return found


def _is_v4(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("xarf_version", "")).startswith("4")


def _v4_reports(msg: EmailMessage) -> list[tuple[str, dict]]:
    reports = []
    for where, doc in _json_documents(msg):
        items = doc if isinstance(doc, list) else [doc]
        reports.extend((where, item) for item in items[:1000] if _is_v4(item))
    return reports


def detect(msg: EmailMessage, raw: bytes) -> bool:
    # The X-ARF header is not required: relayed reports lose it, and the report part's own keys
    # (Reported-From, Report-Type, Source-Type, Source) are specific enough.
    return _yaml_report_text(msg) is not None or bool(_v4_reports(msg))


# --- parsing ------------------------------------------------------------------------------------


def parse(msg: EmailMessage, raw: bytes, *, received_at: datetime | None = None) -> list[ParsedEvent]:
    reports = _v4_reports(msg)
    if reports:
        events = tabular.EventList()
        problems = []
        for where, report in reports:
            try:
                events.append(parse_v4(report, received_at=received_at))
            except ParseError as exc:
                problems.append(f"{where}: {exc}")
                events.skip("unusable XARF v4 report")
        if not events:
            raise ParseError("; ".join(problems))
        return events
    text = _yaml_report_text(msg)
    if text is None:
        raise ParseError("no X-ARF report part (YAML with Reported-From, Report-Type, Source) and no XARF v4 JSON")
    return [_parse_yaml(msg, text, received_at=received_at)]


def _fields(text: str) -> dict[str, str]:
    """The flat YAML mapping of an X-ARF report, every value kept as a string.

    BaseLoader, not safe_load: safe_load turns "Version: 0.2" into a float, dates into datetimes
    and an all-digit IPv6 such as 1:2:3:4:5:6:7:8 into a base-60 integer.
    """
    try:
        loaded = yaml.load(text, Loader=yaml.BaseLoader)  # noqa: S506 — BaseLoader builds no objects
    except yaml.YAMLError:
        loaded = None
    if not isinstance(loaded, dict):
        # Broken YAML (an unquoted ": " in a value) is still readable line by line.
        loaded = dict(mime.parse_fields(text))
    return {str(k).strip().lower(): v.strip() if isinstance(v, str) else "" for k, v in loaded.items()}


def _ip_from_source(source: str, source_type: str) -> str | None:
    ip = tabular.valid_ip(source)
    if ip or source_type.lower() not in ("uri", "url"):
        return ip
    try:
        host = urlsplit(source if "//" in source else f"//{source}").hostname or ""
    except ValueError:
        return None
    return tabular.valid_ip(host)


def _parse_yaml(msg: EmailMessage, text: str, *, received_at: datetime | None) -> ParsedEvent:
    fields = _fields(text)
    source = fields.get("source", "")
    source_type = fields.get("source-type", "")
    ip = _ip_from_source(source, source_type)
    if ip is None:
        for key in ("source-ip", "ip", "source-address"):
            ip = tabular.valid_ip(fields.get(key, ""))
            if ip:
                break
    if ip is None:
        what = f"{source_type} {source!r}" if source else "no Source field"
        raise ParseError(f"X-ARF report names {what[:200]}, not an IP address")

    confidence = 0.95
    when = tabular.parse_when(fields.get("date", ""))
    if when is None:
        # The spec makes Date mandatory; without it the mail's own Date is the best guess, a weaker one.
        when = tabular.parse_when(mime.header(msg, "Date"))
        confidence = 0.6
    if when is None:
        raise ParseError(f"X-ARF report has no readable Date ({fields.get('date', '')[:60]!r})")
    problem = tabular.check_when(when, received_at)
    if problem:
        raise ParseError(f"X-ARF report date {when.isoformat()} is not believable: {problem}")

    report_type = fields.get("report-type", "")
    category = tabular.classify(report_type) or tabular.classify(fields.get("service", ""))
    if category is None:
        category = "phishing" if fields.get("category", "").lower() == "fraud" else "other"
        confidence = min(confidence, 0.7)

    from_addr, org = tabular.sender_of(msg)
    reporter = fields.get("reported-from", "") or from_addr
    port = tabular.valid_port(fields.get("port") or fields.get("source-port") or fields.get("download-port") or "")
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category=category,
        format="xarf",
        port=port,
        reporter=reporter.strip().lower()[:254],
        reporter_org=org,
        external_id=fields.get("report-id", "")[:200],
        evidence=_yaml_evidence(msg, text),
        confidence=confidence,
    )


def _yaml_evidence(msg: EmailMessage, report_text: str) -> str:
    """The report part, then the start of the evidence attachment (the part after report.txt)."""
    pieces = [report_text.strip()]
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        if filename and filename.lower() != "report.txt" and ctype.startswith("text/"):
            pieces.append(f"--- {filename}\n{tabular.bytes_text(part, data)[:EVIDENCE_MAX_CHARS]}")
            break
    return "\n\n".join(pieces)


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator | None:
    """Validator for the v4 master schema, or None when the schema files are not on disk."""
    if not (SCHEMA_DIR / "xarf-v4-master.json").is_file():
        return None
    try:
        resources = []
        for path in sorted(SCHEMA_DIR.rglob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            resources.append((doc["$id"], Resource.from_contents(doc)))
        registry = Registry().with_resources(resources)
        master = registry.contents(_MASTER_SCHEMA_ID)
        validator_class = jsonschema.validators.validator_for(master)
        return validator_class(master, registry=registry)
    except (OSError, ValueError, KeyError, Unresolvable, jsonschema.SchemaError):
        return None  # a damaged schema copy must not stop intake; the structural check still runs


def _structural_problems(report: dict) -> list[str]:
    """The checks this parser cannot do without: required fields present and of the right shape."""
    problems = [f"missing {name}" for name in _V4_REQUIRED if report.get(name) in (None, "", {}, [])]
    reporter = report.get("reporter")
    if reporter is not None and not isinstance(reporter, dict):
        problems.append("reporter is not an object")
    for name in ("source_identifier", "category", "type", "timestamp"):
        if name in report and not isinstance(report[name], str):
            problems.append(f"{name} is not a string")
    return problems


def validate_v4(report: dict) -> tuple[str, list[str]]:
    """('schema' | 'structure', problems). Schema problems are listed by field path, at most five."""
    validator = _validator()
    if validator is None:
        return "structure", _structural_problems(report)
    try:
        errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    except (Unresolvable, RecursionError, ValueError) as exc:
        return "schema", [f"schema check failed: {exc.__class__.__name__}"]
    return "schema", [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message[:160]}" for e in errors[:5]]


def parse_v4(report: dict, *, received_at: datetime | None = None) -> ParsedEvent:
    """One XARF v4 report (already decoded JSON) -> ParsedEvent; ParseError if unusable."""
    method, problems = validate_v4(report)
    structural = _structural_problems(report)
    if structural:
        raise ParseError("XARF v4 report is incomplete: " + ", ".join(structural))

    source = report["source_identifier"].strip()
    ip = tabular.valid_ip(source)
    if ip is None:
        raise ParseError(f"XARF v4 source_identifier {source[:100]!r} is not an IP address")
    when = tabular.parse_when(report["timestamp"])
    if when is None:
        raise ParseError(f"XARF v4 timestamp {report['timestamp'][:60]!r} is unreadable")
    problem = tabular.check_when(when, received_at)
    if problem:
        raise ParseError(f"XARF v4 timestamp {when.isoformat()} is not believable: {problem}")

    xcat, xtype = report["category"].strip().lower(), report["type"].strip().lower()
    category = _V4_TYPES.get((xcat, xtype)) or _V4_CATEGORY_DEFAULTS.get(xcat, "other")

    stated = report.get("confidence")
    confidence = float(stated) if isinstance(stated, int | float) and 0 <= stated <= 1 else 1.0
    if problems:
        confidence *= 0.6  # usable but off-spec: a person should look before it counts fully
    elif method == "structure":
        confidence *= 0.9  # the schema was not available to confirm the rest of the report
    if category == "other":
        confidence = min(confidence, 0.7)

    reporter = report.get("reporter") or {}
    port = report.get("source_port")
    return ParsedEvent(
        ip=ip,
        occurred_at=when,
        category=category,
        format="xarf4",
        port=port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else None,
        reporter=str(reporter.get("contact", "")).strip().lower()[:254],
        reporter_org=str(reporter.get("org", "")).strip()[:200],
        external_id=str(report.get("report_id", ""))[:200],
        evidence=_v4_evidence(report, method, problems),
        confidence=round(confidence, 3),
    )


def _v4_evidence(report: dict, method: str, problems: list[str]) -> str:
    if method == "schema":
        check = f"validated against {SCHEMA_DIR}" + (f"; problems: {'; '.join(problems)}" if problems else ": valid")
    else:
        check = "schema files not available; structural check only"
    summary = {k: v for k, v in report.items() if k not in ("evidence", "_internal")}
    lines = [f"XARF v4 {check}", json.dumps(summary, indent=1, ensure_ascii=False, default=str)[:EVIDENCE_MAX_CHARS]]
    for item in report.get("evidence") or []:
        if not isinstance(item, dict):
            continue
        lines.append(f"--- evidence: {item.get('description', '')} ({item.get('content_type', '')})")
        content_type = str(item.get("content_type", ""))
        if content_type.startswith(("text/", "message/")) and isinstance(item.get("payload"), str):
            try:
                decoded = base64.b64decode(item["payload"][: EVIDENCE_MAX_CHARS * 2], validate=False)
            except (binascii.Error, ValueError):
                continue
            lines.append(mime.decode_bytes(decoded)[:2000])
    return "\n".join(lines)
