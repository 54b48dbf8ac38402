"""A cell's random streams: declared once with a name, never two names on one salt by accident,
and no module seeds numpy with a salt of its own outside `harness/streams.py`."""

from __future__ import annotations

import re

import pytest

from helpers import REPO
from recsec.harness import streams


def test_a_purpose_declared_again_is_the_same_and_a_taken_salt_is_refused():
    first = streams.purpose("test: first", 0x7E57)
    assert streams.purpose("test: first", 0x7E57) is first
    with pytest.raises(ValueError, match="reuses the salt of 'test: first'"):
        streams.purpose("test: second", 0x7E57)
    shared = streams.purpose("test: second", 0x7E57, shares=first)
    assert shared.rng(3).integers(1000) == first.rng(3).integers(1000)
    with pytest.raises(ValueError, match="declared twice"):
        streams.purpose("test: first", 0x7E58)


def test_salted_streams_differ_by_purpose_and_repeat_by_seed():
    a, b = streams.purpose("test: a", 0x7E59), streams.purpose("test: b", 0x7E5A)
    assert a.rng(0).integers(2**31) != b.rng(0).integers(2**31)
    assert a.seed(11) == a.seed(11) and a.seed(11) != a.seed(12)
    offset = streams.purpose("test: offset", offset=0x7E5B)
    assert offset.seed(1) == 1 + 0x7E5B
    with pytest.raises(TypeError):
        offset.rng(1)


def test_every_stream_of_the_code_comes_from_a_declared_purpose():
    salted = re.compile(r"default_rng\(\s*\[")
    offenders = [f"{path.relative_to(REPO)}:{n}" for folder in ("harness", "attacks", "defenses", "models")
                 for path in sorted((REPO / folder).rglob("*.py")) if path.name != "streams.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if salted.search(line)]
    assert not offenders, "seed numpy through harness/streams.py purposes:\n" + "\n".join(offenders)
