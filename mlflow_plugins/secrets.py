"""What counts as a credential, in one place: URIs stripped of them, text redacted of them, and
names or values that look like secrets.

The rule (the README has it): no password, key or token leaves the process. Every URI is passed
through :func:`strip_uri` before it is logged, tagged, hashed into a name or written to lineage,
and every message through :func:`redact`; identities are computed from the stripped URI, so a
rotated password names the same things. A param or tag whose name or value :func:`looks_secret`
is left out of what the suite writes (and counted, so its absence is visible).

* :func:`strip_uri` drops the whole user-info part (``user:password@``: a token is often the user
  name, as in ``https://<token>@github.com/...``) and every query parameter whose name looks like
  a credential (``password``, ``token``, ``X-Amz-Signature``, Azure's ``sig``, ...).
* :func:`redact` does the same to every URI inside a text (an error message that quotes a URL) and
  replaces well-known token formats (AWS access key ids, JWTs, PEM private keys, ``Bearer ...``,
  GitHub, Slack, Hugging Face and OpenAI-style keys) by ``***``.
"""

from __future__ import annotations

import logging
import re
import traceback
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Words (of a name split at punctuation and camelCase) that make a name a credential's.
SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "apikey",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "signature",
        "sig",
        "cookie",
        "bearer",
        "privatekey",
        "accesskey",
        "secretkey",
        "sessiontoken",
        "securitytoken",
        "clientsecret",
        "sas",
        "jwt",
        "otp",
        "pat",
    }
)
# Adjacent word pairs that do (``api_key``, ``access-key``, ``private.key``).
SECRET_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("session", "key"),
        ("account", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("master", "key"),
    }
)
# Query parameters that carry credentials though their names hold none of the words above.
SECRET_QUERY = frozenset(
    {
        "x-amz-credential",
        "x-amz-signature",
        "x-amz-security-token",
        "awsaccesskeyid",
        "sig",
        "x-goog-signature",
        "x-goog-credential",
        "code",
        "key",
    }
)

TOKEN_PATTERNS = (
    re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # JWT
    # an Authorization header's value
    re.compile(r"\b(?:Bearer|Basic)\s+(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})"),  # GitHub
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),  # Hugging Face
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style API keys
    re.compile(r"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[=:]\s*[^\s&;,'\"]{4,}"),  # key=value in text
)
_URI = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"(?<=://)[^\s/?#]*@")
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\b|[^A-Za-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def words(name: str) -> list[str]:
    """``dbPassword`` -> ``['db', 'password']``; ``AWS_SECRET_ACCESS_KEY`` -> ``['aws', 'secret', 'access', 'key']``."""
    return [w.lower() for w in _WORDS.findall(name)]


def secret_name(name: str) -> bool:
    """Whether a param, tag, property or query parameter called ``name`` holds a credential."""
    found = words(name)
    if any(w in SECRET_WORDS for w in found) or "".join(found) in SECRET_WORDS:
        return True
    return any(pair in SECRET_PAIRS for pair in zip(found, found[1:]))


def secret_value(value: object) -> bool:
    """Whether ``value`` holds a well-known token format (a URI with a password is not a secret
    value: :func:`redact` strips it, and the rest is worth keeping)."""
    text = str(value)
    return _mask_tokens(text) != text


def looks_secret(name: str, value: object) -> bool:
    return secret_name(name) or secret_value(value)


def strip_uri(uri: str) -> str:
    """``uri`` without its user-info and credential query parameters; anything else unchanged."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:  # not a URI after all (an unbalanced '[' in the host): strip by pattern
        return _USERINFO.sub("", uri)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _secret_query(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secret_query(name: str) -> bool:
    return name.lower() in SECRET_QUERY or secret_name(name)


def redact(text: str) -> str:
    """``text`` with every URI stripped (:func:`strip_uri`) and every well-known token masked."""
    if not text:
        return text
    return _mask_tokens(_URI.sub(lambda m: strip_uri(m.group(0)), text))


def _mask_tokens(text: str) -> str:
    for pattern in TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def public(values: dict[str, str]) -> tuple[dict[str, str], int]:
    """The entries that hold no secret (their URIs stripped), and how many were left out."""
    kept = {k: redact(str(v)) for k, v in values.items() if not looks_secret(k, v)}
    return kept, len(values) - len(kept)


class RedactingRecords:
    """A log record factory that redacts every record's message (and its traceback), so a
    library's log line that quotes a URI with a password (MLflow's "API request to <url> failed")
    says nothing secret. :func:`install_log_redaction` puts it in place."""

    def __init__(self, factory) -> None:
        self.factory = factory

    def __call__(self, *args, **kwargs) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: let the handler report it as usual
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:  # formatters print exc_text when it is set
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record


def install_log_redaction() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, RedactingRecords):
        logging.setLogRecordFactory(RedactingRecords(current))


__all__ = [
    "MASK",
    "install_log_redaction",
    "looks_secret",
    "public",
    "redact",
    "secret_name",
    "secret_value",
    "strip_uri",
]
