"""mask_url, property-based: generated URLs and texts with a random secret in every place a
secret can take; none survives, masking is idempotent, a text without a secret is unchanged."""

from __future__ import annotations

import functools
import random
import re
import string
from contextlib import suppress
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from experiments.stores import has_secret, mask_url
from experiments.stores.urls import MASK
from tests.experiments.stores.test_urls import CONTEXTS, DUMPS, _config, _none, _render_problem

# Properties. A generated text is a list of parts (text, is_secret): the text holds the secrets, the
# expected mask holds *** in their place, and every other character is the same.
Parts = list[tuple[str, bool]]
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)
AWKWARD = "@:/?#%&;=+~!$*,.()[]{}"
QUOTES = "'\"`\\"


@functools.cache
def secrets(banned: str = "", quoted: bool = False) -> st.SearchStrategy[str]:
    """A secret as written: raw, letters (of three scripts) and the awkward characters not
    ``banned``, a letter last (a sentence's ``.`` or ``)`` after a URL is no part of it) and, unless
    ``quoted`` (escaped in quotes), after a quote that would read as a closing quote; or any text
    at all, percent-encoded."""
    # In quotes, what matters is quotes, escapes and what may close a quote: mostly those.
    chars = "a密" + QUOTES + ",;:)]}@/?#" if quoted else "aZ9é密" + AWKWARD + QUOTES
    chars = "".join(c for c in chars if c not in banned)
    raw = st.text(chars, max_size=12).map(lambda s: (s if quoted else re.sub(
        r"(['\"`])(?=[,;:)\]}>'\"`]|$)", r"\1z", s)) + "z")
    encoded = st.text(min_size=1).map(lambda s: quote(s, safe="")).filter(  # a last "." reads as a
        lambda s: not s.endswith("."))  # full stop, even in quotes: mask_url's documented limit
    return st.one_of(raw, encoded).filter(lambda s: s != MASK)


WEB = ["http", "https", "HTTPS", "ws", "wss"]
OTHER = ["postgresql", "postgresql+psycopg2", "mysql+pymysql", "mssql+pyodbc", "databricks", "s3"]
SCHEMES = st.sampled_from([(s, True) for s in WEB] + [(s, False) for s in OTHER])
USERS = st.sampled_from(["u", "me@example.com", "token", "me%40x", "a.b-c_d"])
USERINFO = st.sampled_from(["", "user", "password"])
HOSTS = st.sampled_from([host + path for host in ["h", "db.example.com", "127.0.0.1:5432", "[::1]:5432",
                                                  "adb-1.azuredatabricks.net", "h:5000"]
                         for path in ["", "/", "/db", "/x/y.db", "/sql/1.0/warehouses/abc"]])
SECRET_KEYS = ["password", "PassWord", "sslpassword", "passwd", "pwd", "pass%77ord", "secret",
               "client_secret", "token", "access_token", "refresh_token", "auth", "api_key", "API-KEY",
               "apiKey", "key", "sig", "jwt", "X-Amz-Signature", "X-Amz-Credential",
               "X-Amz-Security-Token", "passphrase"]
PLAIN_KEYS = ["sslmode", "charset", "application_name", "sslkey", "key_id", "monkey", "page_size",
              "http_path", "X-Amz-Expires", "token_type", "state"]
KEYS = st.lists(st.sampled_from(SECRET_KEYS + PLAIN_KEYS), max_size=4)
PLAIN = st.text(string.ascii_letters + string.digits + "._-/", min_size=1, max_size=8)
NONE = st.sampled_from(["", MASK])  # where a secret goes, in a text without one


@st.composite
def params(draw: st.DrawFn, secret: bool, quoted: bool) -> list[tuple[str, str, bool]]:
    """Query or fragment parameters (key, value, is_secret)."""
    found = []
    for key in draw(KEYS):
        is_secret = secret and key in SECRET_KEYS
        found.append((key, draw(secrets("&#()[]{}", quoted) if is_secret else NONE if key in SECRET_KEYS
                                else PLAIN), is_secret))
    return found


