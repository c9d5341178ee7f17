"""`python -m nas` without its seconds of imports: a server for `tests.conftest.forked_nas`.

It imports the command's modules once, then for each JSON line on stdin (args, cwd, env,
timeout, stdout, stderr) forks a child that is `python -m nas ARGS` run in `cwd` with the
variables `env` added to its environment, its output written to the files `stdout` and
`stderr` (its own fds 1 and 2), killed by SIGALRM after `timeout` seconds: the same code,
exit status, tracebacks, warnings, logging and atexit functions as a new interpreter; only
its modules come already imported, and are not torn down at its exit (so variables read
at start-up, such as PYTHONPATH, are not seen). Answers each line with the child's exit
status. It also imports the test hooks `signal_hook` and `write_faults`, which `env` can
switch on.
"""

import atexit
import json
import math
import os
import runpy
import signal
import sys
import threading

# The slow part of a start: the commands, the modules they import late, and what torch and
# optuna import at a run's first training step, export or database.
import alembic.context  # noqa: F401
import signal_hook  # noqa: F401  (the test hook tests/signal_hook.py, beside this script)
import sqlalchemy.dialects.sqlite  # noqa: F401
import sqlalchemy.orm  # noqa: F401
import torch._dynamo  # noqa: F401
import torch.export  # noqa: F401
import write_faults  # noqa: F401  (the test hook tests/write_faults.py)

import nas.cli.commands  # noqa: F401
import nas.report.export  # noqa: F401
import nas.report.plots  # noqa: F401
import nas.search.weights  # noqa: F401
import nas.studies.baseline  # noqa: F401
import nas.studies.cross_validation  # noqa: F401
import nas.studies.retrain  # noqa: F401
import nas.studies.sensitivity  # noqa: F401

for line in sys.stdin:
    run = json.loads(line)
    child = os.fork()
    if child == 0:
        os.chdir(run["cwd"])
        os.environ.update(run["env"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(run[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.path[0] = run["cwd"]  # as `python -m` puts it
        sys.argv = ["nas", *run["args"]]
        signal.alarm(math.ceil(run["timeout"]))
        try:  # it ends in sys.exit(main())
            runpy.run_module("nas", run_name="__main__", alter_sys=True)
            status = 0  # the status of a `python -m nas` whose __main__ returned
        except SystemExit as exit:  # as the interpreter reads sys.exit's argument
            if exit.code is None or isinstance(exit.code, int):
                status = exit.code or 0
            else:
                print(exit.code, file=sys.stderr)
                status = 1
        # what the interpreter does at exit, less tearing down every module (seconds, with
        # torch's): wait for non-daemon threads, run the atexit functions, flush
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    print(os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
