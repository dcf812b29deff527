"""What batching buys: four jobs in one pipeline call against the same four jobs one call each.

The tiny random-weight Stable Diffusion pipeline the tests use (saved and loaded through the
production loader, on the CPU) runs four 4-image jobs both ways in the same run; the figure
is the throughput ratio, batched over one-at-a-time (median of a few rounds, after warm-up).
The tiny model is mostly per-call overhead, so the ratio shows what batching saves in
Python and scheduling; on a GPU the gain also comes from fuller kernels.

    python -m bench.bench_batching
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipelines.diffusers_engine import DiffusersEngine
from pipelines.loading import load_engine
from pipelines.types import GenerationRequest
from tests.support.tiny_models import build_tiny_sd, tiny_request

JOBS = 4
ROUNDS = 5


def timed(engine: DiffusersEngine, batches: list[list[GenerationRequest]]) -> float:
    start = time.perf_counter()
    for batch in batches:
        engine.run(batch, lambda step, steps, previews: None)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        engine = load_engine(str(build_tiny_sd(Path(scratch) / "tiny-sd")), device="cpu")
    jobs = [tiny_request(job_id=f"job-{i}", user_id=i, seed=100 * i, steps=4) for i in range(JOBS)]
    images = sum(job.count for job in jobs)
    timed(engine, [jobs])  # warm-up
    batched, single = [], []
    for _ in range(ROUNDS):
        batched.append(timed(engine, [jobs]))
        single.append(timed(engine, [[job] for job in jobs]))
    together, apart = statistics.median(batched), statistics.median(single)
    print(f"{JOBS} jobs x 4 images, 96x64, 4 steps, tiny SD on the CPU (median of {ROUNDS})")
    print(f"one call per job:  {images / apart:7.1f} images/s  ({apart * 1000:.0f} ms)")
    print(f"one batched call:  {images / together:7.1f} images/s  ({together * 1000:.0f} ms)")
    print(f"batched / one at a time: x{apart / together:.2f}")


if __name__ == "__main__":
    main()
