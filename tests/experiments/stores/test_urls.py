"""mask_url hides every password form SQLAlchemy and MLflow accept, in any text, and changes
nothing else. The tables name the forms (every secret in them holds the marker ``Zq``: no ``Zq``
may survive); each table test checks every row and lists every offender. The properties (Hypothesis,
derandomised) put generated secrets in every place a secret can take, in generated URLs and texts,
and expect exactly the text with ``***`` in their places."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

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

ENVIRONMENT = [
    ("MLFLOW_TRACKING_PASSWORD=Zq1 python -m experiments.sweep",
     "MLFLOW_TRACKING_PASSWORD=*** python -m experiments.sweep"),
    ("export MLFLOW_TRACKING_TOKEN='Zq1'", "export MLFLOW_TRACKING_TOKEN='***'"),
    ("PGPASSWORD=\"Zq'1\" psql", 'PGPASSWORD="***" psql'),
    ("environ({'MLFLOW_TRACKING_PASSWORD': 'Zq1', 'HOME': '/h'})",
     "environ({'MLFLOW_TRACKING_PASSWORD': '***', 'HOME': '/h'})"),
    ("env:\n  DATABRICKS_TOKEN: dapiZq1\n  AWS_SECRET_ACCESS_KEY: Zq2\n",
     "env:\n  DATABRICKS_TOKEN: ***\n  AWS_SECRET_ACCESS_KEY: ***\n"),
    ("(TOKEN=Zq1)", "(TOKEN=***)"),
]


def _fill(context: str, url: str) -> str:
    """``url`` in ``context``, a quote inside written escaped when the context quotes it."""
    for q in "'\"":
        if f"{q}{{}}{q}" in context:
            url = url.replace(q, "\\" + q)
    return context.format(*[url] * context.count("{}"))


def _none(offenders: list[str]) -> None:
    assert not offenders, f"{len(offenders)} offender(s):\n" + "\n".join(offenders)


def test_each_form_is_masked() -> None:
    _none([f"{url!r} -> {mask_url(url)!r}, want {masked!r}" for url, masked in FORMS
           if mask_url(url) != masked or not has_secret(url) or has_secret(masked)])


def test_text_without_secrets_is_unchanged() -> None:
    _none([f"{t!r} -> {mask_url(t)!r}" for t in UNCHANGED if mask_url(t) != t or has_secret(t)])


def test_each_form_is_masked_in_any_text() -> None:
    offenders = []
    for url, masked in FORMS:
        for context in CONTEXTS:
            done = mask_url(text := _fill(context, url))
            want = done if "\\" in text else context.format(*[masked] * context.count("{}"))
            if "Zq" in done or done != want or mask_url(done) != done:
                offenders.append(f"{text!r} -> {done!r}")
    _none(offenders)


def test_unchanged_in_any_text() -> None:
    texts = [context.format(*[url] * context.count("{}")) for url in UNCHANGED[3:] for context in CONTEXTS]
    _none([f"{t!r} -> {mask_url(t)!r}" for t in texts if mask_url(t) != t])


def _config(url: str) -> dict[str, object]:
    return {"sweep": {"storage": url, "n_trials": 3}, "mlflow": {"tracking_uri": "http://h:5000"},
            "seed": 0, "uris": [url, "file:///x"]}


# (dump, load) for plain, single- and double-quoted YAML (a quote inside escaped as YAML does),
# OmegaConf's YAML and JSON.
DUMPS: dict[str, tuple[Callable[[object], str], Callable[[str], object]]] = {
    "yaml": (lambda c: yaml.safe_dump(c, width=1000), yaml.safe_load),
    "yaml '": (lambda c: yaml.safe_dump(c, default_style="'", width=1000), yaml.safe_load),
    'yaml "': (lambda c: yaml.safe_dump(c, default_style='"', width=1000), yaml.safe_load),
    "omegaconf": (lambda c: OmegaConf.to_yaml(OmegaConf.create(c)), yaml.safe_load),
    "json": (json.dumps, json.loads),
}


def test_masked_in_yaml_omegaconf_and_json_dumps() -> None:
    """The masked dump of a config still loads, and holds the masked URL where the URL was."""
    offenders = []
    for url, masked in FORMS:
        for name, (dump, load) in DUMPS.items():
            done = mask_url(dump(_config(url)))
            if "Zq" in done or load(done) != _config(masked):
                offenders.append(f"{name} of {url!r}: {done!r}")
    _none(offenders)


def _is_secret_name(key: str) -> bool:
    key = key.lower().replace("-", "_")
    return key in {"password", "passwd", "pwd", "sslpassword", "token", "sig", "auth", "key"} or \
        key.endswith(("secret", "token", "api_key", "apikey", "signature", "credential"))


def _sqlalchemy_problem(url: str) -> str | None:
    """What make_url reads as the password or a secret query value is masked; None when so."""
    try:
        before = make_url(url)
    except ValueError:  # not a URL SQLAlchemy takes (a port that is no number)
        return None
    after = make_url(mask_url(url))
    values = {key: value if isinstance(value, tuple) else (value,) for key, value in after.query.items()}
    if after.password not in (MASK, None) or (before.password is not None and after.password != MASK):
        return f"password {after.password!r}"
    if bad := {k: v for k, v in values.items() if _is_secret_name(k) and set(v) != {MASK}}:
        return f"query {bad}"
    return "Zq survives" if "Zq" in repr(after) + str(values) + str(after.password) else None


def _urllib_problem(url: str) -> str | None:
    """MLflow reaches a tracking server with requests, which reads URLs as urllib does."""
    parts = urlsplit(mask_url(url))
    if parts.password not in (MASK, None) or "Zq" in parts.query + parts.fragment + str(parts.password):
        return f"reads {parts}"
    return None


def test_masking_agrees_with_sqlalchemy_and_urllib() -> None:
    _none([f"{url!r}: {p}" for url, _ in FORMS if (p := (_urllib_problem if url.startswith("http")
                                                           else _sqlalchemy_problem)(url))])


def test_what_sqlalchemy_renders_is_masked_as_sqlalchemy_masks_it() -> None:
    offenders = []
    for password in ["Zq", "Zq@ss:w/rd?#%&'\"=;", "Zq::@@", "Zq%40"]:
        url = URL.create("postgresql+psycopg2", username="me@x", password=password, host="h",
                         port=5432, database="db", query={"sslmode": "require"})
        if problem := _render_problem(url):
            offenders.append(f"{password!r}: {problem}")
    _none(offenders)


def _render_problem(url: URL) -> str | None:
    done = mask_url(url.render_as_string(hide_password=False))
    if done != url.render_as_string() or mask_url(repr(url)) != repr(url) or make_url(done).host != url.host:
        return f"{done!r}, SQLAlchemy hides it as {url.render_as_string()!r}"
    return None


def test_secret_environment_variables_are_masked() -> None:
    _none([f"{text!r} -> {mask_url(text)!r}" for text, masked in ENVIRONMENT
           if mask_url(text) != masked or mask_url(masked) != masked or has_secret(masked)])


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
