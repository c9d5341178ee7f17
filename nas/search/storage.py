"""Where a study lives: the storage URL, its password, the RDB storage with heartbeats
(signals held during its calls), the artifact folder, and opening a study only if it is
one this search can continue; the supernet's claim studies, kept out of what the
commands that read a storage list."""

from __future__ import annotations

import random
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from nas.errors import UsageError, failure_reason, root_cause
from nas.optuna_internals import held_storage
from nas.record.attrs import SPACE
from nas.record.measures import objective_names
from nas.search.interrupts import INTERRUPTS
from nas.search.recorded import setting_changes
from nas.search.secrets import hide_secret, with_password, without_password
from nas.trial.objectives import Objectives

# What opening a storage raises for a bad URL, an unreachable server, a file that is not
# a database, a missing driver, or a schema of another Optuna version.
STORAGE_ERRORS = (SQLAlchemyError, StorageInternalError, ImportError, ValueError, RuntimeError)


def storage_location(
    storage: str | None, artifacts: str | None, launch_dir: Path
) -> tuple[str, Path]:
    """The storage URL (see `storage_url`) and the artifact folder (see `artifact_dir`);
    UsageError when `storage` is not a database URL at all."""
    try:
        url = storage_url(storage, launch_dir)
        return url, artifact_dir(url, artifacts, launch_dir)
    except ArgumentError as error:
        raise UsageError(
            f"study.storage is not a database URL: {without_password(str(storage))!r} "
            f"(e.g. sqlite:///path/to/nas.db or postgresql+psycopg2://user@host/db)"
        ) from error


def io_failure(error: BaseException) -> str | None:
    """One line for `error` when a file or the study's storage failed under a command (a
    read-only or full disk, a database server gone); None for any other error."""
    if isinstance(error, OSError):
        return failure_reason(error)
    if isinstance(error, (SQLAlchemyError, StorageInternalError)):
        return f"the study storage failed: {hide_secret(failure_reason(root_cause(error)))}"
    return None


def storage_error(url: str, error: BaseException) -> UsageError:
    """The one-line error for a storage at `url` that failed to open with `error`; a
    missing database driver says which one the project's `postgres` extra brings."""
    cause = root_cause(error)
    hint = (
        "; the project's PostgreSQL driver comes with pip install 'nas[postgres]' "
        "(psycopg2: postgresql+psycopg2://...)"
        if isinstance(cause, ModuleNotFoundError)
        else ""
    )
    return UsageError(
        f"cannot open the study storage {without_password(url)} (study.storage): "
        f"{hide_secret(failure_reason(cause))}{hint}"
    )


DEFAULT_STORAGE = "sqlite:///outputs/nas.db"


def storage_url(storage: str | None, launch_dir: Path) -> str:
    """`storage` (by default `DEFAULT_STORAGE`), with the password from
    $NAS_STORAGE_PASSWORD filled in when the URL names a user but no password; a SQLite
    file given by a relative path is taken from `launch_dir`, its folder created."""
    url = with_password(storage or DEFAULT_STORAGE)
    database = sqlite_file(url)
    if database is None or database.is_absolute():
        return url
    path = launch_dir / database
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_url(url).set(database=str(path)).render_as_string(hide_password=False)


def artifact_dir(storage: str, artifacts: str | None, launch_dir: Path) -> Path:
    """The artifact store's folder: `artifacts` if given; else beside a SQLite file
    (`nas.db` -> `nas-artifacts/`); else `outputs/artifacts` under `launch_dir`."""
    if artifacts:
        return Path(artifacts)
    database = sqlite_file(storage)
    if database is not None:
        return database.with_name(f"{database.stem}-artifacts")
    return launch_dir / "outputs" / "artifacts"


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite `url`; None for another backend or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


TABLE_CREATION_ATTEMPTS = 5


def open_storage(
    url: str,
    heartbeat_interval: int,
    grace_period: int,
    on_stale_trial: Callable[[optuna.Study, FrozenTrial], None],
) -> BaseStorage:
    """An RDB storage whose running trials beat every `heartbeat_interval` seconds; a trial
    silent for `grace_period` seconds is failed and handed to `on_stale_trial`. A signal
    arriving while it opens or inside any of its calls takes effect once that call is
    over (see `nas.search.interrupts`): a call cut short would leave a transaction open."""
    backend = make_url(url).get_backend_name()
    # SQLite: several local workers wait for each other's writes instead of failing.
    engine_kwargs = (
        {"connect_args": {"timeout": 60}} if backend == "sqlite" else {"pool_pre_ping": True}
    )

    def connect() -> BaseStorage:
        with INTERRUPTS.holding(), warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=on_stale_trial,
            )
            if sqlite_file(url):  # a file that local workers share
                _begin_immediately(storage.engine)
        return held_storage(storage, INTERRUPTS.holding)

    for _ in range(TABLE_CREATION_ATTEMPTS - 1):
        try:
            return connect()
        except (IntegrityError, OperationalError, ProgrammingError) as error:
            # Workers that reach an empty database together race to create Optuna's
            # tables (optuna/optuna#1092); the losers try again once the tables exist.
            if not (isinstance(error, IntegrityError) or "already exists" in str(error)):
                raise
            time.sleep(random.uniform(0.2, 1.0))
    return connect()


