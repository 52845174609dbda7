"""mask_url hides every password form SQLAlchemy and MLflow accept, in any text, and changes
nothing else. Every secret in the data below holds the marker ``Zq``: no ``Zq`` may survive."""

from __future__ import annotations

import json
import random
from urllib.parse import urlsplit

import pytest
import yaml
from omegaconf import OmegaConf
from sqlalchemy.engine import URL, make_url

from experiments.stores import has_secret, mask_url
from experiments.stores.urls import MASK

# (url, masked): every password form, with the expected result.
FORMS = [
    ("postgresql://user:Zq1@host/db", "postgresql://user:***@host/db"),
    ("postgresql://user:Zq1@host:5432/db", "postgresql://user:***@host:5432/db"),
    ("postgresql+psycopg2://u:Zq1@h/db", "postgresql+psycopg2://u:***@h/db"),
    ("mysql+pymysql://u:Zq1@h/db?charset=utf8", "mysql+pymysql://u:***@h/db?charset=utf8"),
    ("postgresql://u:Zq%40%2F%3A%3F%23%25x@h/db", "postgresql://u:***@h/db"),  # percent-encoded
    ("postgresql://u:Zq@x@h/db", "postgresql://u:***@h/db"),  # a literal @: the last one ends it
    ("postgresql://u:Zq:x@h/db", "postgresql://u:***@h/db"),  # a literal :
    ("postgresql://u:Zq@:x:@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgresql://u:Zq/x@h/db", "postgresql://u:***@h/db"),  # SQLAlchemy reads / ? # as password
    ("postgresql://u:Zq?x#y@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:Zq'x@h/db", "postgresql://u:***@h/db"),  # a quote, as YAML dumps it plain
    ('postgresql://u:Zq"x@h/db', "postgresql://u:***@h/db"),
    ("postgresql://me@example.com:Zq1@h/db", "postgresql://me@example.com:***@h/db"),
    ("postgresql://u:Zq1@[::1]:5432/db", "postgresql://u:***@[::1]:5432/db"),
    ("postgresql://user@host:5432/db?password=Zq1", "postgresql://user@host:5432/db?password=***"),
    ("postgresql://u@h/db?password=Zq1&sslmode=require",
     "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://u@h/db?sslmode=require&password=Zq1",
     "postgresql://u@h/db?sslmode=require&password=***"),
    ("postgresql://u@h/db?sslmode=require&PassWord=Zq1&application_name=a",
     "postgresql://u@h/db?sslmode=require&PassWord=***&application_name=a"),
    ("postgresql://u@h/db?password=Zq1&password=Zq2", "postgresql://u@h/db?password=***&password=***"),
    ("postgresql://u@h/db?pass%77ord=Zq1", "postgresql://u@h/db?pass%77ord=***"),
    ("postgresql://u@h/db?password=Zq@h2:1/x&a=1", "postgresql://u@h/db?password=***&a=1"),
    ("postgresql://u:Zq1@h/db?sslpassword=Zq2&sslmode=verify-full",
     "postgresql://u:***@h/db?sslpassword=***&sslmode=verify-full"),
    ("postgresql://h/db?sslkey=/k.pem&sslpassword=Zq1", "postgresql://h/db?sslkey=/k.pem&sslpassword=***"),
    ("mysql+pymysql://u@h/db?passwd=Zq1;x=1", "mysql+pymysql://u@h/db?passwd=***"),  # as parse_qsl
    ("mysql+pymysql://u@h/db?x=1;passwd=Zq1&y=2", "mysql+pymysql://u@h/db?x=1;passwd=***&y=2"),
    ("postgresql://u:Zq/a@b@c/db", "postgresql://u:***@c/db"),
    ("http://user:Zq1@host:5000", "http://user:***@host:5000"),
    ("https://user:Zq@1@mlflow.example.com/", "https://user:***@mlflow.example.com/"),
    ("https://mlflow.example.com/?token=Zq1", "https://mlflow.example.com/?token=***"),
    ("https://h/api?x=1&access_token=Zq1#frag", "https://h/api?x=1&access_token=***"),
    ("https://h/#access_token=Zq1&state=s", "https://h/#access_token=***&state=s"),
    ("databricks://token:dapiZq1@adb-1.azuredatabricks.net?http_path=/sql/1",
     "databricks://token:***@adb-1.azuredatabricks.net?http_path=/sql/1"),
    ("s3://b/k?X-Amz-Credential=Zq1&X-Amz-Signature=Zq2&X-Amz-Expires=60",
     "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Expires=60"),
    ("https://a.blob.core.windows.net/c?sv=2020&sig=Zq1", "https://a.blob.core.windows.net/c?sv=2020&sig=***"),
] + [(f"https://h/x?{key}=Zq1&keep=1", f"https://h/x?{key}=***&keep=1") for key in (
    "passwd", "pwd", "PWD", "secret", "client_secret", "token", "access_token", "api_key", "API-KEY",
    "apikey", "apiKey", "auth", "auth_token", "key", "x-amz-security-token", "refresh_token")]

