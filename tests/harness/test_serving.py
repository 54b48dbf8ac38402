"""Serving targets (harness.serving): a server answers several cells at once (an actor with
threads), and one server process hosts several targets."""

import threading
import time

from helpers.served import served_cell

from recsec.harness.serving_state import ServingState


def test_cells_that_open_together_share_one_build():
    state, builds = ServingState(data=None, target=None), []

    def build():
        builds.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every other thread to ask meanwhile
        return object()

    start = threading.Barrier(6)
    results = []

    def open_cell():
        start.wait()
        results.append(state.once("split", build))

    threads = [threading.Thread(target=open_cell) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert all(result is results[0] for result in results)


def test_each_key_is_built_on_its_own():
    state = ServingState(data=None, target=None)
    assert state.once("a", lambda: 1) == 1 and state.once("b", lambda: 2) == 2 and state.once("a", lambda: 3) == 1


def test_one_host_serves_several_targets_and_loads_a_lost_one_again(tmp_path):
    """A grid's targets share a few server processes; a target the host lost (its process came
    back empty) is loaded again when its cell reopens, with a fresh session."""
    import numpy as np
    import pytest

    from recsec.harness.serving import ServerHost, SessionLost

    cell, data, target = served_cell(tmp_path, query_budget=4)
    loads = []

    class CountingHost(ServerHost):
        def resolve(self, inputs):
            loads.append(inputs)
            return inputs

    host, inputs = CountingHost(), (data, target)
    view = host.open("t1", inputs, cell, "s1")
    host.open("t2", inputs, cell, "s2")
    host.open("t1", inputs, cell, "s3")  # a second cell of a target already served: no load
    assert host.targets == 2 and len(loads) == 2
    keys = view.query_keys(np.arange(2))
    assert host.call("t1", "s1", "query", keys).shape == (2, 5)
    assert host.describe("t2", "s2")["k"] == 5

    host.drop("t1")
    with pytest.raises(SessionLost):
        host.call("t1", "s1", "query", keys)
    host.reopen("t1", inputs, cell, "s1")
    assert len(loads) == 3 and host.call("t1", "s1", "query", keys).shape == (2, 5)
    assert host.close("t1", "s1") == {"queries": 2, "items_returned": 10}  # counted from the reopening
    assert host.close("t2", "s2") == {"queries": 0, "items_returned": 0}
