"""Model extraction of sequential recommenders (Yue et al., RecSys 2021): data-free synthesis of
query sequences, then distillation of a surrogate from the target's answers."""