UNCHANGED = [
    "", "plain text", "no url: a@b:c, user:pass@host", "mlruns", "./mlruns/0", "file:///x",
    "file:///tmp/mlruns", "sqlite:///path/mlflow.db", "sqlite:////abs/optuna.db", "sqlite://",
    "sqlite:///:memory:", "sqlite:///C:\\runs\\mlflow.db", "http://127.0.0.1:5000",
    "http://localhost:5000/#/experiments/1/runs/abc", "http://h:5000/x?email=a@b",
    "https://sqlalche.me/e/20/e3q8", "databricks", "databricks://profile", "databricks://scope:prefix",
    "postgresql://user@host/db", "postgresql://user@host:5432/db?sslmode=require",
    "mysql+pymysql://u@h/db?charset=utf8mb4", "postgresql://u:@h/db", "postgresql://u@h/db?password=",
    "postgresql://u:***@h/db?password=***", "postgresql://h/db?sslkey=/k.pem&monkey=1&key_id=2",
    "https://h/?page_size=10&order_by=start_time", "TOKENIZERS_PARALLELISM=false", "PWD=/home/me",
    "sweep.storage=sqlite:///runs/optuna.db mlflow.tracking_uri=http://127.0.0.1:5000",
]

# How a URL appears in text: alone, in an override, in an error message, quoted, bracketed.
CONTEXTS = [
    "{}", "sweep.storage={}", "'sweep.storage={}'", '"mlflow.tracking_uri={}"', "--storage={}",
    "cannot open sweep.storage={}: (psycopg2.OperationalError) connection refused",
    "could not connect to '{}': timeout", 'error: "{}" failed', "urls={}\n", "({})", "[{}]",
    "['{}', 'sqlite:///x.db']", "{{'storage': '{}'}}", "a {} b {} c", "MLFLOW_TRACKING_URI={}",
    "export MLFLOW_TRACKING_URI='{}'", "see {}.", "at {}, then", "(see {}).", '{{"storage": "{}"}}',
]


@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[u for u, _ in FORMS])
def test_each_form_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert has_secret(url) and not has_secret(masked)


@pytest.mark.parametrize("text", UNCHANGED)
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assert mask_url(text) == text
    assert not has_secret(text)


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[u for u, _ in FORMS])
def test_each_form_is_masked_in_any_text(context: str, url: str, masked: str) -> None:
    for quote in "'\"":
        if f"{quote}{{}}{quote}" in context:  # inside quotes, a quote is written escaped
            url = url.replace(quote, "\\" + quote)
    text = context.format(*[url] * context.count("{}"))
    done = mask_url(text)
    assert "Zq" not in done
    if "\\" not in url:
        assert done == context.format(*[masked] * context.count("{}"))
    assert mask_url(done) == done


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize("url", UNCHANGED[3:])
def test_unchanged_in_any_text(context: str, url: str) -> None:
    text = context.format(*[url] * context.count("{}"))
    assert mask_url(text) == text


