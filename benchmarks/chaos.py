"""Shared studies under stress: workers killed with `kill -9`, and 1 to 8 workers at once.

Both benchmarks start real `python -m nas search +space=cnn` workers, each in its own
process, on one study in SQLite and in PostgreSQL. PostgreSQL is a throwaway server the
script starts on 127.0.0.1 (as `.ci/postgres.sh` does) and removes at the end, or the one
`--postgres-url` names (the password may come from $NAS_STORAGE_PASSWORD).

* `kill`: 3 workers of `train=supernet` on the synthetic data (smoke budgets, a supernet of
  `--supernet-epochs` epochs). The script kills a worker with SIGKILL `--kills` times and
  restarts it at once: the first `--trainer-kills` kills hit the worker training the
  supernet while it trains (found by its `supernet epoch` log lines, once the study records
  a finished epoch, a new one after each trainer kill, and the supernet is not done), the
  others a random live worker at a random moment: 0 to `--jitter` seconds after the
  study holds a number of COMPLETE trials drawn from 1 to 90 % of `--trials`, so that the
  kills spread over the search whatever the machine's speed. `--seed` makes those draws
  reproducible; which code a kill interrupts depends on the
  machine's timing. Two undisturbed single-worker runs are the references: the same
  command with the same search seed (which samples other trials after the first few: a
  study's sampler is seeded with the seed plus the trials it holds when a worker opens
  it), and a replay that runs exactly the chaos run's COMPLETE trials, queued in order
  with their parameters and own fine-tuning epochs. The checks: trial numbers contiguous;
  exactly `--trials` COMPLETE trials; none RUNNING; every FAILED trial queued again
  (unless it died `study.max_retry` times) with the parameters and fine-tuning epochs it
  was queued with or had drawn; no two COMPLETE trials with the same parameters and
  fine-tuning (polishes repeat a trial's parameters with their own `finetune_epochs`, as
  the search intends; siblings, revisits and sampled repeats never do); the supernet's
  `epochs_done` the configured epochs and its `train_epochs` (what the budget charges)
  the undisturbed run's, its claim studies deleted; the trials both studies ran with the
  same objective values, and the same front over them; every worker's last run exiting 0.
* `scale`: `--workers` (1, 2, 4, 8) workers of a cheap trial (`+debug=smoke`: synthetic
  data, one dense and one fine-tuning epoch; `train=default`) started together on a fresh
  study of `--trials` trials. The same count and repeat checks; trials per hour over the
  window from the first trial's start to the last trial's end, and over the trials
  started once every worker had opened the storage (the workers' imports, which take
  seconds of CPU each, left out); the workers' CPU time; and the storage's time,
  measured inside the workers without touching the product: the script puts a
  `sitecustomize.py` on their PYTHONPATH that wraps the methods of Optuna's storage
  classes with timers (`benchmarks/storage_timer.py`) and writes the totals at exit.

Workers run the committed code: a `git archive` of HEAD's `nas/`, `conf/` and
`search_spaces/` under the output folder, first on their PYTHONPATH (`--worktree` runs the
working tree instead), one torch thread each (OMP_NUM_THREADS=1). Results go to
`outputs/bench/chaos/<mode>-<time>/` (worker logs, studies, `results.json`, `report.md`).

Run from the repository root:

    python benchmarks/chaos.py kill                        # seed 0, 10 kills, both backends
    python benchmarks/chaos.py kill --seed 1 --backends sqlite
    python benchmarks/chaos.py scale                       # 1, 2, 4, 8 workers, both backends
    python benchmarks/chaos.py scale --workers 1 2 --trials 24 --backends postgres \\
        --postgres-url postgresql+psycopg2://nas@127.0.0.1:5432/nas
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout this script lives in, for the attr keys

from nas.record.attrs import FINETUNE_EPOCHS, NOT_RUN, REPEATS, RETRY_OF, SUPERNET  # noqa: E402
from nas.report.machine import cpu_name  # noqa: E402

SOURCES = ("nas", "conf", "search_spaces")  # what a worker imports from the code under test
TIMER = Path(__file__).with_name("storage_timer.py")
SITECUSTOMIZE = "import storage_timer\n\nstorage_timer.install_from_env()\n"
PASSWORD_VARIABLE = "NAS_STORAGE_PASSWORD"
STORAGE_CATEGORIES = ("claim", "tell", "queue", "heartbeat", "attrs", "read", "open")
# Log lines of a worker (nas/search/supernet.py, nas/search/study.py) that say where it is.
TRAINER_LINE = "supernet epoch "
WAITER_LINE = "waiting for another worker to train the study's supernet"
STARTED_LINE = "trials finished; device"


# --- the machine and the code ------------------------------------------------------------


def machine_line() -> str:
    """`machine: <CPU> (<n> cores), torch <version>, Optuna <version>, Python <version>`."""
    import torch  # only here: the script itself trains nothing

    return (
        f"machine: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, "
        f"Optuna {optuna.__version__}, Python {platform.python_version()}; "
        f"workers: 1 torch thread each"
    )


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def code_under_test(out: Path, worktree: bool) -> tuple[str, Path]:
    """The commit the workers run (with `+worktree` and the changed files when they run
    the working tree) and the folder to put first on their PYTHONPATH."""
    commit = git("rev-parse", "--short", "HEAD")
    if worktree:
        changed = git("status", "--porcelain", "--", *SOURCES).splitlines()
        label = f"{commit}+worktree" + (f" ({len(changed)} changed files)" if changed else "")
        return label, ROOT
    folder = out / f"src-{commit}"
    if not folder.is_dir():
        staging = Path(tempfile.mkdtemp(dir=out, prefix="src-"))
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD", *SOURCES],
            cwd=ROOT, check=True, capture_output=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(staging)], input=archive, check=True)
        staging.rename(folder)
    return commit, folder


# --- storages ------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server(out: Path) -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 with a password login; yields its URL
    (with the password). Stopped and its folder removed on the way out."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if not versions:
        raise SystemExit(
            "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql), "
            "or pass --postgres-url, or --backends sqlite"
        )
    bin_dir = versions[-1].parent
    folder = Path(tempfile.mkdtemp(prefix="nas-chaos-postgres."))
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(folder, "postgres")
    port = free_port()
    password = secrets.token_hex(16)
    data, log = folder / "data", folder / "server.log"
    started = False
    try:
        subprocess.run(
            [*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E",
             "UTF8", "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256"],
            check=True, capture_output=True,
        )  # fmt: skip
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                f"unix_socket_directories = '{folder}'\n"
            )
        subprocess.run(
            [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        started = True
        subprocess.run(
            [*as_owner, str(bin_dir / "psql"), "-h", str(folder), "-p", str(port), "-X", "-q",
             "-v", "ON_ERROR_STOP=1", "-d", "postgres"],
            input=f"CREATE ROLE nas LOGIN PASSWORD '{password}';\nCREATE DATABASE nas OWNER nas;\n",
            text=True, check=True, capture_output=True,
        )  # fmt: skip
        print(f"PostgreSQL {bin_dir.parent.name} started on 127.0.0.1:{port}", flush=True)
        yield f"postgresql+psycopg2://nas:{password}@127.0.0.1:{port}/nas"
    finally:
        if started:
            subprocess.run(
                [*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True,
            )  # fmt: skip
            if log.exists():
                shutil.copy(log, out / "postgres-server.log")
        shutil.rmtree(folder, ignore_errors=True)
        print("PostgreSQL stopped and removed", flush=True)


def _version(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.parent.name.split(".") if part.isdigit())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Backend:
    """Where a run's study lives: a SQLite file in the run's folder, or the server at
    `url` (PostgreSQL)."""

    name: str
    url: str | None = None

    def storage(self, folder: Path) -> str:
        """The storage URL for a run in `folder`, with its password."""
        return self.url or f"sqlite:///{folder / 'nas.db'}"


def without_password(url: str) -> tuple[str, dict[str, str]]:
    """`url` without its password, and the environment that gives workers the password
    ($NAS_STORAGE_PASSWORD), so that it stays off their command lines."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.password is None:
        return url, {}
    # URL.set(password=None) keeps the password: None there means "unchanged"
    bare = parsed._replace(password=None).render_as_string(hide_password=False)
    return bare, {PASSWORD_VARIABLE: str(parsed.password)}


