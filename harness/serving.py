"""Serving a trained target to the attacks, so that the attacker's process never holds it.

A cell runs in three steps, each in its own place:
1. the **server** (`TargetServer`, one per trained target, shared by the cells that attack it)
   holds the target, its data and the output defense. For each cell it opens a session: the
   family's grant (the attacker's view: what the threat model gives it) and the cell's oracle
   (`attacks.oracle.Oracle`: the budget, the counting and the defense, enforced here). On Ray a
   `ServerHost` process holds the servers of several targets (a grid keeps
   `resources.serve.servers` of them);
2. the **attack** runs with the view and an oracle client (`OracleClient`): a handle that can
   only send queries to its session and read the session's list length and budget;
3. the **grader** measures the attack's result against the target (the family's `grade`).

On Ray the server is an actor and the three steps are separate processes
(harness.executors.ray_executor); in one process (`--executor local`, tests) they share it, and
the cell records that its oracle was not isolated.

What isolation means here: the attack's process receives no model, no training data and no
defense state, so an attack cannot read them by accident or by walking its objects. It is not a
sandbox: code that deliberately uses Ray's own APIs to reach other actors is outside what a Python
process boundary can stop.
"""

from __future__ import annotations

import threading
from typing import Any

from recsec.attacks.oracle import QueryBudgetExceeded
from recsec.harness.families import get_family
from recsec.harness.plugins import load_plugins
from recsec.harness.serving_state import ServingState


class SessionLost(RuntimeError):
    """The server holds no such session: its process died and came back without it (on Ray, a
    server restarts with its target). The attack holding the session starts again."""


class TargetServer:
    """Serves one trained target: one session (grant + oracle) per cell that attacks it."""

    def __init__(self, data, target, device: str = "cpu"):
        load_plugins()  # a plugin's family and attacks, in the server's own process
        self.state = ServingState(data, target, device)
        self._sessions: dict[str, Any] = {}

    def open(self, cell, session: str, auxiliary=None):
        """Open the cell's session; return the attacker's view (what its threat model grants)."""
        family = get_family(cell.family)
        self._sessions[session] = family.oracle(cell, self.state)
        return family.grant(cell, self.state, auxiliary)

    def reopen(self, cell, session: str) -> None:
        """Open the cell's oracle again if this server does not hold it (it restarted since
        `open`): a fresh oracle, its counts from zero, for an attack that starts again."""
        if session not in self._sessions:
            self._sessions[session] = get_family(cell.family).oracle(cell, self.state)

    def _session(self, session: str):
        if session not in self._sessions:
            raise SessionLost(f"the target's server holds no session {session[:12]} (it restarted)")
        return self._sessions[session]

    def describe(self, session: str) -> dict:
        oracle = self._session(session)
        return {"k": oracle.k, "budget": oracle.budget, "queries": tuple(oracle.QUERIES)}

    def call(self, session: str, method: str, *args):
        """A query to the session's oracle: only the oracle's public query methods are served."""
        oracle = self._session(session)
        if method not in oracle.QUERIES:
            raise AttributeError(f"the oracle serves {', '.join(oracle.QUERIES)}, not {method!r}")
        return getattr(oracle, method)(*args)

    def close(self, session: str, *_after) -> dict:
        """End the session; return what its oracle counted. (`_after`: a result to wait for.)"""
        oracle = self._session(session)
        del self._sessions[session]
        return oracle.counts()

    @property
    def sessions(self) -> int:
        return len(self._sessions)


class ServerHost:
    """One process serving several targets: a `TargetServer` for each target assigned to it, so
    that a grid pays one server process's start (Python, torch, the families) per host, not per
    target. Every call names its target; `inputs` is how to load it (`resolve(inputs)` gives its
    data and trained record), so that a host that lost its targets (its process died and came
    back empty) loads a target again when a cell opens or reopens on it."""

    def __init__(self, device: str = "cpu"):
        load_plugins()  # a plugin's family and attacks, in the server's own process
        self.device = device
        self._servers: dict[str, TargetServer] = {}
        self._lock = threading.Lock()

    def resolve(self, inputs):
        """(data, target) from what the driver sent: here the values themselves."""
        return inputs

    def _serve(self, target_hash: str, inputs) -> TargetServer:
        with self._lock:  # cells of one target open together: it is loaded once
            if target_hash not in self._servers:
                data, target = self.resolve(inputs)
                self._servers[target_hash] = TargetServer(data, target, self.device)
            return self._servers[target_hash]

    def _served(self, target_hash: str) -> TargetServer:
        if target_hash not in self._servers:
            raise SessionLost(f"the server holds no target {target_hash[:12]} (it restarted)")
        return self._servers[target_hash]

    def open(self, target_hash: str, inputs, cell, session: str, auxiliary=None):
        return self._serve(target_hash, inputs).open(cell, session, auxiliary)

    def reopen(self, target_hash: str, inputs, cell, session: str) -> None:
        self._serve(target_hash, inputs).reopen(cell, session)

    def describe(self, target_hash: str, session: str) -> dict:
        return self._served(target_hash).describe(session)

    def call(self, target_hash: str, session: str, method: str, *args):
        return self._served(target_hash).call(session, method, *args)

    def close(self, target_hash: str, session: str, *after) -> dict:
        return self._served(target_hash).close(session, *after)

    def drop(self, target_hash: str) -> None:
        """No cell of this target is left: free what serves it."""
        self._servers.pop(target_hash, None)

    @property
    def targets(self) -> int:
        return len(self._servers)


class OracleClient:
    """The attack's only access to its target: queries to one session of a server, answered
    there. `send(method, *args)` carries a query and returns the answer (raising what the
    server raised, e.g. `QueryBudgetExceeded`)."""

    def __init__(self, send, describe: dict):
        self._send = send
        self.k: int = describe["k"]
        self.budget: int | None = describe["budget"]
        self._queries = tuple(describe.get("queries", ("query",)))

    def query(self, keys):
        return self._send("query", keys)

    def __getattr__(self, method: str):
        # A family's oracle may serve more than lists (an upload, an injection): its QUERIES.
        if method.startswith("_") or method not in self._queries:
            raise AttributeError(f"the oracle serves {', '.join(self._queries)}, not {method!r}")
        return lambda *args: self._send(method, *args)


def in_process_client(server: TargetServer, session: str) -> OracleClient:
    """A client that calls a server in the same process (the oracle is then not isolated)."""
    return OracleClient(lambda method, *args: server.call(session, method, *args), server.describe(session))


__all__ = ["OracleClient", "QueryBudgetExceeded", "ServerHost", "ServingState", "SessionLost", "TargetServer",
           "in_process_client"]