@pytest.mark.parametrize("style", [None, "'", '"'])
@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[u for u, _ in FORMS])
def test_masked_in_a_yaml_dump(url: str, masked: str, style: str | None) -> None:
    """Plain, single- and double-quoted YAML (a quote inside escaped as YAML does): the masked dump
    still loads, and holds the masked URL."""
    config = {"sweep": {"storage": url, "n_trials": 3}, "mlflow": {"tracking_uri": "http://h:5000"}}
    dump = yaml.safe_dump(config, default_style=style, width=1000)
    done = mask_url(dump)
    assert "Zq" not in done
    assert yaml.safe_load(done) == {**config, "sweep": {"storage": masked, "n_trials": 3}}


@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[u for u, _ in FORMS])
def test_masked_in_an_omegaconf_dump(url: str, masked: str) -> None:
    dump = OmegaConf.to_yaml(OmegaConf.create({"sweep": {"storage": url}, "seed": 0}))
    assert yaml.safe_load(mask_url(dump)) == {"sweep": {"storage": masked}, "seed": 0}


@pytest.mark.parametrize(("url", "masked"), FORMS, ids=[u for u, _ in FORMS])
def test_masked_in_json(url: str, masked: str) -> None:
    done = mask_url(json.dumps({"storage": url, "uris": [url, "file:///x"]}))
    assert json.loads(done) == {"storage": masked, "uris": [masked, "file:///x"]}


def _is_secret_name(key: str) -> bool:
    key = key.lower().replace("-", "_")
    return key in {"password", "passwd", "pwd", "sslpassword", "token", "sig", "auth", "key"} or \
        key.endswith(("secret", "token", "api_key", "apikey", "signature", "credential"))


@pytest.mark.parametrize(("url", "masked"), [f for f in FORMS if not f[0].startswith("http")],
                         ids=[u for u, _ in FORMS if not u.startswith("http")])
def test_masking_agrees_with_sqlalchemy(url: str, masked: str) -> None:
    """What make_url reads as the password or a secret query value is what is masked."""
    try:
        before = make_url(url)
    except ValueError:  # not a URL SQLAlchemy takes (a port that is no number)
        return
    after = make_url(mask_url(url))
    assert after.password in (MASK, None)
    assert before.password is None or after.password == MASK
    for key, value in after.query.items():
        values = value if isinstance(value, tuple) else (value,)
        assert not _is_secret_name(key) or set(values) == {MASK}, (key, value)
    assert "Zq" not in repr(after) + str(dict(after.query)) + str(after.password)


@pytest.mark.parametrize(("url", "masked"), [f for f in FORMS if f[0].startswith("http")],
                         ids=[u for u, _ in FORMS if u.startswith("http")])
def test_masking_agrees_with_urllib(url: str, masked: str) -> None:
    """MLflow reaches a tracking server with requests, which reads URLs as urllib does."""
    parts = urlsplit(mask_url(url))
    assert parts.password in (MASK, None)
    assert "Zq" not in parts.query + parts.fragment + str(parts.password)


@pytest.mark.parametrize("password", ["Zq", "Zq@ss:w/rd?#%&'\"=;", "Zq::@@", "Zq%40"])
def test_what_sqlalchemy_renders_is_masked_as_sqlalchemy_masks_it(password: str) -> None:
    url = URL.create("postgresql+psycopg2", username="me@x", password=password, host="h",
                     port=5432, database="db", query={"sslmode": "require"})
    assert mask_url(url.render_as_string(hide_password=False)) == url.render_as_string()
    assert mask_url(repr(url)) == repr(url)
    assert make_url(mask_url(url.render_as_string(hide_password=False))).host == "h"


