"""Integration tests: whole workflows through the public surfaces (the CLI, discover, the
demo, the README's code, the examples), apart from the unit tests of each layer in tests/.
All are marked ``integration``: ``pytest -m "not integration"`` runs the unit tests alone."""

import pytest


def pytest_collection_modifyitems(config, items):
    here = __file__.rpartition("/")[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