def with_env_password(url: str) -> str:
    """`url` with the password from $NAS_STORAGE_PASSWORD when it names a user but none."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    password = os.environ.get(PASSWORD_VARIABLE)
    if parsed.username and parsed.password is None and password:
        return parsed.set(password=password).render_as_string(hide_password=False)
    return url


# --- workers -----------------------------------------------------------------------------


@dataclass
class Worker:
    """One worker slot: `python -m nas ARGS` in `folder`, restarted after each kill; each
    run (incarnation) logs to `worker<slot>-<run>.out` / `.err`."""

    slot: int
    args: list[str]
    folder: Path
    env: dict[str, str]
    runs: int = 0
    process: subprocess.Popen | None = None
    exit_codes: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.runs += 1
        stem = self.folder / f"worker{self.slot}-{self.runs}"
        with open(f"{stem}.out", "wb") as out, open(f"{stem}.err", "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nas", *self.args], cwd=self.folder, env=self.env,
                stdout=out, stderr=err, start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """What the current run has logged so far."""
        path = self.folder / f"worker{self.slot}-{self.runs}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """`signum` (SIGKILL: `kill -9`) to its process group, then wait for it; after
        another signal, SIGKILL if it has not ended within 60 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        try:
            self.exit_codes.append(self.process.wait(timeout=60))
        except subprocess.TimeoutExpired:
            self.kill()

    def wait(self, deadline: float) -> bool:
        """Wait for the current run to end before `deadline` (monotonic); False on timeout."""
        try:
            code = self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        self.exit_codes.append(code)
        return True


def worker_env(source: Path, timer_dir: Path | None, password: dict[str, str]) -> dict[str, str]:
    """The workers' environment: the code under test (and the storage timer) first on
    PYTHONPATH, one torch thread, unbuffered logs, no progress bars."""
    paths = [str(source)] + ([str(timer_dir)] if timer_dir else [])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")]).rstrip(":"),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "TQDM_DISABLE": "1",
        **password,
    }
    env.pop("NAS_STORAGE_TIMES", None)
    return env


def timer_folder(out: Path) -> Path:
    """A folder with the storage timer and the `sitecustomize.py` that installs it."""
    folder = out / "storage-timer"
    folder.mkdir(exist_ok=True)
    shutil.copy(TIMER, folder / TIMER.name)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return folder


def wait_all(workers: Sequence[Worker], timeout: float) -> list[int]:
    """Wait for every worker's current run; kill those still running after `timeout`
    seconds and return their slots."""
    deadline = time.monotonic() + timeout
    hung = []
    for worker in workers:
        if worker.process is not None and not worker.wait(deadline):
            hung.append(worker.slot)
            worker.kill()
    return hung


class Watch:
    """Whether study `name` at `url` has stood still for `stall` seconds: no trial added,
    none changing state, no supernet epoch finished."""

    def __init__(self, url: str, name: str, stall: float) -> None:
        self.url, self.name, self.stall = url, name, stall
        self.signature: tuple | None = None
        self.since = time.monotonic()
        self.running: list[int] = []

    def stalled(self) -> bool:
        try:
            study = optuna.load_study(study_name=self.name, storage=self.url)
            trials = study.get_trials(deepcopy=False)
            signature = (
                tuple(trial.state for trial in trials),
                SUPERNET.of(study).get("epochs_done", 0),
            )
            self.running = [t.number for t in trials if t.state == TrialState.RUNNING]
        except Exception:  # not created yet, or busy: counts as standing still
            signature = self.signature
        now = time.monotonic()
        if signature != self.signature:
            self.signature, self.since = signature, now
        return now - self.since > self.stall


