"""The settings of the pipeline: the schema (every setting's default, help and allowed values),
the checks its metadata asks for, params files as overlays, params.yaml written from them, and the
record of which params a stage reads. ``compass.config`` is the entry point the stages use."""
