"""Archive extraction limits: zip bombs, lying headers, many members, nesting, corrupt files."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from cases.intake import mime, shadowserver, tabular
from cases.intake.base import ParseError

CSV = b'"timestamp","ip","port"\n"2024-05-13 01:00:00","192.0.2.10",23\n'
MB = 1024 * 1024


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _zeros_zip(name: str, size: int) -> bytes:
    """A zip whose one member inflates to `size` zero bytes, written in chunks to keep memory low."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive, archive.open(name, "w", force_zip64=True) as out:
        chunk = b"0" * MB
        for _ in range(size // MB):
            out.write(chunk)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_by_bytes_actually_read():
    bomb = _zeros_zip("2024-05-14-scan_ntp-x-asn.csv", tabular.MAX_ARCHIVE_TOTAL_BYTES + MB)
    assert len(bomb) < 1 * MB  # small on the wire, 201 MB inside
    with pytest.raises(ParseError, match="zip bomb"):
        tabular.extract("bomb.zip", bomb)


def test_a_member_whose_header_understates_its_size_is_refused():
    data = _zip({"report.csv": CSV + b"x" * (2 * MB)})
    real = struct.pack("<I", len(CSV) + 2 * MB)
    forged = data.replace(real, struct.pack("<I", 100))  # local header and central directory both lie
    assert forged != data
    with pytest.raises(ParseError, match="not a readable archive"):
        tabular.extract("liar.zip", forged)


def test_too_many_members_are_refused_before_reading():
    data = _zip({f"part{i}.csv": CSV for i in range(tabular.MAX_ARCHIVE_MEMBERS + 1)})
    with pytest.raises(ParseError, match="members"):
        tabular.extract("many.zip", data)


def test_nested_archives_are_not_opened():
    inner = _zip({"2024-05-14-scan_telnet-x-asn.csv": CSV})
    outer = _zip({"inner.zip": inner, "disguised.csv": inner, "2024-05-14-scan_telnet-x-asn.csv": CSV})
    skipped = tabular.EventList()
    members = tabular.extract("outer.zip", outer, skipped)
    assert [name for name, _ in members] == ["2024-05-14-scan_telnet-x-asn.csv"]
    assert skipped.skip_reasons == {"nested archive not opened": 2}


def test_a_mail_carrying_only_a_nested_archive_is_a_parse_error():
    outer = _zip({"inner.zip": _zip({"2024-05-14-scan_telnet-x-asn.csv": CSV})})
    msg = EmailMessage()
    msg["From"] = "autoreports@shadowserver.org"
    msg.set_content("attached")
    msg.add_attachment(outer, maintype="application", subtype="zip", filename="2024-05-14-scan_telnet-x-asn.csv.zip")
    raw = msg.as_bytes()
    parsed = mime.parse_message(raw)
    assert shadowserver.detect(parsed, raw)
    with pytest.raises(ParseError, match="nested archive not opened"):
        shadowserver.parse(parsed, raw, received_at=datetime(2024, 6, 1, tzinfo=UTC))


@pytest.mark.parametrize("data", [_zip({"a.csv": CSV})[:40], b"PK\x03\x04" + b"\x00" * 100, b"\x1f\x8b\x08garbage"])
def test_corrupt_archives_raise_parse_error(data):
    with pytest.raises(ParseError, match="not a readable archive"):
        tabular.extract("broken.zip", data)


def test_gzip_is_read_and_capped_too():
    assert tabular.extract("r.csv.gz", gzip.compress(CSV)) == [("r.csv", CSV)]
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as out:
        for _ in range(tabular.MAX_ARCHIVE_TOTAL_BYTES // MB + 1):
            out.write(b"\0" * MB)
    with pytest.raises(ParseError, match="zip bomb"):
        tabular.extract("bomb.csv.gz", buf.getvalue())


def test_plain_files_pass_through():
    assert tabular.extract("r.csv", CSV) == [("r.csv", CSV)]