@st.composite
def urls(draw: st.DrawFn, secret: bool = True, quoted: bool = False) -> Parts:
    """A URL its reader reads as written, a secret in every place one may take: the userinfo
    password, secret query values, a fragment's token (web only). ``quoted``: written in quotes."""
    scheme, web = draw(SCHEMES)
    user, userinfo = draw(USERS), draw(USERINFO)
    password = draw(secrets("/?#" if web else "", quoted) if secret else NONE)
    parts: Parts = [(scheme + "://", False)]
    if userinfo == "password":
        parts += [(user + ":", False), (password, secret), ("@", False)]
    parts += [(user + "@" if userinfo == "user" else "", False), (draw(HOSTS), False)]
    query, fragment = draw(params(secret, quoted)), draw(params(secret, quoted)) if web else []
    if fragment and query and query[-1][0] in SECRET_KEYS:  # its value runs to the next &, past #
        query.append(("keep", "1", False))
    for mark, group in (("?", query), ("#", fragment)):
        for i, (key, value, is_secret) in enumerate(group):
            parts += [(("&" if i else mark) + key + "=", False), (value, is_secret)]
    assume(_read_as_written(parts, web, password if userinfo == "password" else None, query + fragment))
    return parts


def _read_as_written(parts: Parts, web: bool, password: str | None,
                     written: list[tuple[str, str, bool]]) -> bool:
    """Whether the URL's reader (urllib on the web, SQLAlchemy elsewhere) reads its password and
    every parameter where they were written: a URL that works, not a typo."""
    url, pairs = _text(parts), sorted((unquote(k), unquote(v.replace("+", " "))) for k, v, _ in written)
    rfc = None
    with suppress(ValueError):
        split = urlsplit(url)
        rfc = split.password
        read = sorted(pair for part in (split.query, split.fragment)
                      for pair in parse_qsl(part, keep_blank_values=True))
        if web:
            return rfc == password and read == pairs
    if web:
        return False
    with suppress(ValueError, ArgumentError):  # SQLAlchemy reads the query; either reads the password
        sqla = make_url(url)
        query = sorted((k, v) for k, vs in sqla.query.items() for v in ((vs,) if isinstance(vs, str) else vs))
        read_password = sqla.password == (password and unquote(password)) or (
            password is not None and rfc == password)
        return read_password and query == [p for p in pairs if p[1]]
    return False


def _text(parts: Parts) -> str:
    return "".join(text for text, _ in parts)


def _masked(parts: Parts) -> str:
    return "".join(MASK if secret else text for text, secret in parts)


ENV_SECRET = st.sampled_from(["MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "PGPASSWORD",
                              "AWS_SECRET_ACCESS_KEY", "DATABRICKS_TOKEN", "OPENAI_API_KEY", "TOKEN"])
ENV_PLAIN = st.one_of(st.tuples(st.sampled_from(["TOKENIZERS_PARALLELISM", "PWD", "HOME", "MY_TOKEN_FILE"]),
                                PLAIN), st.tuples(ENV_SECRET, st.just(MASK)))
ENV_FORMS = st.sampled_from(["{name}={value}", "{name}: {value}", "'{name}': '{value}'",
                             "export {name}='{value}'", '{name}="{value}"'])
WORDS = st.sampled_from(["error:", "could not connect to", "failed for user@host:", "password=wrong",
                         "'x:y@z'", "(see", "it).", "sweep.n_trials=3", "key: value", "-", "a@b:c,",
                         "file:///tmp/mlruns", "sqlite:///runs/optuna.db", "http://127.0.0.1:5000"])
SEPARATORS = st.sampled_from([" ", "\n", ", ", "; ", "\n  "])
KINDS = st.lists(st.sampled_from(["word", "url", "env"]), min_size=1, max_size=5)


@st.composite
def environment(draw: st.DrawFn, secret: bool = True) -> Parts:
    """A secret environment variable's assignment (without a secret: a plain one, or masked)."""
    head, tail = draw(ENV_FORMS).split("{value}")
    name, value = (draw(ENV_SECRET), draw(secrets(tail or QUOTES, bool(tail)))) if secret else draw(ENV_PLAIN)
    return [(head.format(name=name), False), (value, secret), (tail, False)]


