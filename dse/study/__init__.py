"""Studies: a study file, its directory and storage, the surrogate search, real confirmation, fronts, export.

Importing this package is cheap; torch, optuna and pymoo are imported inside the functions that use them.
"""
