"""Defenses against model extraction: GRO trains the target so that what it serves misleads a
surrogate."""
