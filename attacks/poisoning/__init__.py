"""Data poisoning by fake-user injection: the attacker registers fake users whose interactions
push target items into real users' lists (heuristic profiles, DL-Attack)."""
