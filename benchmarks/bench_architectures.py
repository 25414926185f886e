"""Beyond the MLP: the convolutional, recurrent and graph autoencoders, one run.

Runs the three comparisons of ``bench_conv.py`` (images: ConvAutoencoder vs
the MLP autoencoder and PCA on an MNIST subset), ``bench_sequence.py``
(sequences: SequenceAutoencoder on MNIST rows read as 28-step sequences, and
per-time-step anomaly scores on a synthetic multichannel series) and
``bench_graph.py`` (graphs: link prediction on stochastic-block-model graphs,
GraphAutoencoder vs SpectralEmbedding), one after the other in this process,
and prints their tables side by side in one report. Each part's protocol
(data, sizes, seeds, epochs) is in its own script's docstring.

Run: ``python benchmarks/bench_architectures.py [--quick]``; ``--only conv
graph`` runs a subset.
"""

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_line  # noqa: E402

PARTS = {
    "conv": ("bench_conv", "Images: convolutional autoencoder"),
    "sequence": ("bench_sequence", "Sequences: recurrent autoencoder"),
    "graph": ("bench_graph", "Graphs: graph autoencoder"),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller, faster runs")
    parser.add_argument("--only", nargs="+", choices=sorted(PARTS), default=list(PARTS))
    args = parser.parse_args(argv)
    print(f"# {machine_line()}")
    sections = []
    for name in args.only:
        module_name, title = PARTS[name]
        start = time.perf_counter()
        table = importlib.import_module(module_name).report(quick=args.quick)
        minutes = (time.perf_counter() - start) / 60
        sections.append(f"### {title} ({module_name}.py, {minutes:.1f} min)\n\n{table}")
        print(f"# done: {name} in {minutes:.1f} min", flush=True)
    print("\n\n".join(sections))


if __name__ == "__main__":
    main()
