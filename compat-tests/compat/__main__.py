"""``python -m compat`` (from compat-tests/, or with it on PYTHONPATH): the same as run.py."""

import sys

from .cli import main

sys.exit(main())
