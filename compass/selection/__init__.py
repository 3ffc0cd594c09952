"""Selection of auxiliary training data: the target pool (pool), COMPASS (compass_method), the
baselines (baselines), their shared pieces (base) and one entry point by name (selectors).

Kept empty on purpose: importing one submodule must not import every selector. The method names
config validates against live outside this package (compass.selection_methods), so a stage that
only reads params does not depend on the selection code."""
