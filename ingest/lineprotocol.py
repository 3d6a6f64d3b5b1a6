"""InfluxDB line protocol, one line at a time: `measurement[,tag=v...] field=v[,...] [timestamp]`.

Escaping per the spec: in the measurement `\\,` and `\\ `; in tag keys, tag values and field keys also
`\\=`; string field values are double-quoted with `\\"` and `\\\\` inside (spaces, commas and `=` need no
escape there). Field values: 1.5 float, 1i int, 1u uint, t/true/f/false bool, "..." string. Errors name
the 1-based column so a device vendor can find the byte.

Most lines have no escapes or strings; those take a str.split fast path (~1.5 us/line) and only odd
lines go through the character scanner.
"""

from __future__ import annotations


class LineProtocolError(ValueError):
    """A line that is not valid line protocol; the message names the 1-based column."""


_BOOL_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_BOOL_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})


def _field_value(text: str, col: int) -> object:
    """Field value per the spec: 1.5 float, 1i int, 1u uint, t/false bool, "..." string."""
    if not text:
        raise LineProtocolError(f"empty field value (column {col})")
    if not text.isascii():
        raise LineProtocolError(f"non-ASCII field value {text[:40]!r} (column {col})")
    if text[0] == '"':
        if len(text) < 2 or text[-1] != '"':
            raise LineProtocolError(f"unterminated string field value (column {col})")
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    try:
        if text[-1] in "iu":
            num = int(text[:-1])
            if text[-1] == "u" and num < 0:
                raise ValueError
            return num
        if "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise LineProtocolError(f"invalid field value {text[:40]!r} (column {col})") from None


def _split(text: str, sep: str, start: int, quotes: bool = False) -> list[tuple[str, int]]:
    """Split at unescaped `sep` (outside double quotes if `quotes`), keeping each part's 0-based column."""
    parts: list[tuple[str, int]] = []
    if "\\" not in text and not (quotes and '"' in text):
        pos = start
        for part in text.split(sep):
            parts.append((part, pos))
            pos += len(part) + 1
        return parts
    begin = i = 0
    in_quote = False
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            i += 2
            continue
        if quotes and c == '"':
            in_quote = not in_quote
        elif c == sep and not in_quote:
            parts.append((text[begin:i], start + begin))
            begin = i + 1
        i += 1
    if in_quote:
        raise LineProtocolError(f"unterminated string (column {start + n})")
    parts.append((text[begin:], start + begin))
    return parts


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in ", =\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _pair(text: str, col: int, what: str) -> tuple[str, str, int]:
    """`key=value` split at the first unescaped '='; returns the value's 0-based column too."""
    if "\\" not in text:
        i = text.find("=")
    else:
        i, n = 0, len(text)
        while i < n and text[i] != "=":
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            i = -1
    if i < 0:
        raise LineProtocolError(f"{what} {text[:40]!r} has no '=' (column {col + 1})")
    key = _unescape(text[:i])
    if not key:
        raise LineProtocolError(f"empty {what} key (column {col + 1})")
    return key, text[i + 1:], col + i + 1


def _section_end(line: str, start: int, quotes: bool) -> int:
    """Index of the first unescaped space at or after `start` (outside double quotes if `quotes`)."""
    i, n = start, len(line)
    quote_at = -1  # where the open string started
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if quotes and c == '"':
            quote_at = i if quote_at < 0 else -1
        elif c == " " and quote_at < 0:
            return i
        i += 1
    if quote_at >= 0:
        raise LineProtocolError(f"unterminated string field value (column {quote_at + 1})")
    return n


def _sections(line: str) -> list[tuple[str, int]]:
    """measurement+tags, fields, optional timestamp, each with its 0-based column. Quotes only matter
    in the fields section (string field values); elsewhere they are ordinary characters."""
    if "\\" not in line and '"' not in line:
        sections, pos = [], 0
        for part in line.split(" "):
            if part:
                sections.append((part, pos))
            pos += len(part) + 1
        return sections
    sections = []
    i, n = 0, len(line)
    while i < n:
        if line[i] == " ":
            i += 1
            continue
        end = _section_end(line, i, quotes=len(sections) == 1)
        sections.append((line[i:end], i))
        i = end
    return sections


def _parse_simple(line: str) -> tuple[dict[str, str], dict[str, object], int | None] | None:
    """The common line without escapes or strings, with str methods only; None means "use the full
    parser" (which also produces the located error message)."""
    parts = line.split()
    if len(parts) not in (2, 3):
        return None
    measurement, _, tag_text = parts[0].partition(",")
    if not measurement:
        return None
    tags: dict[str, str] = {}
    if tag_text:
        for item in tag_text.split(","):
            key, eq, value = item.partition("=")
            if not (key and eq and value):
                return None
            tags[key] = value
    fields: dict[str, object] = {}
    for item in parts[1].split(","):
        key, eq, value = item.partition("=")
        if not (key and eq and value):
            return None
        if value[-1] in "0123456789." and "_" not in value:
            try:
                fields[key] = float(value)
                continue
            except ValueError:
                pass
        try:
            fields[key] = _field_value(value, 0)
        except LineProtocolError:
            return None
    if len(parts) == 2:
        return tags, fields, None
    try:
        return tags, fields, int(parts[2])
    except ValueError:
        return None


def parse_line(line: str) -> tuple[dict[str, str], dict[str, object], int | None]:
    """Parse one line into (tags, fields, timestamp ns or None); the measurement name is not kept."""
    if "\\" not in line and '"' not in line:
        fast = _parse_simple(line)
        if fast is not None:
            return fast
    sections = _sections(line)
    if len(sections) not in (2, 3):
        raise LineProtocolError("expected 'measurement[,tag=value...] field=value[,...] [timestamp]' "
                                f"but found {len(sections)} space-separated part(s) (column 1)")
    (head, head_col), (fields_text, fields_col) = sections[0], sections[1]
    key_parts = _split(head, ",", head_col)
    if not _unescape(key_parts[0][0]):
        raise LineProtocolError("missing measurement name (column 1)")
    tags: dict[str, str] = {}
    for text, col in key_parts[1:]:
        key, value, vcol = _pair(text, col, "tag")
        if not value:
            raise LineProtocolError(f"tag {key!r} has no value (column {vcol + 1})")
        tags[key] = _unescape(value)
    fields: dict[str, object] = {}
    for text, col in _split(fields_text, ",", fields_col, quotes=True):
        key, value, vcol = _pair(text, col, "field")
        fields[key] = _field_value(value, vcol + 1)
    ts: int | None = None
    if len(sections) == 3:
        ts_text, ts_col = sections[2]
        try:
            ts = int(ts_text)
        except ValueError:
            raise LineProtocolError(
                f"timestamp {ts_text[:40]!r} is not an integer of ns (column {ts_col + 1})") from None
    return tags, fields, ts
