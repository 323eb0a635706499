"""Analyses of the trained CNN: one module per analysis (feature maps, plots, comparison,
report, OIPs, experiments). Compute functions return arrays; plot functions take arrays."""
