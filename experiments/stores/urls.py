"""Store URLs: which backend a URL names, the file behind a SQLite URL, and secrets masked."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote_plus

import sqlalchemy

MASK = "***"
_QUOTES = "'\"`"
# What may follow a quote that closes a URL (besides whitespace and the end); after the quote that
# opened it, also ":" (``'url': reason``).
_CLOSERS = ",;)]}>" + _QUOTES
# Trailing punctuation that ends a sentence, not a secret value: ``...?password=x: refused``.
_TRAILING = ".,:;"
_OPENERS = {")": "(", "]": "[", "}": "{"}
_SCHEME = re.compile(r"(?<![\w+.-])([A-Za-z][\w+.-]*)://")
# Web URLs are read the way urllib and requests read them (RFC 3986); every other scheme is also
# read the way SQLAlchemy's make_url reads it.
_WEB = frozenset({"http", "https", "ws", "wss"})
_SQLALCHEMY_USERINFO = re.compile(r"[^:/]*:([^@]*)@")
_PARAM = re.compile(r"[?&;#]([^=&;#?]*)=")
# A query key is secret when, lower-cased with "-" read as "_", it is one of these ...
_SECRET_KEYS = frozenset({"pwd", "pass", "auth", "authorization", "key", "sig", "jwt"})
# ... or ends with one of these (sslpassword, client_secret, access_token, x-amz-signature...).
_SECRET_ENDS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "api_key",
                "signature", "credential", "credentials", "private_key", "secret_key", "access_key")
# An environment variable that holds a secret (MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN,
# PGPASSWORD, AWS_SECRET_ACCESS_KEY...), as ``NAME=value``, ``NAME: value`` or ``'NAME': 'value'``.
_ENV = re.compile(r"(?:^|(?<=[\s'\"`{(\[,]))((?:[A-Z][A-Z0-9_]*)?(?:PASSWORD|PASSWD|TOKEN|SECRET|"
                  r"SECRET_KEY|SECRET_ACCESS_KEY|API_KEY|APIKEY))['\"]?[ \t]*(?:=|:[ \t])[ \t]*")

Span = tuple[int, int]
_PASSES = 8


def mask_url(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***``; everything else byte for byte.

    ``text`` may be one URL or any text holding URLs (a YAML dump, an error message, an override
    ``key=url``). In each URL (``scheme://...``, ending at whitespace, at its closing quote when
    it is quoted, or at the end) this masks the userinfo password (``scheme://user:***@host``;
    the last ``@`` before the host ends the userinfo, so a password may hold ``@`` and ``:``, and,
    outside http(s) and ws(s), whatever SQLAlchemy's ``make_url`` reads as the password, ``/``,
    ``?`` and ``#`` included) and the value of every secret query parameter (``password``,
    ``sslpassword``, ``token``, ``access_token``, ``api_key``, ``secret``... in any case, anywhere
    in the query; a value runs to the next ``&``, as ``parse_qsl`` reads it, less the ``.,:;`` and
    unopened ``)]}`` that end a sentence after the URL). Outside URLs it masks the value of a secret
    environment variable (``MLFLOW_TRACKING_PASSWORD=``, ``MLFLOW_TRACKING_TOKEN=``,
    ``PGPASSWORD=``...). Empty values are left as they are; a raw space in a password ends the URL
    (percent-encode it). Idempotent: ``mask_url(mask_url(t)) == mask_url(t)``."""
    for _ in range(_PASSES):  # masking can show a secret a different reading hid (a/b@c@d)
        spans = _secret_spans(text)
        if not spans:
            break
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], MASK]
            last = end
        text = "".join(out) + text[last:]
    return text


def has_secret(text: str) -> bool:
    """True when ``mask_url(text)`` would change something: ``text`` holds an unmasked secret."""
    return mask_url(text) != text


