import os
import sys

# Tests import their shared helpers (tests/oracle.py) as plain modules.
sys.path.insert(0, os.path.dirname(__file__))

from hypothesis import settings  # noqa: E402

# CI replays the same examples every run, so a red build always means a change, never a new random draw;
# local runs keep exploring fresh examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
