"""Defenses against data poisoning: detectors that drop suspected fake users before the target
trains (and robust training)."""
