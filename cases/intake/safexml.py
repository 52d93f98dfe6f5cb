"""XML inside reports (ACNS notices, Safe Browsing lists), read with the standard library safely.

defusedxml is not a dependency, so the dangerous parts of XML are refused before expat sees them:
any DOCTYPE, ENTITY or other markup declaration (billion laughs, external entities) and any document
over MAX_XML_CHARS. The report formats read here never use declarations, so nothing real is lost.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import Message

from cases.intake import mime, tabular
from cases.intake.base import ParseError

MAX_XML_CHARS = 1024 * 1024
# A report carries one XML document, or two (the body's copy and the attachment's); more than this
# is not a notice but a flood.
MAX_DOCUMENTS = 20
_MAX_PART_BYTES = 8 * 1024 * 1024
_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.I)
# A clear-signed (PGP) body dash-escapes lines that begin with "-": "- - ---Start ACNS XML".
_DASH_ESCAPE = re.compile(r"^- ", re.M)
_PROLOG = re.compile(r"<\?xml\b|<!\s*DOCTYPE", re.I)


def parse(text: str) -> ET.Element:
    """The root element of one XML document; ParseError if it is too big, declares anything, or is broken."""
    if len(text) > MAX_XML_CHARS:
        raise ParseError(f"XML document over {MAX_XML_CHARS // 1024} KB refused")
    if _DECLARATION.search(text):
        raise ParseError("XML with a DOCTYPE or ENTITY declaration refused (entity expansion guard)")
    # The prolog's encoding was already applied when the part was decoded to text; expat would
    # refuse a str that still declares, say, UTF-16.
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))
    try:
        return ET.fromstring(text)
    except (ET.ParseError, ValueError) as exc:
        raise ParseError(f"unreadable XML: {exc}") from None


def local(tag: object) -> str:
    """An element's name without its namespace ("{http://www.acns.net/ACNS}Source" -> "Source")."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element: ET.Element | None, *path: str) -> ET.Element | None:
    """The first descendant along path by local names, whatever namespace the sender used."""
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if local(c.tag) == name), None)
    return element


def text_of(element: ET.Element | None, *path: str) -> str:
    found = child(element, *path)
    return (found.text or "").strip() if found is not None else ""


def part_texts(msg: Message) -> Iterator[tuple[str, str]]:
    """(file name, text) of every part that may hold XML: text parts and *xml attachments."""
    for filename, ctype, data, part in tabular.iter_leaf_parts(msg):
        if not (ctype.startswith("text/") or ctype.endswith("xml") or filename.lower().endswith(".xml")):
            continue
        if len(data) > _MAX_PART_BYTES:
            continue
        text = tabular.bytes_text(part, data)
        if ctype == "text/html":
            text = mime.html_to_text(text)
        yield filename, text


def documents(text: str, root: str) -> list[str]:
    """Each <root ...>...</root> document written in text (a mail body may wrap one in prose)."""
    found: list[str] = []
    opening = re.compile(rf"<(?:[A-Za-z_][\w.-]*:)?{root}[\s>/]")
    closing = re.compile(rf"</(?:[A-Za-z_][\w.-]*:)?{root}\s*>")
    at = 0
    while len(found) < MAX_DOCUMENTS:
        start = opening.search(text, at)
        if not start:
            break
        end = closing.search(text, start.end())
        if not end:
            break
        # A prolog or DOCTYPE right before the root belongs to the document: kept, so that parse()
        # refuses a declaration by name instead of failing later on an undefined entity.
        begin = start.start()
        prolog = _PROLOG.search(text, max(at, begin - 64 * 1024), begin)
        if prolog:
            begin = prolog.start()
        found.append(_DASH_ESCAPE.sub("", text[begin : end.end()]))
        at = end.end()
    return found
