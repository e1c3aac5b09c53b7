"""The linker fixture shared by test_linking.py and test_history.py."""

import pytest

from stream.linking import Linker, default_linker


@pytest.fixture(scope="module")
def L() -> Linker:
    return default_linker()