def wait_watched(workers: Sequence[Worker], watch: Watch, timeout: float) -> tuple[list, str]:
    """Wait for every worker's current run. When the study stands still (`watch`) or
    `timeout` seconds pass, end the live workers with SIGTERM (as Ctrl-C would) and
    return their slots and why; ([], "") when all ended."""
    deadline = time.monotonic() + timeout
    while any(worker.alive for worker in workers):
        stalled = watch.stalled()
        if stalled or time.monotonic() > deadline:
            hung = [worker.slot for worker in workers if worker.alive]
            why = (
                f"no progress in {watch.stall:g} s, trials {watch.running} RUNNING"
                if stalled
                else f"not ended in {timeout:g} s"
            )
            print(f"  workers {hung}: {why}; ending them with SIGTERM", flush=True)
            for worker in workers:
                if worker.alive:
                    worker.kill(signal.SIGTERM)
            return hung, why
        time.sleep(2)
    for worker in workers:
        worker.wait(deadline)
    return [], ""


# --- what a study holds --------------------------------------------------------------------


def params_key(trial: FrozenTrial) -> tuple:
    """A trial's parameters (floats rounded to 6 decimals, the sparsity grid's) and its
    own fine-tuning epochs (a polish's), comparable and hashable."""
    params = tuple(
        sorted(
            (name, round(value, 6) if isinstance(value, float) else value)
            for name, value in trial.params.items()
        )
    )
    return params, FINETUNE_EPOCHS.of(trial)


def count_problems(trials: Sequence[FrozenTrial], n_trials: int) -> list[str]:
    """What breaks 'every trial counted once': numbers not 0..n-1, COMPLETE trials other
    than `n_trials`, trials left RUNNING."""
    problems = []
    numbers = sorted(trial.number for trial in trials)
    if numbers != list(range(len(numbers))):
        repeated = sorted(n for n, c in Counter(numbers).items() if c > 1)
        missing = sorted(set(range(max(numbers, default=-1) + 1)) - set(numbers))
        problems.append(f"trial numbers not contiguous: repeated {repeated}, missing {missing}")
    complete = [t.number for t in trials if t.state == TrialState.COMPLETE]
    if len(complete) != n_trials:
        problems.append(f"{len(complete)} COMPLETE trials, not n_trials={n_trials}")
    running = [t.number for t in trials if t.state == TrialState.RUNNING]
    if running:
        problems.append(f"trials left RUNNING: {running}")
    return problems


def repeated_params(trials: Sequence[FrozenTrial]) -> list[list[int]]:
    """Groups of COMPLETE trials with the same parameters and fine-tuning epochs."""
    groups: dict[tuple, list[int]] = {}
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            groups.setdefault(params_key(trial), []).append(trial.number)
    return sorted(numbers for numbers in groups.values() if len(numbers) > 1)


def unretried(trials: Sequence[FrozenTrial], max_retry: int) -> list[int]:
    """FAILED trials that no trial retries (`retry_of`), though they died fewer than
    `max_retry` times (their `retry_history`, kept by the retries, says how often)."""
    retried = {RETRY_OF.of(trial) for trial in trials if RETRY_OF.on(trial)}
    lost = []
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.number not in retried:
            deaths = len(trial.system_attrs.get("retry_history", [])) + 1
            if deaths <= max_retry:
                lost.append(trial.number)
    return lost


def dominates(a: Sequence[float], b: Sequence[float], signs: Sequence[int]) -> bool:
    """Whether values `a` dominate `b` (`signs`: +1 maximised, -1 minimised)."""
    pairs = [(s * x, s * y) for s, x, y in zip(signs, a, b, strict=True)]
    return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)


def front_keys(values: dict[tuple, Sequence[float]], signs: Sequence[int]) -> set[tuple]:
    """The keys of `values` whose values no other's dominate."""
    return {
        key
        for key, own in values.items()
        if not any(dominates(other, own, signs) for other in values.values())
    }


@dataclass
class Comparison:
    """COMPLETE trials that a study and its undisturbed reference both ran (same
    parameters and fine-tuning): how many, those whose values differ, and whether the
    fronts over them are the same."""

    common: int
    differing: list[tuple[int, int, list[float], list[float]]]
    front_same: bool
    front_size: int


def compare(
    trials: Sequence[FrozenTrial], reference: Sequence[FrozenTrial], signs: Sequence[int]
) -> Comparison:
    """`trials` against the `reference`'s on the trials both ran."""

    def by_key(study_trials: Sequence[FrozenTrial]) -> dict[tuple, FrozenTrial]:
        done = [t for t in study_trials if t.state == TrialState.COMPLETE]
        return {params_key(t): t for t in sorted(done, key=lambda t: -t.number)}  # the first

    own, theirs = by_key(trials), by_key(reference)
    common = sorted(own.keys() & theirs.keys(), key=lambda key: own[key].number)
    differing = [
        (own[key].number, theirs[key].number, own[key].values, theirs[key].values)
        for key in common
        if own[key].values != theirs[key].values
    ]
    own_front = front_keys({key: own[key].values for key in common}, signs)
    their_front = front_keys({key: theirs[key].values for key in common}, signs)
    return Comparison(len(common), differing, own_front == their_front, len(their_front))


def signs_of(study: optuna.Study) -> list[int]:
    return [1 if d == optuna.study.StudyDirection.MAXIMIZE else -1 for d in study.directions]


