"""One process of tests/test_distributed.py: trains the tiny adapter with train.processes = the
launched world size and writes it (the first process) to the folder given."""
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compass import config  # noqa: E402
from compass.training import distributed  # noqa: E402
from compass.training.adapters import train_adapter  # noqa: E402
from tests.test_adapters_evaluate import EXAMPLES  # noqa: E402
from tests.tiny_lm import tiny_gemma, tiny_tokenizer  # noqa: E402


def tiny_run_config(processes: int):
    return replace(config.TrainConfig(), steps=4, batch_size=4, grad_accum=2, learning_rate=5e-3,
                   max_length=48, warmup_steps=1, dropout=0.0, seeds=1, curve_steps=(2,),
                   save_every=2, processes=processes)


def examples():
    return list(EXAMPLES)


def main(out: str) -> None:
    tok = tiny_tokenizer()
    rank, size = distributed.world()
    summary = train_adapter(tiny_gemma(len(tok)), tok, examples(), tiny_run_config(size), out,
                            seed=5, base_name="t", show_progress_bar=False, snapshot_steps=(2,))
    print(f"rank {rank} of {size}: final loss {summary['final_loss']:.6f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