def _secret_spans(text: str) -> list[Span]:
    """Where the secrets in ``text`` are, sorted, overlaps merged; already-masked ones left out."""
    found = sorted(span for span in _url_spans(text) + _env_spans(text)
                   if text[span[0]:span[1]] not in ("", MASK))
    merged: list[Span] = []
    for start, end in found:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _url_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    for match in _SCHEME.finditer(text):
        begin = match.end()
        opener = text[match.start() - 1] if match.start() > 0 else ""
        end = _url_end(text, begin, opener if opener and opener in _QUOTES else "")
        rest = text[begin:end]
        web = match.group(1).lower() in _WEB
        spans += [(begin + a, begin + b) for a, b in _rest_spans(rest, web)]
    return spans


def _url_end(text: str, i: int, quote: str = "") -> int:
    """Where a URL starting at ``i`` ends: at whitespace, or at the quote that closes it. A quote
    closes when the end, whitespace, a quote or punctuation follows it (any other quote is data);
    inside ``quote`` only that quote closes, and not when escaped by a backslash or doubled (as
    Python and YAML write a quote inside quotes)."""
    n = len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            return i
        if quote and char == "\\" and i + 1 < n and not text[i + 1].isspace():
            i += 2
            continue
        if quote and char == quote and text.startswith(quote, i + 1):
            i += 2
            continue
        if char in (quote or _QUOTES) and (i + 1 == n or text[i + 1].isspace() or text[i + 1]
                                            in (_CLOSERS + ":" if quote else _CLOSERS)):
            return i
        i += 1
    return n


def _rest_spans(rest: str, web: bool) -> list[Span]:
    """The secrets in what follows ``scheme://``: the password, then secret query values."""
    spans: list[Span] = []
    password = _password_span(rest, web)
    if password:
        spans.append(password)
    query = _first(rest, "?#", password[1] if password else 0)
    for param in _PARAM.finditer(rest, query):
        if _is_secret_key(param.group(1)):
            end = _first(rest, "&", param.end())
            spans.append((param.end(), _trim(rest, param.end(), end) if end == len(rest) else end))
    return spans


def _password_span(rest: str, web: bool) -> Span | None:
    """The userinfo password: after the userinfo's first ``:``, up to the last ``@`` before the
    host (RFC 3986: the authority ends at ``/``, ``?`` or ``#``); outside the web also what
    SQLAlchemy reads as one (``user:`` then anything up to the first ``@``)."""
    at = rest.rfind("@", 0, _first(rest, "/?#"))
    colon = rest.find(":", 0, at) if at > 0 else -1
    if colon >= 0:
        return colon + 1, at
    if web:
        return None
    match = _SQLALCHEMY_USERINFO.match(rest)
    return match.span(1) if match else None


def _is_secret_key(key: str) -> bool:
    name = unquote_plus(key).strip().lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_ENDS)


def _env_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    for match in _ENV.finditer(text):
        start = match.end()
        if start < len(text) and text[start] in _QUOTES:
            spans.append((start + 1, _url_end(text, start + 1, text[start])))
        else:
            spans.append((start, _trim(text, start, _url_end(text, start))))
    return spans


def _trim(text: str, start: int, end: int) -> int:
    """``end`` moved back over the punctuation that ends ``text[start:end]`` and the closing
    brackets not opened in it: ``(see ...?token=x).`` masks ``x``, not ``x).``."""
    while end > start and (text[end - 1] in _TRAILING or text[end - 1] in _OPENERS and (
            text.count(text[end - 1], start, end) > text.count(_OPENERS[text[end - 1]], start, end))):
        end -= 1
    return end


def _first(text: str, chars: str, start: int = 0) -> int:
    """The index of the first of ``chars`` in ``text`` from ``start``; ``len(text)`` if none."""
    return min((i for i in (text.find(c, start) for c in chars) if i >= 0), default=len(text))


def backend_of(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``...; "" for anything that is not a database URL
    (an MLflow server, a folder)."""
    try:
        return sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        return ""


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL; None for anything else (and for ``:memory:``)."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
