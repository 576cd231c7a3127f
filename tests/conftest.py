"""Suite-wide settings: where hypothesis keeps its examples, and the shared markers.

The main suite runs as an ordinary user who cannot write into the checkout, so hypothesis
gets a database in a temp dir instead of ./.hypothesis.

Layout rule: test directories are not packages, so every test module needs a basename unique
across tests/, and shared helpers live in a module named for its directory (e2ehelp.py,
producthelp.py, sessionhelp.py) that tests import — never `from conftest import`, which
resolves to whichever conftest.py came first on sys.path.
"""

import os
import tempfile

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile(
    "vufuse",
    database=DirectoryBasedExampleDatabase(
        os.path.join(tempfile.gettempdir(), f"vufuse-hypothesis-{os.getuid()}")
    ),
    deadline=None,
)
settings.load_profile("vufuse")
