"""Training claims in a shared cache: one driver trains a model, the others wait for it."""

from __future__ import annotations

import os
import time

from recsec.harness.claims import TrainingClaims
from recsec.harness.heartbeat import STALE_AFTER_S


def test_one_driver_holds_a_claim_until_it_releases_it(tmp_path):
    first, second = TrainingClaims(tmp_path, "grid-a"), TrainingClaims(tmp_path, "grid-b")
    assert first.acquire("h1")
    assert not second.acquire("h1")
    assert second.holder("h1")["owner"] == "grid-a"
    first.release("h1")
    assert second.holder("h1") is None and second.acquire("h1")


def test_a_dead_drivers_claim_goes_stale_and_is_taken_over(tmp_path):
    dead, alive = TrainingClaims(tmp_path, "dead"), TrainingClaims(tmp_path, "alive")
    assert dead.acquire("h1")
    old = time.time() - STALE_AFTER_S - 5
    os.utime(dead.path("h1"), (old, old))  # its driver stopped touching it
    assert alive.holder("h1") is None
    assert alive.acquire("h1")
    assert TrainingClaims(tmp_path, "third").holder("h1")["owner"] == "alive"


def test_refresh_keeps_a_live_claim_fresh_and_release_all_frees_everything(tmp_path):
    claims = TrainingClaims(tmp_path, "grid")
    assert claims.acquire("h1") and claims.acquire("h2")
    old = time.time() - STALE_AFTER_S - 5
    os.utime(claims.path("h1"), (old, old))
    claims.refresh()
    assert TrainingClaims(tmp_path, "other").holder("h1") is not None
    claims.release_all()
    assert not any((tmp_path / "claims").iterdir())
