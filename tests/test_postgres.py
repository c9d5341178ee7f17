"""Two workers share one study on a real PostgreSQL server.

Runs only with NAS_TEST_POSTGRES_URL=postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB (and the
driver: pip install -e ".[postgres]"); .ci/run starts a throwaway server and sets it, together
with NAS_REQUIRE_POSTGRES=1, which turns a skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import optuna
import pytest
from sqlalchemy.engine import make_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

URL_VARIABLE = "NAS_TEST_POSTGRES_URL"
REQUIRE_VARIABLE = "NAS_REQUIRE_POSTGRES"
N_TRIALS = 6
TIMEOUT_S = 300


@pytest.fixture
def postgres_url() -> str:
    """The server's URL from NAS_TEST_POSTGRES_URL: skips without it, unless required."""
    required = os.environ.get(REQUIRE_VARIABLE) == "1"

    def unavailable(reason: str) -> None:
        if required:
            pytest.fail(f"{REQUIRE_VARIABLE}=1 but {reason}", pytrace=False)
        pytest.skip(reason)

    url = os.environ.get(URL_VARIABLE)
    if not url:
        unavailable(
            f"no PostgreSQL server: set {URL_VARIABLE}=postgresql+psycopg2://USER:PASSWORD@"
            "HOST:PORT/DB to run this test (.ci/run starts a server and sets it)"
        )
    try:
        import psycopg2  # noqa: F401
    except ImportError as error:
        unavailable(
            f'the PostgreSQL driver cannot be imported ({error}): pip install -e ".[postgres]"'
        )
    return url


def test_two_workers_share_one_study(postgres_url, tmp_path):
    name = f"test-postgres-{uuid.uuid4().hex}"
    command = [
        sys.executable, "-m", "nas", "search", "+space=cnn", "+debug=smoke",
        f"study.name={name}", f"study.storage={postgres_url}", f"study.n_trials={N_TRIALS}",
    ]  # fmt: skip
    # Output goes to files, outside outputs/: a full pipe cannot stall a worker.
    logs = [(tmp_path / f"worker{i}.stdout", tmp_path / f"worker{i}.stderr") for i in range(2)]
    workers = []
    try:
        for stdout, stderr in logs:
            with stdout.open("wb") as out, stderr.open("wb") as err:
                workers.append(subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=err))
        deadline = time.monotonic() + TIMEOUT_S
        for worker in workers:
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    outputs = [(stdout.read_bytes(), stderr.read_bytes()) for stdout, stderr in logs]
    for i, (worker, (_, stderr)) in enumerate(zip(workers, outputs, strict=True)):
        tail = stderr.decode(errors="replace")[-3000:]
        assert worker.returncode == 0, f"worker {i} exited {worker.returncode}:\n{tail}"

    study = optuna.load_study(study_name=name, storage=postgres_url)
    states = [trial.state.name for trial in study.trials]
    assert states.count("COMPLETE") == N_TRIALS, f"trial states: {states}"
    numbers = [trial.number for trial in study.trials]
    assert len(numbers) == len(set(numbers)), f"trial numbers: {numbers}"

    password = make_url(postgres_url).password
    assert password, f"{URL_VARIABLE} has no password to look for"
    secret = password.encode()
    for i, (stdout, stderr) in enumerate(outputs):
        assert secret not in stdout, f"worker {i} printed the storage password on stdout"
        assert secret not in stderr, f"worker {i} printed the storage password on stderr"
    files = sorted(path for path in (tmp_path / "outputs").rglob("*") if path.is_file())
    leaks = [str(path.relative_to(tmp_path)) for path in files if secret in path.read_bytes()]
    assert not leaks, f"the storage password is written in {leaks}"
