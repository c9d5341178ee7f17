"""A test hook that tests/nas_forks.py imports: in a forked command whose environment sets
NAS_TEST_WRITE_FAULT, writes fail as on a read-only or full disk. `read-only-db`: every
SQL statement that writes fails as SQLite's on a read-only file (`attempt to write a
readonly database`); `full-store`: every file written into an artifact store fails with
ENOSPC. Without it, nothing changes.
tests/test_storage_faults.py runs the commands under these faults."""

import errno
import os
import sqlite3

from optuna.artifacts import FileSystemArtifactStore
from sqlalchemy import event
from sqlalchemy.engine import Engine

FAULT = "NAS_TEST_WRITE_FAULT"


WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "REPLACE")


@event.listens_for(Engine, "before_cursor_execute")
def _refuse_writes(_connection, _cursor, statement: str, *_args) -> None:
    if os.environ.get(FAULT) == "read-only-db" and statement.lstrip().upper().startswith(WRITES):
        raise sqlite3.OperationalError("attempt to write a readonly database")


_write = FileSystemArtifactStore.write


def _write_unless_full(self: FileSystemArtifactStore, artifact_id: str, content_body) -> None:
    if os.environ.get(FAULT) == "full-store":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), artifact_id)
    _write(self, artifact_id, content_body)


FileSystemArtifactStore.write = _write_unless_full
