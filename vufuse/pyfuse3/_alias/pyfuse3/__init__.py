"""Opt-in alias: ``import pyfuse3`` gives vufuse's pure-Python implementation.

Only active when this directory (vufuse/pyfuse3/_alias) is first on sys.path, e.g. through
PYTHONPATH or ``python -m vufuse.pyfuse3.run``; a pyfuse3 installed normally is never shadowed
otherwise. Replacing our own sys.modules entry makes ``pyfuse3`` and ``vufuse.pyfuse3`` the very
same module object, so module state (the session, ``pyfuse3.trio``) is shared.
"""

import sys

import vufuse.pyfuse3 as _implementation

sys.modules[__name__] = _implementation
