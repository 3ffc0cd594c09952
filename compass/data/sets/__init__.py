"""The paper profile's data sets, one module each: its hub ids, splits, columns, labels, loader.

:mod:`~compass.data.sets.aya` (the auxiliary pool), :mod:`~compass.data.sets.global_mmlu`
(E_t and the test items, full and Lite) and :mod:`~compass.data.sets.mmlu_prox` (MMLU-ProX,
full and Lite, with its flattened TSV in :mod:`~compass.data.sets.prox_flattened`). What they
share (finding and reading files, path and content checks) lives one level up in compass.data.
"""
