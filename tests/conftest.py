"""Fixtures and hooks of the template's tests; the helpers they use are in bakery.py.

Bakes used by several tests are made once per session and cached by their answers.
"""

from pathlib import Path

import pytest
from bakery import COMBINATIONS, bake, combo_id


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """baked(answers) -> project directory, baked once per session for each set of answers."""
    cache: dict[str, Path] = {}

    def get(answers: dict) -> Path:
        key = combo_id(answers)
        if key not in cache:
            cache[key] = bake(tmp_path_factory.mktemp(key), **answers)
        return cache[key]

    return get


@pytest.fixture(params=COMBINATIONS, ids=combo_id)
def combination(request) -> dict:
    """Each combination of the choice options, one test id each."""
    return request.param


def pytest_collection_modifyitems(items):
    """Fast tests first, so their verdict comes before the slow ones install whole projects."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)
