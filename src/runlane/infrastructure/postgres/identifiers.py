"""Schema and role names: validated once, then always quoted, never interpolated raw into SQL."""

from runlane.domain.errors import configuration_invalid

DEFAULT_SCHEMA = "public"
# NAMEDATALEN - 1: Postgres silently truncates longer identifiers, which would alias two names.
MAX_IDENTIFIER_BYTES = 63


def validate_identifier(name: object, what: str = "schema") -> str:
    """Return ``name`` if Postgres can hold it as a quoted identifier; ``configuration_invalid`` otherwise.

    Quotes, semicolons, dollar and percent signs are allowed because every use quotes the name;
    what is refused is what quoting cannot make safe or unambiguous: empty names, control characters
    (NUL cannot be sent at all), lone surrogates (not encodable), names over 63 bytes, and the
    reserved ``pg_`` prefix.
    """
    if not isinstance(name, str) or not name:
        raise configuration_invalid(f"Postgres {what} must be a non-empty string.", field=what)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise configuration_invalid(f"Postgres {what} must not contain control characters.", field=what)
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise configuration_invalid(
            f"Postgres {what} must be valid UTF-8 (no lone surrogates).", field=what
        ) from None
    if size > MAX_IDENTIFIER_BYTES:
        raise configuration_invalid(
            f"Postgres {what} {name[:80]!r} is longer than {MAX_IDENTIFIER_BYTES} bytes.", field=what
        )
    if name.lower().startswith("pg_"):
        raise configuration_invalid(f"Postgres {what} {name!r} uses the reserved pg_ prefix.", field=what)
    return name


def validate_schema_name(name: object) -> str:
    return validate_identifier(name, "schema")


def quote_identifier(name: str, what: str = "schema") -> str:
    """``"name"`` with embedded quotes doubled: the only way a name enters raw SQL text."""
    return '"' + validate_identifier(name, what).replace('"', '""') + '"'