@pytest.mark.parametrize(("text", "masked"), [
    ("MLFLOW_TRACKING_PASSWORD=Zq1 python -m experiments.sweep",
     "MLFLOW_TRACKING_PASSWORD=*** python -m experiments.sweep"),
    ("export MLFLOW_TRACKING_TOKEN='Zq1'", "export MLFLOW_TRACKING_TOKEN='***'"),
    ("PGPASSWORD=\"Zq'1\" psql", 'PGPASSWORD="***" psql'),
    ("environ({'MLFLOW_TRACKING_PASSWORD': 'Zq1', 'HOME': '/h'})",
     "environ({'MLFLOW_TRACKING_PASSWORD': '***', 'HOME': '/h'})"),
    ("env:\n  DATABRICKS_TOKEN: dapiZq1\n  AWS_SECRET_ACCESS_KEY: Zq2\n",
     "env:\n  DATABRICKS_TOKEN: ***\n  AWS_SECRET_ACCESS_KEY: ***\n"),
    ("(TOKEN=Zq1)", "(TOKEN=***)"),
])
def test_secret_environment_variables_are_masked(text: str, masked: str) -> None:
    assert mask_url(text) == masked
    assert mask_url(masked) == masked and not has_secret(masked)


def test_many_urls_in_one_text() -> None:
    text = ("sweep.storage=postgresql://u:Zq1@db:5432/optuna?sslmode=require "
            "mlflow.tracking_uri=https://me:Zq2@mlflow.example.com "
            "artifacts=file:///tmp/mlruns backup=\"mysql+pymysql://u@h/db?charset=utf8&password=Zq3\" "
            "local=sqlite:///runs/mlflow.db next=https://h/?token=Zq4")
    assert mask_url(text) == (
        "sweep.storage=postgresql://u:***@db:5432/optuna?sslmode=require "
        "mlflow.tracking_uri=https://me:***@mlflow.example.com "
        "artifacts=file:///tmp/mlruns backup=\"mysql+pymysql://u@h/db?charset=utf8&password=***\" "
        "local=sqlite:///runs/mlflow.db next=https://h/?token=***")


def test_a_url_inside_a_url() -> None:
    assert mask_url("https://h/login?next=postgresql://u:Zq1@h/db&x=1") == \
        "https://h/login?next=postgresql://u:***@h/db&x=1"


def test_masking_stops_at_the_end_of_the_url() -> None:
    text = "postgresql://u:Zq1@h/db failed for user@host: password=wrong 'x:y@z'"
    assert mask_url(text) == "postgresql://u:***@h/db failed for user@host: password=wrong 'x:y@z'"
    assert mask_url("'http://h:5000','a@b'") == "'http://h:5000','a@b'"
    assert mask_url("x=postgresql://u@h/db?password=Zq1\nnext: line") == \
        "x=postgresql://u@h/db?password=***\nnext: line"


def test_every_call_shape_of_the_project() -> None:
    """Single URLs, overrides, one-line exception texts, cut to a length after masking."""
    exc = "(psycopg2.OperationalError) could not connect: postgresql://u:Zq1@h/db?password=Zq2"
    assert "Zq" not in mask_url(exc)[:300]
    assert [mask_url(o) for o in ["sweep.storage=postgresql://u:Zq1@h/db", "train.epochs=3"]] == \
        ["sweep.storage=postgresql://u:***@h/db", "train.epochs=3"]
    assert mask_url(str(3)) == "3"


ALPHABET = ["postgresql://", "http://", "https://", "sqlite:///", "u", ":", "@", "/", "?", "#", "&",
            ";", "=", "password", "token", "x", "Zq", "'", '"', "\\", " ", "\n", "(", ")", "%40",
            "***", "MLFLOW_TRACKING_TOKEN=", ","]


def test_random_texts_are_masked_idempotently() -> None:
    rng = random.Random(1234)
    for _ in range(20000):
        text = "".join(rng.choices(ALPHABET, k=rng.randint(0, 14)))
        once = mask_url(text)
        assert mask_url(once) == once, text
        assert has_secret(text) == (once != text), text
