"""Model stealing against general recommenders (Zhu et al. 2023): one recipe file per method."""
