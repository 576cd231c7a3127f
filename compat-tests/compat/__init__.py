"""vufuse's compatibility harness: real FUSE programs × real workloads × backends.

Each program is mounted once per backend by one generated POSIX shell script (mount, wait,
workloads, test suites, unmount) that runs unchanged on the real kernel FUSE (``kernel``) and
inside ``vufuse run`` as an ordinary user (``vufuse``). The same workload commands also run on a
plain directory holding what the mount should show (the *reference*); a row passes when the
normalised outputs and exit statuses agree. Everything a script prints goes to files, so a run
can be compared, reported and debugged after the fact.

Entry point: ``compat-tests/run.py`` (or ``python -m compat`` from ``compat-tests/``).
"""
