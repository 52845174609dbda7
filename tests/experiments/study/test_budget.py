"""The trial budget: tickets added once and claimed once by workers starting together, and the
Optuna behaviours the exact-total and retry guarantees rest on (public APIs only), pinned so an
Optuna upgrade that changes one fails here, by name."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from experiments.stores.scratch import scratch_database
from experiments.study import claim, open_storage, serialised, top_up
from experiments.study.budget import TICKET, add_tickets, adopt_unbeaten, heartbeat
from experiments.study.samplers import GridSampler, exhausted
from tests.conftest import needs_postgres, wait_for

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _top_up_together(url: str) -> int:
    """Four storages (as four processes would hold) top up one new study at the same moment;
    returns the number of tickets it then has (8 wanted; without the lock up to 32)."""
    storages = [open_storage(url) for _ in range(4)]
    optuna.create_study(study_name="s", storage=storages[0])
    studies = [optuna.load_study(study_name="s", storage=s) for s in storages]
    barrier = threading.Barrier(len(studies))

    def start(study: optuna.Study) -> None:
        barrier.wait()
        with serialised(url, "s"):  # the lock sweep() takes around top_up
            top_up(study, 8)

    threads = [threading.Thread(target=start, args=(s,)) for s in studies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = len(studies[0].trials)
    for s in storages:
        s.engine.dispose()
    return total


def _claim_together(url: str, tickets: int = 60) -> list[int]:
    """Four workers claim every ticket of one study at the same moment; the numbers they took."""
    storages = [open_storage(url) for _ in range(4)]
    optuna.create_study(study_name="s", storage=storages[0])
    top_up(optuna.load_study(study_name="s", storage=storages[0]), tickets)
    studies = [optuna.load_study(study_name="s", storage=s) for s in storages]
    barrier, taken = threading.Barrier(len(studies)), []

    def work(study: optuna.Study) -> None:
        barrier.wait()
        while (trial := claim(study, url)) is not None:
            taken.append(trial.number)

    threads = [threading.Thread(target=work, args=(s,)) for s in studies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(studies[0].trials) == tickets, "a claim created a trial beyond the budget"
    for s in storages:
        s.engine.dispose()
    return taken


@needs_postgres
def test_workers_starting_together_add_the_budget_once() -> None:
    with scratch_database(prefix="test_optuna") as url:
        assert _top_up_together(url) == 8


def test_workers_starting_together_on_sqlite_add_the_budget_once(tmp_path: Path) -> None:
    assert _top_up_together(f"sqlite:///{tmp_path}/optuna.db") == 8


def test_workers_claiming_together_on_sqlite_never_take_one_ticket_twice(tmp_path: Path) -> None:
    """SQLite ignores SELECT ... FOR UPDATE: without the store's lock, two workers' claims can
    both move one WAITING ticket to RUNNING and train the same trial."""
    assert sorted(_claim_together(f"sqlite:///{tmp_path}/optuna.db")) == list(range(60))


@needs_postgres
def test_workers_claiming_together_on_postgres_never_take_one_ticket_twice() -> None:
    with scratch_database(prefix="test_optuna") as url:
        assert sorted(_claim_together(url, tickets=30)) == list(range(30))


def test_a_claim_takes_a_waiting_ticket_and_never_creates_a_trial(tmp_path: Path) -> None:
    """``Study.add_trial`` makes a WAITING ticket and ``Study.ask`` takes it before it would
    create one: the budget is exactly the tickets."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    add_tickets(study, 2, reason="budget")
    assert [(t.state, t.user_attrs) for t in study.trials] == [(TrialState.WAITING, {TICKET: "budget"})] * 2
    first, second = claim(study, url), claim(study, url)
    assert (first.number, second.number) == (0, 1)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2
    assert claim(study, url) is None and len(study.trials) == 2


@pytest.mark.slow
def test_a_silent_trial_is_failed_and_its_parameters_queued_again(tmp_path: Path) -> None:
    """The heartbeat keeps a claimed trial alive; once it stops, ``fail_stale_trials`` fails the
    trial after the grace period (3 x heartbeat) and the retry callback re-enqueues its params."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    storage = open_storage(url, heartbeat=1)
    study = optuna.create_study(study_name="s", storage=storage)
    add_tickets(study, 1)
    trial = claim(study, url)
    x = trial.suggest_float("x", 0.0, 1.0)
    with heartbeat(storage, study, trial):
        alive_until = time.monotonic() + 4.5  # longer than the 3 s grace period

        def still_running_after_grace() -> bool | None:
            optuna.storages.fail_stale_trials(study)
            assert study.trials[0].state == TrialState.RUNNING, "a beating trial was failed"
            return True if time.monotonic() > alive_until else None

        wait_for(still_running_after_grace, "the grace period to pass", timeout=30)

    def failed() -> bool | None:
        optuna.storages.fail_stale_trials(study)
        return study.trials[0].state == TrialState.FAIL or None

    wait_for(failed, "the silent trial to be failed as stale", timeout=30)
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == {"x": x}
    again = claim(study, url)  # the retry trains the same point
    assert again.number == retry.number and again.suggest_float("x", 0.0, 1.0) == x


def test_the_grid_sampler_reports_its_end_without_an_optimize_loop(tmp_path: Path) -> None:
    """Optuna's GridSampler calls ``study.stop()`` after its last point, which raises outside
    ``Study.optimize``; ours leaves that call out and the sweep loop asks ``exhausted``."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=open_storage(url),
                                sampler=GridSampler({"w": [16, 32]}, seed=0))
    add_tickets(study, 2)
    seen = []
    while not exhausted(study) and (trial := claim(study, url)) is not None:
        seen.append(trial.suggest_categorical("w", [16, 32]))
        study.tell(trial, 0.5)
    assert sorted(seen) == [16, 32] and exhausted(study)


def test_a_trial_claimed_without_a_heartbeat_is_given_one_and_so_can_go_stale(tmp_path: Path) -> None:
    """A worker killed between its claim and its first beat leaves a RUNNING trial that Optuna's
    stale check never sees (it skips trials without a heartbeat). The next claim gives it a beat,
    so it goes stale and is rerun like any other; a claim's own trial has its beat at once."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    storage = open_storage(url, heartbeat=60)
    study = optuna.create_study(study_name="s", storage=storage)
    add_tickets(study, 2)
    orphan = study.ask()  # claimed, then the worker died: no beat, no worker attribute
    assert adopt_unbeaten(storage, study) == 1 and adopt_unbeaten(storage, study) == 0
    mine = claim(study, url, storage=storage, worker="host:1")
    assert adopt_unbeaten(storage, study) == 0  # the claim beat for its trial
    assert mine.number != orphan.number and study.trials[mine.number].user_attrs == {
        TICKET: "budget", "worker": "host:1"}
