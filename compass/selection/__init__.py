"""Selection of auxiliary training data: the target pool (pool), COMPASS (compass_method), the
baselines (baselines), their shared pieces (base) and one entry point by name (selectors).

Kept empty on purpose: importing one submodule (config imports the method names in registry)
must not import every selector."""