def trial_window(trials: Sequence[FrozenTrial]) -> float:
    """Seconds from the first COMPLETE trial's start to the last one's end."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return math.nan
    start = min(t.datetime_start for t in done)
    end = max(t.datetime_complete for t in done)
    return (end - start).total_seconds()


def states(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    return dict(Counter(trial.state.name for trial in trials))


# --- the kill benchmark --------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedKill:
    """A kill: of the supernet's trainer `delay` seconds after it is found training
    (`trainer`), or of a random live worker `delay` seconds after the study holds `after`
    COMPLETE trials."""

    trainer: bool
    delay: float
    after: int = 0


def kill_plan(
    seed: int, kills: int, trainer_kills: int, n_trials: int, jitter: float
) -> list[PlannedKill]:
    """The kills, drawn from `seed`: `trainer_kills` of the trainer (0 to 1 s after it is
    found training), then the others at COMPLETE counts drawn uniformly from 1 to 90 % of
    `n_trials` (in order; a count may repeat), each 0 to `jitter` s after the count is
    reached: spread over the search whatever the machine's speed."""
    rng = random.Random(seed)
    plan = [PlannedKill(True, rng.uniform(0.0, 1.0)) for _ in range(min(trainer_kills, kills))]
    counts = sorted(rng.randint(1, max(1, n_trials * 9 // 10)) for _ in range(kills - len(plan)))
    return plan + [PlannedKill(False, rng.uniform(0.0, jitter), count) for count in counts]


@dataclass
class Kill:
    """A kill as it landed: when (seconds after the start), which worker slot and run,
    where that worker was, the supernet's finished epochs, the RUNNING trials and the
    number of COMPLETE ones then."""

    at: float
    slot: int
    run: int
    phase: str
    epochs_done: int
    running: list[int]
    complete: int


def study_state(url: str, name: str) -> tuple[dict, list[int], int]:
    """The study's supernet record, its RUNNING trial numbers and how many trials are
    COMPLETE ({}, [], 0 before it exists or when the storage is busy)."""
    try:
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
    except Exception:  # not created yet, or locked: the next poll sees it
        return {}, [], 0
    running = [trial.number for trial in trials if trial.state == TrialState.RUNNING]
    complete = sum(trial.state == TrialState.COMPLETE for trial in trials)
    return dict(SUPERNET.of(study)), running, complete


def phase_of(worker: Worker, record: dict, epochs: int) -> str:
    """Where a worker is, from its log and the supernet record."""
    text = worker.output()
    if STARTED_LINE not in text:
        return "starting"
    if record.get("epochs_done", 0) < epochs:
        if TRAINER_LINE in text:
            return "training the supernet"
        if WAITER_LINE in text:
            return "waiting for the supernet"
        return "claiming or loading the supernet"
    return "trials"


def trainer(workers: Sequence[Worker]) -> Worker | None:
    """The live worker whose current run logs supernet epochs."""
    for worker in workers:
        if worker.alive and TRAINER_LINE in worker.output():
            return worker
    return None


def run_chaos(
    args: argparse.Namespace,
    url: str,
    command: list[str],
    folder: Path,
    env: dict[str, str],
    name: str,
) -> tuple[list[Kill], list[Worker], tuple[list[int], str], float]:
    """`--chaos-workers` workers running `command` on study `name` at `url`, killed as
    `kill_plan` says and restarted at once; returns the kills, the workers, the slots that
    did not end (the study stood still for `--stall` seconds, or `--timeout` passed) with
    the reason, and the wall seconds."""
    workers = [Worker(slot, command, folder, env) for slot in range(args.chaos_workers)]
    watch = Watch(url, name, args.stall)
    rng = random.Random(args.seed + 1)  # the random workers; the plan has its own draws
    plan = kill_plan(args.seed, args.kills, args.trainer_kills, args.trials, args.jitter)
    start = time.monotonic()
    for worker in workers:
        worker.start()
    kills: list[Kill] = []
    trainer_epochs = 0
    for planned in plan:
        if planned.trainer:
            target = None
            while any(w.alive for w in workers) and not watch.stalled():
                record, _, _ = study_state(url, name)
                done = record.get("epochs_done", 0)
                if done >= args.supernet_epochs:
                    break  # trained already: this kill is not the trainer's
                found = trainer(workers)
                if found is not None and done > trainer_epochs:
                    target = found
                    break
                time.sleep(0.2)
            if target is None:
                print("  the supernet was trained before a trainer kill could land", flush=True)
                continue
            time.sleep(planned.delay)
        else:
            while any(w.alive for w in workers) and study_state(url, name)[2] < planned.after:
                if watch.stalled():
                    break
                time.sleep(0.2)
            time.sleep(planned.delay)
            alive = [w for w in workers if w.alive]
            if not alive:
                break
            target = rng.choice(alive)
        record, running, complete = study_state(url, name)
        if not target.alive:
            continue
        phase = phase_of(target, record, args.supernet_epochs)
        target.kill()
        at = round(time.monotonic() - start, 1)
        done = record.get("epochs_done", 0)
        if planned.trainer:
            trainer_epochs = done
        kill = Kill(at, target.slot, target.runs, phase, done, running, complete)
        kills.append(kill)
        print(f"  kill {len(kills)}: {asdict(kill)}", flush=True)
        target.start()
    hung = wait_watched(workers, watch, args.timeout)
    return kills, workers, hung, time.monotonic() - start


def kill_command(
    args: argparse.Namespace, url: str, folder: Path, name: str, n_trials: int
) -> list[str]:
    """A worker's arguments for the kill benchmark."""
    return [
        "search", "+space=cnn", "+debug=smoke", "train=supernet", f"study.name={name}",
        f"study.storage={url}", f"study.artifacts={folder / 'artifacts'}",
        f"study.n_trials={n_trials}", f"seed={args.search_seed}",
        f"data.n_samples={args.samples}", f"train.supernet.epochs={args.supernet_epochs}",
        "train.supernet.bn_images=64", "study.heartbeat_interval=1",
        f"study.grace_period={args.grace_period}",
    ]  # fmt: skip


def supernet_facts(url: str, name: str, store: Path) -> dict:
    """The supernet record, its claim studies left, and how often each checkpoint was saved."""
    study = optuna.load_study(study_name=name, storage=url)
    record = dict(SUPERNET.of(study))
    claims_left = [s for s in optuna.get_all_study_names(url) if s.startswith(f"{name}:")]
    metas = optuna.artifacts.get_all_artifact_meta(study)
    saved = Counter(meta.filename for meta in metas if meta.filename.startswith("supernet-"))
    return {
        "record": record,
        "claims": study.user_attrs.get("supernet_claims"),
        "claim_studies_left": claims_left,
        "checkpoints_saved_twice": sorted(f for f, c in saved.items() if c > 1),
        "store": str(store),
    }


def replay_queue(url: str, name: str, trials: Sequence[FrozenTrial], directions) -> int:
    """Create study `name` holding, as waiting trials in order, the parameters (and own
    fine-tuning epochs) of the COMPLETE `trials`; returns how many."""
    study = optuna.create_study(study_name=name, storage=url, directions=directions)
    done = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)
    for trial in done:
        own = FINETUNE_EPOCHS(FINETUNE_EPOCHS.of(trial)) if FINETUNE_EPOCHS.on(trial) else {}
        study.enqueue_trial(trial.params, user_attrs=own, skip_if_exists=False)
    return len(done)


def kill_benchmark(args: argparse.Namespace, backend: Backend, out: Path, env_base) -> dict:
    """On one backend: the undisturbed single-worker run of the command, the chaos run,
    and the replay (one undisturbed worker running exactly the chaos run's COMPLETE
    trials); their facts and the checks."""
    stamp = out.name
    results: dict = {}
    kept: dict[str, tuple] = {}  # role: (trials, signs, study name, url)
    for role in ("undisturbed", "chaos", "replay"):
        folder = out / f"{backend.name}-{role}"
        folder.mkdir()
        name = f"chaos-{stamp}-{role}"
        url = backend.storage(folder)
        bare, password = without_password(url)
        env = env_base(password)
        n_trials = args.trials
        if role == "replay":
            chaos_study = optuna.load_study(study_name=kept["chaos"][2], storage=kept["chaos"][3])
            n_trials = replay_queue(url, name, kept["chaos"][0], chaos_study.directions)
        command = kill_command(args, bare, folder, name, n_trials)
        workers = args.chaos_workers if role == "chaos" else 1
        print(f"{backend.name} {role}: {workers} worker(s), study {name}", flush=True)
        before = load_average()
        if role == "chaos":
            kills, slots, (hung, why), wall = run_chaos(args, url, command, folder, env, name)
        else:
            worker = Worker(0, command, folder, env)
            start = time.monotonic()
            worker.start()
            hung = wait_all([worker], args.timeout)
            why = f"not ended in {args.timeout:g} s" if hung else ""
            kills, slots, wall = [], [worker], time.monotonic() - start
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
        kept[role] = (trials, signs_of(study), name, url)
        results[role] = {
            "study": name,
            "n_trials": n_trials,
            "wall_s": round(wall, 1),
            "load_before": before,
            "load_after": load_average(),
            "states": states(trials),
            "kills": [asdict(kill) for kill in kills],
            "exit_codes": {w.slot: w.exit_codes for w in slots},
            "hung": hung,
            "hung_why": why,
            "count_problems": count_problems(trials, n_trials),
            "repeated": repeated_params(trials),
            "unretried": unretried(trials, args.max_retry),
            "retry_problems": retry_problems(trials),
            "failed": [t.number for t in trials if t.state == TrialState.FAIL],
            "retries": {t.number: (RETRY_OF.of(t), t.state.name) for t in trials if RETRY_OF.on(t)},
            "supernet": supernet_facts(url, name, folder / "artifacts"),
        }
    chaos, signs = kept["chaos"][:2]
    for role in ("undisturbed", "replay"):
        results[f"vs {role}"] = asdict(compare(chaos, kept[role][0], signs))
    results["checks"] = kill_checks(results, args)
    return results


def retry_problems(trials: Sequence[FrozenTrial]) -> list[str]:
    """Retries that do not run what their dead trial was to run: parameters it was queued
    with (or had drawn) missing or changed, or other fine-tuning epochs of its own."""
    by_number = {trial.number: trial for trial in trials}
    problems = []
    for retry in trials:
        dead = by_number.get(RETRY_OF.of(retry)) if RETRY_OF.on(retry) else None
        if dead is None:
            continue
        meant = {**dead.system_attrs.get("fixed_params", {}), **dead.params}
        got = {**retry.system_attrs.get("fixed_params", {}), **retry.params}
        changed = [
            f"{key} {value!r} -> {got.get(key, 'missing')!r}"
            for key, value in meant.items()
            if key not in got or not same_value(got[key], value)
        ]
        if FINETUNE_EPOCHS.of(retry) != FINETUNE_EPOCHS.of(dead):
            changed.append(
                f"finetune_epochs {FINETUNE_EPOCHS.of(dead)} -> {FINETUNE_EPOCHS.of(retry)}"
            )
        if changed:
            problems.append(
                f"retry {retry.number} ({retry.state.name}) of trial {dead.number}: "
                + ", ".join(changed)
            )
    return problems


def same_value(a, b) -> bool:
    """Parameter values equal (numbers to 1e-9: floats go through JSON and rounding)."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return math.isclose(a, b, abs_tol=1e-9) if numbers else a == b


def kill_checks(results: dict, args: argparse.Namespace) -> dict[str, str]:
    """Each invariant of the kill benchmark: 'ok' (with a note) or what broke it."""
    chaos = results["chaos"]

    def verdict(problems: list[str]) -> str:
        return "ok" if not problems else "; ".join(problems)

    final_codes = {slot: codes[-1] for slot, codes in chaos["exit_codes"].items() if codes}
    trainer_kills = [k for k in chaos["kills"] if k["phase"] == "training the supernet"]
    clean = []
    for role in ("undisturbed", "replay"):
        run = results[role]
        clean += [f"{role}: {problem}" for problem in run["count_problems"] + run["repeated"]]
        clean += [f"{role}: exit {c}" for c in run["exit_codes"].values() if c != [0]]
    return {
        "kills landed": verdict(
            ([] if len(chaos["kills"]) == args.kills else [f"{len(chaos['kills'])} kills"])
            + ([] if trainer_kills else ["no kill while the supernet trained"])
        ),
        "every trial counted once": verdict(chaos["count_problems"]),
        "every failed trial retried": verdict(
            [f"FAILED trials {chaos['unretried']} not queued again"] if chaos["unretried"] else []
        ),
        "retries run the dead trial's parameters": verdict(chaos["retry_problems"]),
        "no repeated parameters": verdict(
            [f"COMPLETE trials {g} share parameters and fine-tuning" for g in chaos["repeated"]]
        ),
        "supernet trained once": supernet_verdict(
            chaos["supernet"], results["undisturbed"]["supernet"]["record"], args.supernet_epochs
        ),
        "same values as the undisturbed run": verdict(value_problems(results["vs undisturbed"])),
        "same values as the replay": verdict(value_problems(results["vs replay"])),
        "workers ended cleanly": verdict(
            ([f"slots {chaos['hung']}: {chaos['hung_why']}"] if chaos["hung"] else [])
            + [f"slot {s} last exit {c}" for s, c in final_codes.items() if c != 0]
        ),
        "undisturbed and replay runs clean": verdict(clean),
    }


def value_problems(comparison: dict) -> list[str]:
    """Trials whose values differ, and whether the fronts over the common trials do."""
    problems = [
        f"trial {a} (other study's {b}): {x} != {y}" for a, b, x, y in comparison["differing"]
    ]
    if not comparison["front_same"]:
        problems.append("the fronts over the common trials differ")
    return problems


def supernet_verdict(facts: dict, undisturbed: dict, epochs: int) -> str:
    """'the supernet trained once': the configured epochs done; the training epochs
    charged those of the undisturbed run's supernet, but for the rounding to 6 decimals
    that each resume carries on from (at most 1e-6 per claim); no claim study left."""
    record = facts["record"]
    problems = []
    if record.get("epochs_done") != epochs:
        problems.append(f"epochs_done {record.get('epochs_done')} != {epochs}")
    charged, expected = record.get("train_epochs", math.nan), undisturbed.get("train_epochs")
    difference = abs(charged - expected)
    claims = facts["claims"] or 1
    if not difference <= 1.01e-6 * claims:
        problems.append(f"train_epochs {charged} != undisturbed {expected}")
    if facts["claim_studies_left"]:
        problems.append(f"claim studies left: {facts['claim_studies_left']}")
    if problems:
        return "; ".join(problems)
    note = f"train_epochs {charged} = undisturbed {expected}"
    if difference:
        note = (
            f"train_epochs {charged} vs undisturbed {expected}: {difference:.0e} apart, the "
            f"record's rounding to 6 decimals carried over {claims - 1} resume(s)"
        )
    return f"ok ({note})"


def kill_report(results: dict[str, dict], args: argparse.Namespace) -> str:
    """The kill benchmark's markdown tables."""
    lines = [
        "| backend | run | wall s | trials (states) | kills | supernet epochs_done / "
        "train_epochs | claims | FAILED -> retry (its state) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, result in results.items():
        for role in ("undisturbed", "chaos", "replay"):
            run = result[role]
            record = run["supernet"]["record"]
            retried = {of: (number, state) for number, (of, state) in run["retries"].items()}
            failed = ", ".join(
                f"{f} -> {retried[f][0]} ({retried[f][1]})" if f in retried else f"{f} -> -"
                for f in run["failed"]
            )
            lines.append(
                f"| {backend} | {role} | {run['wall_s']:.0f} | "
                f"{', '.join(f'{n} {s}' for s, n in sorted(run['states'].items()))} | "
                f"{len(run['kills'])} | {record.get('epochs_done')} / "
                f"{record.get('train_epochs')} | {run['supernet']['claims']} | {failed or '-'} |"
            )
    lines += [
        "",
        "| backend | kill | at s | slot/run | where the worker was | supernet epochs done | "
        "COMPLETE trials | RUNNING trials just before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, result in results.items():
        for index, kill in enumerate(result["chaos"]["kills"], 1):
            lines.append(
                f"| {backend} | {index} | {kill['at']:.1f} | {kill['slot']}/{kill['run']} | "
                f"{kill['phase']} | {kill['epochs_done']} | {kill['complete']} | "
                f"{kill['running'] or '-'} |"
            )
    lines += ["", "| backend | check | result |", "| --- | --- | --- |"]
    for backend, result in results.items():
        for check, verdict in result["checks"].items():
            lines.append(f"| {backend} | {check} | {verdict} |")
        for role in ("undisturbed", "replay"):
            comparison = result[f"vs {role}"]
            lines.append(
                f"| {backend} | COMPLETE trials also in the {role} run | {comparison['common']} "
                f"(front over them: {comparison['front_size']} trials) |"
            )
    return "\n".join(lines)


# --- the scale benchmark -------------------------------------------------------------------


def scale_command(args: argparse.Namespace, url: str, name: str) -> list[str]:
    """A worker's arguments for the scale benchmark: the smoke trial."""
    return [
        "search", "+space=cnn", "+debug=smoke", f"study.name={name}", f"study.storage={url}",
        f"study.n_trials={args.trials}", f"seed={args.search_seed}",
    ]  # fmt: skip


def storage_totals(folder: Path) -> dict:
    """The storage timer's dumps of a run summed: seconds and calls per category, of the
    main threads and of the others (heartbeats); the workers' CPU seconds in all and from
    their first storage call on (the storage opened: the imports and the data behind
    them), their active seconds (first storage call to exit), the first and last of those
    calls' times and of their exits; `dumps`: how many workers wrote one."""
    totals = {
        "main": dict.fromkeys(STORAGE_CATEGORIES, 0.0),
        "other": dict.fromkeys(STORAGE_CATEGORIES, 0.0),
        "main_cpu_s": 0.0,  # the main threads' CPU time within storage calls
        "calls": 0,
        "cpu_s": 0.0,
        "cpu_after_open_s": 0.0,
        "active_s": 0.0,
        "first_calls": [],
        "exits": [],
        "dumps": 0,
        "methods": {},  # main threads' "category/method": [calls, seconds, CPU seconds]
    }
    for path in sorted(folder.glob("*.json")):
        dump = json.loads(path.read_text())
        totals["dumps"] += 1
        totals["cpu_s"] += dump["cpu_s"]
        totals["exits"].append(dump["exited"])
        if dump["first_call"] is not None:
            totals["active_s"] += dump["exited"] - dump["first_call"]
            totals["cpu_after_open_s"] += dump["cpu_s"] - dump["cpu_at_first_call"]
            totals["first_calls"].append(dump["first_call"])
        for key, (count, seconds, cpu) in dump["calls"].items():
            thread, category, _ = key.split("/", 2)
            totals[thread][category] += seconds
            totals["calls"] += count
            if thread == "main":
                totals["main_cpu_s"] += cpu
            if thread == "main":
                method = totals["methods"].setdefault(key.split("/", 1)[1], [0, 0.0, 0.0])
                method[0] += count
                method[1] += seconds
                method[2] += cpu
    return totals


def steady_rate(trials: Sequence[FrozenTrial], all_up: float) -> tuple[int, float]:
    """COMPLETE trials that started once every worker had opened the storage (at the
    time `all_up`) and the first trial had started, and the seconds from then to the last
    one's end."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if not done:
        return 0, math.nan
    start = max(all_up, min(t.datetime_start.timestamp() for t in done))
    steady = [t for t in done if t.datetime_start.timestamp() >= start]
    return len(steady), max(t.datetime_complete.timestamp() for t in done) - start


def scale_benchmark(args: argparse.Namespace, backend: Backend, out: Path, env_base) -> list:
    """Each worker count on one backend, on a fresh study each; their rows."""
    rows = []
    for count in args.workers:
        folder = out / f"{backend.name}-{count}w"
        times = folder / "storage-times"
        times.mkdir(parents=True)
        name = f"scale-{out.name}-{count}w"
        url = backend.storage(folder)
        bare, password = without_password(url)
        env = {**env_base(password), "NAS_STORAGE_TIMES": str(times)}
        print(f"{backend.name}: {count} worker(s), study {name}", flush=True)
        before = load_average()
        workers = [
            Worker(slot, scale_command(args, bare, name), folder, env) for slot in range(count)
        ]
        start = time.monotonic()
        for worker in workers:
            worker.start()
        hung = wait_all(workers, args.timeout)
        wall = time.monotonic() - start
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        window = trial_window(trials)
        problems = count_problems(trials, args.trials)
        repeated = repeated_params(trials)
        codes = [code for w in workers for code in w.exit_codes]
        storage = storage_totals(times)
        all_up = max(storage["first_calls"], default=math.nan)
        steady, steady_s = steady_rate(trials, all_up)
        last_end = max(
            (t.datetime_complete.timestamp() for t in trials if t.state == TrialState.COMPLETE),
            default=math.nan,
        )
        span = last_end - min(storage["first_calls"], default=math.nan)  # CPU after it: idle
        pruned = [t for t in trials if t.state == TrialState.PRUNED]
        rows.append({
            "backend": backend.name,
            "workers": count,
            "study": name,
            "wall_s": round(wall, 1),
            "window_s": round(window, 1),
            "complete": complete,
            "states": states(trials),
            "trials_per_hour": round(3600 * complete / window, 1) if window else math.nan,
            "steady_trials": steady,
            "steady_s": round(steady_s, 1),
            "steady_per_hour": round(3600 * steady / steady_s, 1) if steady else math.nan,
            "cores_busy": round(storage["cpu_after_open_s"] / span, 2),
            "pruned_repeats": sum(REPEATS.on(t) for t in pruned),
            "pruned_budget": sum(NOT_RUN.on(t) for t in pruned),
            "load_before": before,
            "load_after": load_average(),
            "exit_codes": codes,
            "hung": hung,
            "checks": {
                "every trial counted once": "; ".join(problems) or "ok",
                "no repeated parameters": "; ".join(
                    f"COMPLETE trials {g} share parameters and fine-tuning" for g in repeated
                ) or "ok",
                "workers ended cleanly": "ok" if set(codes) == {0} and not hung else f"{codes}",
            },
            "storage": storage,
        })  # fmt: skip
        print(f"  {rows[-1]['states']}, {rows[-1]['trials_per_hour']} trials/h", flush=True)
    return rows


def scale_report(rows: list[dict]) -> str:
    """The scale benchmark's markdown tables."""
    single = {row["backend"]: row for row in rows if row["workers"] == 1}
    lines = [
        "| backend | workers | COMPLETE (PRUNED: repeats, budget) | trials/h, first start to "
        "last end (s) | x 1 worker | trials/h, all workers up (trials, s) | x 1 worker | "
        "efficiency (/ N) | worker CPU s/trial after opening | cores busy | load before / "
        "after | checks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        base = single.get(row["backend"], {})
        speedup = row["trials_per_hour"] / base.get("trials_per_hour", math.nan)
        steady = row["steady_per_hour"] / base.get("steady_per_hour", math.nan)
        checks = "ok" if set(row["checks"].values()) == {"ok"} else "; ".join(
            f"{k}: {v}" for k, v in row["checks"].items() if v != "ok"
        )  # fmt: skip
        lines.append(
            f"| {row['backend']} | {row['workers']} | {row['complete']} "
            f"({row['pruned_repeats']}, {row['pruned_budget']}) | "
            f"{row['trials_per_hour']:,.0f} ({row['window_s']:.1f}) | {speedup:.2f} | "
            f"{row['steady_per_hour']:,.0f} ({row['steady_trials']}, {row['steady_s']:.1f}) | "
            f"{steady:.2f} | {steady / row['workers']:.2f} | "
            f"{row['storage']['cpu_after_open_s'] / max(row['complete'], 1):.2f} | "
            f"{row['cores_busy']:.2f} | "
            f"{row['load_before'].split()[0]} / {row['load_after'].split()[0]} | {checks} |"
        )
    lines += [
        "",
        "| backend | workers | storage s/trial | of which client CPU | claim | tell | queue | "
        "attrs | read | open | heartbeat thread s/trial | storage share of worker time | "
        "calls/trial |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        storage, n = row["storage"], max(row["complete"], 1)
        main = storage["main"]
        total = sum(main.values())
        cells = " | ".join(
            f"{main[c] / n:.3f}" for c in ("claim", "tell", "queue", "attrs", "read", "open")
        )
        other = sum(storage["other"].values())
        share = total / storage["active_s"] if storage["active_s"] else math.nan
        lines.append(
            f"| {row['backend']} | {row['workers']} | **{total / n:.3f}** | "
            f"{storage['main_cpu_s'] / n:.3f} | {cells} | "
            f"{other / n:.3f} | {share:.1%} | {storage['calls'] / n:.0f} |"
        )
    lines += [
        "",
        "| backend | workers | the main threads' 4 costliest storage methods: calls per trial "
        "x ms per call (of which client CPU) |",
        "| --- | --- | --- |",
    ]
    for row in rows:
        n = max(row["complete"], 1)
        methods = sorted(row["storage"]["methods"].items(), key=lambda item: -item[1][1])[:4]
        cells = ", ".join(
            f"{name.split('/')[1]} {calls / n:.1f} x {1000 * seconds / calls:.1f} "
            f"({1000 * cpu / calls:.1f})"
            for name, (calls, seconds, cpu) in methods
        )
        lines.append(f"| {row['backend']} | {row['workers']} | {cells} |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("kill", "scale"))
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"],
                        choices=("sqlite", "postgres"))  # fmt: skip
    parser.add_argument("--postgres-url", help="a server to use instead of a throwaway one")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/chaos"))
    parser.add_argument("--worktree", action="store_true", help="run the working tree, not HEAD")
    parser.add_argument("--search-seed", type=int, default=0, help="the studies' seed")
    parser.add_argument("--timeout", type=float, default=1800, help="s for workers to end")
    parser.add_argument(
        "--stall", type=float, default=300, help="kill: s without progress that end the run"
    )
    kill = parser.add_argument_group("kill")
    kill.add_argument("--seed", type=int, default=0, help="draws of the kills")
    kill.add_argument("--kills", type=int, default=10)
    kill.add_argument(
        "--trainer-kills", type=int, default=2, help="of them, kills of the supernet's trainer"
    )
    kill.add_argument(
        "--jitter", type=float, default=2.0, help="s after its trial count a kill waits, at most"
    )
    kill.add_argument("--chaos-workers", type=int, default=3)
    kill.add_argument("--supernet-epochs", type=int, default=10)
    kill.add_argument("--samples", type=int, default=1200, help="synthetic images")
    kill.add_argument("--grace-period", type=int, default=5)
    kill.add_argument("--max-retry", type=int, default=3, help="the study's (study.max_retry)")
    scale = parser.add_argument_group("scale")
    scale.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, help="n_trials (kill: 80, scale: 160)")
    args = parser.parse_args()
    args.trials = args.trials or (80 if args.mode == "kill" else 160)
    optuna.logging.set_verbosity(optuna.logging.ERROR)

    out = args.out.resolve() / f"{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True)
    commit, source = code_under_test(args.out.resolve(), args.worktree)
    timer = timer_folder(out) if args.mode == "scale" else None
    header = [
        f"command: python benchmarks/chaos.py {' '.join(sys.argv[1:])}",
        f"commit: {commit}",
        machine_line(),
        f"started {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load_average()}",
    ]
    print("\n".join(header), flush=True)

    def env_base(password: dict[str, str]) -> dict[str, str]:
        return worker_env(source, timer, password)

    results: dict = {}
    with contextlib.ExitStack() as stack:
        for name in args.backends:
            if name == "sqlite":
                backend = Backend("sqlite")
            else:
                url = args.postgres_url or stack.enter_context(postgres_server(out))
                backend = Backend("postgres", with_env_password(url))
            if args.mode == "kill":
                results[name] = kill_benchmark(args, backend, out, env_base)
            else:
                results[name] = scale_benchmark(args, backend, out, env_base)
    if args.mode == "kill":
        report = kill_report(results, args)
    else:
        report = scale_report([row for rows in results.values() for row in rows])
    footer = f"ended {time.strftime('%Y-%m-%d %H:%M:%S')}, load average {load_average()}"
    text = "\n".join(header) + "\n\n" + report + "\n\n" + footer + "\n"
    (out / "report.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print("\n" + report + "\n\n" + footer)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
