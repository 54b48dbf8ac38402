"""Output defenses: `(lists, users, context, rng) -> lists`, applied by the oracle before serving."""
