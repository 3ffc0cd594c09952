"""The work of each pipeline stage as one call, one module per stage (pool, check, data,
sampling, model, train, evaluate, long_context, ecda; precision and book run their library
modules directly), so notebooks stay narrative + calls.

Each stage function reads its inputs from ``compass.paths``, calls the library and writes its
outputs atomically; nothing here decides *which* stages run: that is dvc.yaml. The modules do not
import one another's heavy code, so each stage's code dependencies (listed in dvc.yaml and checked
by tests/test_pipeline_deps.py) stay exactly what it runs.
"""