def _quote(context: str) -> str:
    """The quote ``context`` writes its URL in, if any."""
    return next((q for q in "'\"" if f"{q}{{}}{q}" in context), "")


def _in_context(context: str, parts: Parts) -> Parts:
    """``parts`` in ``context``; when the context quotes them, a quote or backslash inside is
    escaped with a backslash, as Python writes them."""
    if q := _quote(context):
        parts = [(text.replace("\\", "\\\\").replace(q, "\\" + q), secret) for text, secret in parts]
    done: Parts = []
    for i, piece in enumerate(context.replace("{{", "{").replace("}}", "}").split("{}")):
        done += ([] if i == 0 else parts) + [(piece, False)]
    return done


@st.composite
def texts(draw: st.DrawFn, secret: bool = True) -> Parts:
    """Words, URLs in their contexts and environment variables, one after another."""
    parts: Parts = []
    for i, kind in enumerate(draw(KINDS)):
        parts += [(draw(SEPARATORS), False)] if i else []
        if kind == "word":
            parts.append((draw(WORDS), False))
        elif kind == "env":
            parts += draw(environment(secret))
        else:
            context = draw(st.sampled_from(CONTEXTS))
            parts += _in_context(context, draw(urls(secret, bool(_quote(context)))))
    return parts


@PROPERTY
@given(urls())
def test_a_secret_in_any_place_of_a_url_is_masked(parts: Parts) -> None:
    url, want = _text(parts), _masked(parts)
    assert mask_url(url) == want
    assert has_secret(url) == any(secret for _, secret in parts) and not has_secret(want)


@PROPERTY
@given(texts())
def test_a_secret_in_any_text_is_masked_idempotently(parts: Parts) -> None:
    text, want = _text(parts), _masked(parts)
    done = mask_url(text)
    assert done == want
    assert mask_url(done) == done
    assert has_secret(text) == any(secret for _, secret in parts) and not has_secret(done)


@PROPERTY
@given(texts(secret=False))
def test_a_text_without_a_secret_is_unchanged(parts: Parts) -> None:
    text = _text(parts)
    assert mask_url(text) == text
    assert not has_secret(text)


@PROPERTY
@given(urls(), st.sampled_from(sorted(DUMPS)))
def test_a_secret_in_a_dump_is_masked(parts: Parts, name: str) -> None:
    url, (dump, load) = _text(parts), DUMPS[name]
    assume(name != "omegaconf" or "${" not in url)  # not a value OmegaConf takes
    assert load(mask_url(dump(_config(url)))) == _config(_masked(parts))


# SQLAlchemy writes a space raw, and a raw space ends a URL (mask_url's documented limit).
NO_SPACE = st.text().map(lambda s: s.replace(" ", "%"))


@PROPERTY
@given(NO_SPACE, NO_SPACE.filter(bool))
def test_any_password_sqlalchemy_renders_is_masked_as_it_hides_it(username: str, password: str) -> None:
    url = URL.create("postgresql+psycopg2", username=username, password=password, host="h",
                     port=5432, database="db", query={"sslmode": "require"})
    assert _render_problem(url) is None


ALPHABET = ["postgresql://", "http://", "https://", "sqlite:///", "u", ":", "@", "/", "?", "#", "&",
            ";", "=", "password", "token", "x", "Zq", "'", '"', "\\", " ", "\n", "(", ")", "%40",
            "***", "MLFLOW_TRACKING_TOKEN=", ","]


def test_random_texts_are_masked_idempotently() -> None:
    """20,000 texts of URL pieces, seeded: a plain loop runs them in well under a second."""
    rng, offenders = random.Random(1234), []
    for _ in range(20000):
        text = "".join(rng.choices(ALPHABET, k=rng.randint(0, 14)))
        once = mask_url(text)
        if mask_url(once) != once or has_secret(text) != (once != text):
            offenders.append(f"{text!r} -> {once!r} -> {mask_url(once)!r}")
    _none(offenders)
