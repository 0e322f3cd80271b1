"""What the whole suite shares: derandomised property tests and a throwaway cache folder."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

from hypothesis import settings

# Property tests draw the same examples on every run and machine, and keep no database.
settings.register_profile("graceful", derandomize=True, database=None, deadline=None)
settings.load_profile("graceful")

# Anything the suite caches (benchmark data, derived arrays) goes to a temporary folder,
# never to the user's ~/.cache/graceful; each xdist worker gets its own.
_CACHE = tempfile.mkdtemp(prefix="graceful-test-cache-")
os.environ["GRACEFUL_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
