"""Times a worker's Optuna storage calls from outside the product: `benchmarks/chaos.py`
copies this file into a temporary folder beside a `sitecustomize.py` that calls
`install_from_env()`, and puts that folder on the workers' PYTHONPATH. With
$NAS_STORAGE_TIMES set to a folder, every public method of Optuna's `RDBStorage` and
`_CachedStorage` is wrapped with a wall-clock timer (a call made inside another timed call
is not counted again), and at exit the process writes its totals to `<folder>/<pid>.json`:

    {"pid": ..., "started": ..., "first_call": ..., "exited": ..., "cpu_s": ...,
     "cpu_at_first_call": ...,
     "calls": {"<thread>/<category>/<method>": [count, seconds, cpu_seconds], ...}}

(times from `time.time()`; the process's CPU seconds from `time.process_time()`; a call's
`seconds` of wall-clock time, its `cpu_seconds` of the calling thread's CPU time,
`time.thread_time()`: the client's own work, the rest is waiting for the database, its
locks, the disk or a core).

`thread` is `main` or `other` (Optuna's heartbeat thread, the supernet's heartbeat);
`category` is what the call does for a search (see `category`). Without the variable,
importing this module changes nothing.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import json
import os
import threading
import time
from pathlib import Path

VARIABLE = "NAS_STORAGE_TIMES"

# Methods that never reach the database: not worth a timer.
UNTIMED = {
    "get_heartbeat_interval",
    "get_heartbeat_stale_trial_callback",
    "get_failed_trial_callback",
    "remove_session",
}
ATTRS = {
    "set_trial_param",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "set_trial_intermediate_value",
    "set_study_user_attr",
    "set_study_system_attr",
}
HEARTBEAT = {"record_heartbeat", "_get_stale_trial_ids"}
OPEN = {"__init__", "create_new_study", "delete_study", "get_all_studies", "upgrade"}


def category(method: str, args: tuple, kwargs: dict) -> str:
    """What a storage call does for a search:

    * claim: a new trial created for the sampler (`create_new_trial` without a template),
      or a waiting trial set RUNNING;
    * queue: a trial added with a template (`enqueue_trial`, a retry's `add_trial`);
    * tell: a trial's state set to anything but RUNNING (finished, failed, pruned);
    * heartbeat: a heartbeat written, or stale trials looked for;
    * attrs: a parameter or attribute written;
    * open: the storage opened, a study created, listed or deleted;
    * read: everything else (trials and study attributes read).
    """
    if method == "create_new_trial":
        template = args[1] if len(args) > 1 else kwargs.get("template_trial")
        return "claim" if template is None else "queue"
    if method == "set_trial_state_values":
        state = args[1] if len(args) > 1 else kwargs.get("state")
        return "claim" if getattr(state, "name", None) == "RUNNING" else "tell"
    if method in HEARTBEAT:
        return "heartbeat"
    if method in ATTRS:
        return "attrs"
    if method in OPEN:
        return "open"
    return "read"


class Totals:
    """Calls and seconds per `thread/category/method`, shared by the process's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, list] = {}
        self.started = time.time()
        self.first_call: float | None = None
        self.cpu_at_first_call: float | None = None
        self.local = threading.local()

    def timed(self, method: str, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            depth = getattr(self.local, "depth", 0)
            if depth:  # inside another timed call: counted there
                return function(*args, **kwargs)
            self.local.depth = 1
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - start
                cpu = time.thread_time() - cpu
                self.local.depth = 0
                main = threading.current_thread() is threading.main_thread()
                key = f"{'main' if main else 'other'}/{category(method, args[1:], kwargs)}/{method}"
                with self.lock:
                    if self.first_call is None:
                        self.first_call = time.time() - seconds
                        self.cpu_at_first_call = time.process_time()
                    entry = self.calls.setdefault(key, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += seconds
                    entry[2] += cpu

        return wrapper

    def dump(self, folder: Path) -> None:
        with self.lock:
            record = {
                "pid": os.getpid(),
                "started": self.started,
                "first_call": self.first_call,
                "exited": time.time(),
                "cpu_s": time.process_time(),
                "cpu_at_first_call": self.cpu_at_first_call,
                "calls": self.calls,
            }
        (folder / f"{os.getpid()}.json").write_text(json.dumps(record))


def install(folder: Path) -> Totals:
    """Wrap the storage classes' methods; write the totals to `folder` at exit."""
    from optuna.storages import RDBStorage

    from nas.optuna_internals import CachedStorage

    totals = Totals()
    for cls in (RDBStorage, CachedStorage):
        for name, value in list(vars(cls).items()):
            public = not name.startswith("_") or name in ("__init__", "_get_stale_trial_ids")
            if inspect.isfunction(value) and public and name not in UNTIMED:
                setattr(cls, name, totals.timed(name, value))
    atexit.register(totals.dump, folder)
    return totals


def install_from_env() -> None:
    """`install` into $NAS_STORAGE_TIMES, when it is set."""
    folder = os.environ.get(VARIABLE)
    if folder:
        install(Path(folder))
