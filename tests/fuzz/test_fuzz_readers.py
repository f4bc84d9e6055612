"""Fuzzing the readers with mutated real files (issue 14, point 7): every case ends in a
loaded result or the reader's typed one-line error, in bounded time (`harness.py`)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import OPS, mutate, run_case, seeds

EXAMPLES = {"midi": 150, "musicxml": 40, "kern": 40, "plan": 150, "cue": 150}

edits = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 2**31),
                           st.binary(min_size=0, max_size=8)), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def seed_files(tmp_path_factory):
    return seeds(tmp_path_factory.mktemp("seeds"))


def test_the_seeds_load_unmutated(seed_files):
    for kind, (suffix, data) in seed_files.items():
        assert run_case(kind, suffix, data) == "loaded", kind


def test_mutation_ops_change_the_bytes():
    data = b"MThd\x00\x00\x00\x06" + bytes(range(40))
    assert mutate(data, [("chunk_length", 0, b"\xff\xff\xff\xf0")])[4:8] == b"\xff\xff\xff\xf0"
    assert mutate(data, [("truncate", 10, b"")]) == data[:10]
    assert len(mutate(data, [("insert", 3, b"abc")])) == len(data) + 3
    assert mutate(data, [("flip", 9, b"")]) != data


@pytest.mark.parametrize("kind", list(EXAMPLES))
def test_mutated_files_load_or_are_refused_with_the_typed_error(kind, seed_files):
    suffix, seed = seed_files[kind]

    @settings(max_examples=EXAMPLES[kind], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(edits)
    def case(e):
        run_case(kind, suffix, mutate(seed, e))  # raises on anything but the typed error

    case()
