"""Throughput of data-parallel training: 1 vs 2 gloo processes on this machine.

Run with::

    python benchmarks/bench_scaling.py [--rows 20000] [--epochs 2]

Each configuration starts its processes the way torchrun does (RANK,
WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT in the environment) and times
only ``fit`` (not the imports or the process-group start-up). Every process
holds the same in-memory data and trains on its shard; the global batch is 256
rows in every configuration (``batch_size = 256 // processes``), so all runs
take the same optimization steps. Throughput = rows x epochs / fit seconds,
for the whole job. The plain ``fit`` rows are the single-process baselines
without torch.distributed.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_line, print_table  # noqa: E402

WORKER = textwrap.dedent(
    """
    import json, os, sys, time, warnings
    import numpy as np, torch
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    warnings.simplefilter("ignore")
    from skae import AutoencoderTransformer
    from skae.distributed import fit_distributed, init_process_group

    rng = np.random.RandomState(0)
    X = np.tanh(rng.randn(cfg["rows"], 16) @ rng.randn(16, 128)).astype(np.float32)
    est = AutoencoderTransformer(
        n_components=16, hidden_layer_sizes=(256, 128), max_iter=cfg["epochs"],
        batch_size=256 // cfg["world"], shuffle=True, random_state=0, device="cpu",
        tol=0.0,
    )
    if cfg["mode"] == "fit":
        start = time.perf_counter(); est.fit(X); elapsed = time.perf_counter() - start
        rank = 0
    else:
        rank, _ = init_process_group("gloo")
        import torch.distributed as dist
        dist.barrier()
        start = time.perf_counter(); fit_distributed(est, X)
        elapsed = time.perf_counter() - start
        dist.destroy_process_group()
    if rank == 0:
        print(json.dumps({"seconds": elapsed, "loss": est.loss_curve_[-1],
                          "epochs": est.n_iter_}))
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(mode, world, threads, rows, epochs):
    cfg = dict(mode=mode, world=world, threads=threads, rows=rows, epochs=epochs)
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if mode == "ddp":
            env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(world),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(cfg)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode:
            raise RuntimeError(err[-3000:])
    result = json.loads(outs[0][0].strip().splitlines()[-1])
    return {
        "run": "plain fit" if mode == "fit" else "fit_distributed (DDP, gloo)",
        "processes": world,
        "threads/process": threads,
        "batch/process": 256 // world,
        "fit s": result["seconds"],
        "samples/s": rows * result["epochs"] / result["seconds"],
        "final loss": result["loss"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    configs = [("fit", 1, 1), ("ddp", 1, 1), ("ddp", 2, 1), ("fit", 1, 2)]
    rows = [
        run(mode, world, threads, args.rows, args.epochs)
        for mode, world, threads in configs
    ]
    base = rows[1]["samples/s"]
    for row in rows:
        row["speed-up vs DDP x1"] = row["samples/s"] / base
    print(
        f"# {machine_line()}; os.cpu_count()={os.cpu_count()}; load average "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"# {args.rows} rows x 128 features, AutoencoderTransformer(16, (256, 128)), "
        f"{args.epochs} epochs, global batch 256"
    )
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
