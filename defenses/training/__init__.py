"""Training-time defenses: they change how the target itself is trained."""
