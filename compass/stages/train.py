"""Stage `train`: the LoRA adapters of one target language, one per selection method and
training seed, on one loaded base model (compass.training.language), in train.processes
data-parallel processes when asked (compass.training.launch). ``python -m compass.stages.train
--lang L --model M`` is one process of a run across machines (README)."""
from __future__ import annotations

from compass.training.language import REUSE_ENV, remove_stale, training_examples
from compass.training.launch import job_of, read_job, train_in_processes, train_language

__all__ = ["REUSE_ENV", "job_of", "read_job", "remove_stale", "train_in_processes",
           "train_language", "training_examples"]

if __name__ == "__main__":
    from compass.training.launch import main

    main()
