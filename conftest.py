"""What the whole suite shares.

Derandomised property tests, a throwaway cache folder, and a way to run a command that file
permissions bind even as root.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run and machine, and keep no database.
settings.register_profile("graceful", derandomize=True, database=None, deadline=None)
settings.load_profile("graceful")

# Anything the suite caches (benchmark data, derived arrays) goes to a temporary folder,
# never to the user's ~/.cache/graceful; each xdist worker gets its own.
_CACHE = tempfile.mkdtemp(prefix="graceful-test-cache-")
os.environ["GRACEFUL_CACHE"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)


@pytest.fixture
def as_unprivileged():
    """Run a command so that file permissions bind it, even when the suite runs as root.

    Root writes through chmod, so a test of read-only files would prove nothing there; the
    command runs under util-linux's setpriv without the two capabilities that override file
    permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH).
    """

    def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        prefix: list[str] = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without util-linux's setpriv to drop privileges")
            caps = "-dac_override,-dac_read_search"
            prefix = [setpriv, "--bounding-set", caps, "--inh-caps", caps, "--"]
        return subprocess.run(
            [*prefix, *map(str, argv)], capture_output=True, text=True, check=False, **kwargs
        )

    return run