def _begin_immediately(engine: Engine) -> None:
    """Make every transaction of a SQLite `engine` take the write lock when it begins.

    Optuna claims a waiting trial by reading that it is WAITING and then writing RUNNING;
    its row lock (SELECT ... FOR UPDATE) means nothing to SQLite, so two workers could both
    read WAITING and run the same trial twice. `BEGIN IMMEDIATE` makes the read and the
    write one step. This is SQLAlchemy's documented recipe for pysqlite's transactions.
    """

    @event.listens_for(engine, "connect")
    def _leave_transactions_to_sqlalchemy(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _take_the_write_lock(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners get them too


def open_study(
    storage: BaseStorage,
    name: str,
    space: str,
    objectives: Objectives,
    settings: dict[str, Any],
) -> optuna.Study:
    """Load the study `name` if it exists and is a search of `space` with `objectives` and
    the trial `settings` it records (see `nas.search.recorded.trial_settings`); otherwise
    create it. A study of another kind raises UsageError, untouched."""
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            directions=list(objectives.directions),
            load_if_exists=True,
        )
    else:
        study = optuna.load_study(study_name=name, storage=storage)
        _check_compatible(study, space, objectives)
        _check_same_settings(study, settings)
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            study.set_metric_names(list(objectives.names))
    if not SPACE.on(study):
        SPACE.set(study, space)
    return study


def _check_compatible(study: optuna.Study, space: str, objectives: Objectives) -> None:
    """Raise UsageError unless `study` optimises `objectives` over `space`."""
    directions = tuple(direction.name.lower() for direction in study.directions)
    names = objective_names(study)
    if (directions, names) != (objectives.directions, objectives.names):
        stored = ", ".join(f"{n} ({d})" for n, d in zip(names, directions, strict=False))
        raise UsageError(
            f"study {study.study_name!r} already exists with other objectives ({stored}), "
            f"not {', '.join(objectives.names)}; choose another study.name or study.objectives"
        )
    stored_space = SPACE.of(study) or space
    if stored_space != space:
        raise UsageError(
            f"study {study.study_name!r} already exists for space {stored_space!r}, not "
            f"{space!r}; choose another study.name"
        )


def _check_same_settings(study: optuna.Study, settings: dict[str, Any]) -> None:
    """Raise UsageError, naming the differences, unless `study` records `settings`."""
    changes = setting_changes(study, settings)
    if changes:
        raise UsageError(
            f"study {study.study_name!r} was made with other settings: {', '.join(changes)}; "
            f"use another study.name or the same settings"
        )


def claim_study_name(study_name: str, number: int) -> str:
    """The name of claim `number` on training the supernet of `study_name` (see
    `nas.search.supernet`): a study of its own, which exists while the supernet trains."""
    return f"{study_name}:supernet-claim-{number}"


def is_claim(study_name: str) -> bool:
    """Whether `study_name` is a claim's (`claim_study_name`), not a search's."""
    return re.fullmatch(r".*:supernet-claim-\d+", study_name) is not None


class WithoutClaims(optuna.storages.RDBStorage):
    """An RDB storage that lists no claim study: what `report`, `export` and the
    dashboard read."""

    def get_all_studies(self) -> list[optuna.study.FrozenStudy]:
        return [study for study in super().get_all_studies() if not is_claim(study.study_name)]


def existing_storage(url: str) -> optuna.storages.RDBStorage:
    """The storage at `url`, listing no claim study (`WithoutClaims`), which must already
    exist: a missing SQLite file raises UsageError instead of being created empty."""
    database = sqlite_file(url)
    if database is not None and not database.is_file():
        raise UsageError(
            f"no study database at {database}: run a search first, or point study.storage at one"
        )
    return WithoutClaims(url)


def made_by_nas(study: optuna.Study) -> optuna.Study:
    """`study`, unless nas cannot read it: a UsageError when its objectives are not
    nas's (unnamed, and not the default accuracy, nonzero_params, flops)."""
    names = objective_names(study)
    if len(names) != len(study.directions):
        raise UsageError(
            f"study {study.study_name!r} was not made by nas: it has "
            f"{len(study.directions)} unnamed objectives, where a nas study has "
            f"{', '.join(names[:-1])} and {names[-1]} (or names its own)"
        )
    return study


def load_named_study(storage: optuna.storages.RDBStorage, name: str | None) -> optuna.Study:
    """The study `name` in `storage`; with no name, its only study. UsageError otherwise,
    listing the studies there."""
    names = [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
    if name is None and len(names) == 1:
        name = names[0]
    if name is None:
        raise UsageError(
            f"no study.name given; studies in {without_password(storage.url)}: "
            f"{', '.join(names) or 'none'}"
        )
    if name not in names:
        listed = ", ".join(repr(n) for n in names) or "none"
        raise UsageError(f"no study {name!r} in study.storage; studies there: {listed}")
    return optuna.load_study(study_name=name, storage=storage)
