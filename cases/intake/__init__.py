"""Report parsers: pure functions from raw bytes to ParsedEvents. No database access here.

Entry point: parse(raw: bytes, *, received_at: datetime | None = None) -> ParseResult
"""
