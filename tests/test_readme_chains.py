"""The README tour's chains that do not lead to the server (tests/test_readme.py runs that one).

A file of its own so that pytest-xdist (``--dist loadfile``) hands it to another worker than tests/test_readme.py:
the tour's wall time becomes its longest chain's. ``tests.test_readme.tour_chains`` says how the tour is cut, and a
test there checks the cut.
"""

from __future__ import annotations

import json

import pytest

from tests.test_readme import run_tour


@pytest.mark.timeout(1800)  # as the server's chain: a loaded shared machine runs the small trainings several times slower
def test_readme_tour_other_chains_run_in_order_with_small_settings(tmp_path):
    seconds = run_tour(tmp_path, small=True, chains="others")
    print(json.dumps(seconds, indent=1))
