"""Imported by every Python process of a mutation run (`benchmarks/mutation.sh` puts this
folder on PYTHONPATH). While mutmut records which tests reach which function, it marks
the test process with MUTANT_UNDER_TEST=stats; a process a test starts (`python -m nas`)
inherits the mark, but mutmut's recording works only in its own process and fails in
another folder. Such a process runs the code unmutated instead. With a mutant under
test, the mark is the mutant's name, and the started process runs that mutant."""

import os

if os.environ.get("MUTANT_UNDER_TEST") == "stats":
    os.environ["MUTANT_UNDER_TEST"] = ""
