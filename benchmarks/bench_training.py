"""Training overhead: skae vs a hand-written PyTorch loop, skorch and MLPRegressor.

The same MLP autoencoder (64-128-64-8-64-128-64, ReLU, Adam, MSE) is trained
for the same number of epochs and batch size on ``load_digits`` tiled to about
15k rows (standardized, held-out 20%):

(a) skae ``AutoencoderTransformer``;
(b) a plain PyTorch loop over shuffled tensor slices, with torch's default
    Adam (and, as a second row, with ``fused=True`` Adam, which skae uses);
(c) skorch ``NeuralNetRegressor`` fit on (X, X) with its defaults (DataLoader,
    internal validation split, callbacks), same epochs / batch size / lr;
(d) scikit-learn ``MLPRegressor`` fit on (X, X), same architecture, Adam.

Every method is timed in the same process, interleaved over ``--repeats``
rounds; the table shows medians and ratios to the plain loop.

Run: ``python benchmarks/bench_training.py [--epochs 20] [--repeats 3] [--device auto]``

``--sweep`` (CPU) times every estimator's *default* training path instead:
AutoencoderTransformer on standardized data (MSE, PCA start) and on [0, 1]
data with ``loss="bce"`` (random start), DenoisingAE, SparseAE (its default kind,
``"kl"``), ContractiveAE and VAE, each with its defaults (``alpha`` included)
except that it runs exactly ``--epochs`` epochs on all rows
(``early_stopping=False, tol=0, n_iter_no_change > max_iter``), at batch
sizes 32, 128, 256 and 1024, against a hand-written loop computing the same
step: the same network and starting weights, loss, penalty / corruption /
ELBO, weight decay on the weight matrices only, fused Adam, the epoch's
mean loss summed on the device. ``load_digits`` tiled to 12,000 rows (+
noise); wall and process-CPU time, medians of ``--repeats`` interleaved
rounds. Run it with ``OMP_NUM_THREADS=1`` for the one-thread figures.

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --sweep --epochs 10
    python benchmarks/bench_training.py --sweep --quick   # smoke test

``--small`` times the small-data path, where every epoch is one or a few
optimizer steps and the per-epoch machinery counts: one member of
``OutlierDetector``'s default scorer (``AutoencoderEnsemble``), configured
exactly as the ensemble configures it (its batch size, ``n_steps`` turned
into epochs, [0, 1] scaling), on N random rows of 8 features for N in 20,
200 and 2000, against a hand-written loop computing the same steps (the same
network and starting weights, the same shuffles, MSE, fused Adam, weight
decay on the weight matrices only, the epoch's loss read on the host once per
epoch as a stopping rule needs it); plus the whole ``OutlierDetector().fit``
on ``load_wine`` (178 x 13) as the user sees it. Per-step milliseconds,
medians of ``--repeats`` interleaved rounds (which of skae and the plain loop
runs first alternates between rounds), and the ratio of the medians of
wall and of process-CPU time; "same last loss" checks that the two loops
computed the same thing (bit-identical last epoch loss).

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --small --repeats 5

``--small --processes P`` runs that in P fresh processes, one after the other,
and reports the median and range of their ratios: on a shared machine one
process's ratio moves by 10-20% from process to process (its memory layout,
the machine's state when it ran), which more repeats within that process do
not average out.

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --small --processes 7

``--small --instructions`` counts instead of timing: the instructions each side
executes (valgrind's callgrind, see ``_instructions.py``), which do not move
with the machine's load as the timed medians do. Each side runs in its own
process under valgrind, twice, for two lengths of about 160 and 480 steps;
the difference gives the instructions per epoch, the rest the fixed cost of a
fit (building the net, the first reading of the load), and the table
extrapolates both to the member's whole fit. Takes about ten minutes.

    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --small --instructions
"""

import argparse
import copy
import json
import math
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The checkout this script is in, not whichever skae the environment installed.
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from _common import machine_line, print_table, timed  # noqa: E402

from skae import AutoencoderTransformer  # noqa: E402
from skae.utils import resolve_device  # noqa: E402

HIDDEN = (128, 64)
N_COMPONENTS = 8


def load_data(seed=0):
    X, _ = load_digits(return_X_y=True)
    X = np.tile(X, (8, 1))  # 14376 rows
    X = X + np.random.RandomState(seed).normal(scale=0.5, size=X.shape)
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    return (
        scaler.transform(X_train).astype(np.float32),
        scaler.transform(X_test).astype(np.float32),
    )


def mlp(n_features):
    sizes = [n_features, *HIDDEN, N_COMPONENTS, *reversed(HIDDEN), n_features]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 and b != N_COMPONENTS:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mse(predict, X):
    return float(np.mean((predict(X) - X) ** 2))


def run_skae(X_train, X_test, args, device):
    ae = AutoencoderTransformer(
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN,
        loss="mse",
        scaling="none",
        alpha=0.0,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0.0,
        random_state=0,
        device=device,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(ae.fit, X_train)
    return seconds, mse(lambda X: ae.inverse_transform(ae.transform(X)), X_test)


def run_plain_loop(X_train, X_test, args, device, fused=None):
    torch.manual_seed(0)

    def train():
        model = mlp(X_train.shape[1]).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, fused=fused)
        X = torch.from_numpy(X_train).to(device)
        for _ in range(args.epochs):
            perm = torch.randperm(len(X), device=device)
            Xp = X[perm]
            for start in range(0, len(X), args.batch_size):
                xb = Xp[start : start + args.batch_size]
                loss = nn.functional.mse_loss(model(xb), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return model

    model, seconds = timed(train)
    model.eval()

    def predict(X):
        with torch.no_grad():
            return model(torch.from_numpy(X).to(device)).cpu().numpy()

    return seconds, mse(predict, X_test)


def run_skorch(X_train, X_test, args, device):
    from skorch import NeuralNetRegressor

    torch.manual_seed(0)
    net = NeuralNetRegressor(
        mlp(X_train.shape[1]),
        optimizer=torch.optim.Adam,
        lr=args.lr,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        iterator_train__shuffle=True,
        device=str(device),
        verbose=0,
    )
    _, seconds = timed(net.fit, X_train, X_train)
    return seconds, mse(net.predict, X_test)


def run_mlpregressor(X_train, X_test, args, device):
    reg = MLPRegressor(
        hidden_layer_sizes=(*HIDDEN, N_COMPONENTS, *reversed(HIDDEN)),
        activation="relu",
        solver="adam",
        alpha=0.0,
        learning_rate_init=args.lr,
        batch_size=args.batch_size,
        max_iter=args.epochs,
        tol=0.0,
        n_iter_no_change=args.epochs + 1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(reg.fit, X_train, X_train)
    return seconds, mse(reg.predict, X_test)


METHODS = {
    "skae AutoencoderTransformer": run_skae,
    "plain PyTorch loop": run_plain_loop,
    "plain PyTorch loop, fused Adam": lambda *a: run_plain_loop(*a, fused=True),
    "skorch NeuralNetRegressor (defaults)": run_skorch,
    "sklearn MLPRegressor": run_mlpregressor,
}


# --------------------------------------------------------------------- sweep
# ``--sweep``: every estimator's default training path against a hand-written
# loop computing the same thing per step (same network, loss, penalty or
# corruption, weight decay and fused Adam), at several batch sizes.

SWEEP_ROWS = 12000
SWEEP_BATCH_SIZES = (32, 128, 256, 1024)


def sweep_data(seed=0):
    """``load_digits`` tiled to 12,000 rows plus noise: standardized (MSE
    estimators) and clipped to [0, 1] (for the BCE row)."""
    X, _ = load_digits(return_X_y=True)
    X = np.tile(X, (SWEEP_ROWS // len(X) + 1, 1))[:SWEEP_ROWS]
    X = X + np.random.RandomState(seed).normal(scale=0.5, size=X.shape)
    unit = np.clip(X / 16.0, 0.0, 1.0).astype(np.float32)
    standard = StandardScaler().fit_transform(X).astype(np.float32)
    return {"mse": standard, "bce": unit}


def _mse_step(model, x, generator):
    return nn.functional.mse_loss(model(x), x)


def _bce_step(model, x, generator):
    return nn.functional.binary_cross_entropy_with_logits(model(x), x)


def _denoising_step(noise_level):
    def step(model, x, generator):
        keep = torch.rand(x.shape, generator=generator) >= noise_level
        return nn.functional.mse_loss(model(x * keep), x)

    return step


def _kl_sparse_step(weight, rho):
    def step(model, x, generator):
        code = model.encode(x)
        rho_hat = code.mean(dim=0).clamp(1e-6, 1 - 1e-6)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log(
            (1 - rho) / (1 - rho_hat)
        )
        return nn.functional.mse_loss(model.decode(code), x) + weight * kl.sum()

    return step


def _contractive_step(weight):
    def step(model, x, generator):
        code = model.encode(x)  # one sigmoid layer: closed-form ||J||^2
        w = model.encoder[0].weight
        jacobian = ((code * (1 - code)).square() @ w.square().sum(dim=1)).mean()
        loss = nn.functional.mse_loss(model.decode(code), x)
        return loss + weight * jacobian / x.shape[1]

    return step


def _gaussian_vae_step(model, x, generator):
    mu, logvar = model.encode(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator)
    dec_logvar = model.decoder_logvar()
    log_px = -0.5 * (
        math.log(2 * math.pi)
        + dec_logvar
        + (x - model.decode(z)).square() * torch.exp(-dec_logvar)
    ).sum(dim=1)
    kl = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(dim=1)
    return (kl - log_px).mean()


def bce_autoencoder(**params):
    """AutoencoderTransformer with ``loss="bce"``: ``"auto"`` keeps the MSE of
    the PCA start on [0, 1] data, so the BCE path is the user's explicit
    choice (and DenoisingAE's and the VAE's default on such data)."""
    return AutoencoderTransformer(loss="bce", **params)


def sweep_cases():
    """(name, data, estimator factory, plain-loop step) per default path."""
    from skae import VAE, ContractiveAE, DenoisingAE, SparseAE
    from skae._sparsity import SPARSITY_KINDS

    dae, sae, cae = DenoisingAE(), SparseAE(), ContractiveAE()
    # The plain steps below write out these defaults' objectives.
    assert dae.noise == "masking" and sae.sparsity == "kl", "defaults changed"
    assert ContractiveAE().hidden_layer_sizes == (), "defaults changed"
    return [
        ("AutoencoderTransformer", "mse", AutoencoderTransformer, _mse_step),
        ("AutoencoderTransformer", "bce", bce_autoencoder, _bce_step),
        ("DenoisingAE", "mse", DenoisingAE, _denoising_step(dae.noise_level)),
        (
            "SparseAE",
            "mse",
            SparseAE,
            _kl_sparse_step(
                SPARSITY_KINDS[sae.sparsity].default_weight, sae.sparsity_target
            ),
        ),
        (
            "ContractiveAE",
            "mse",
            ContractiveAE,
            _contractive_step(cae.contraction_weight),
        ),
        ("VAE", "mse", VAE, _gaussian_vae_step),
    ]


def _fixed_epochs(cls, batch_size, epochs):
    """``cls`` with its defaults, but exactly ``epochs`` epochs on all rows: no
    validation split, and a stopping rule that cannot fire."""
    return cls(
        batch_size=batch_size,
        max_iter=epochs,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
        device="cpu",
    )


def _cpu_timed(fn, *args):
    """``(result, wall seconds, CPU seconds of this process)``: with one
    thread the CPU time is the work done, unaffected by other jobs taking
    turns on a shared machine."""
    cpu = time.process_time()
    result, seconds = timed(fn, *args)
    return result, seconds, time.process_time() - cpu


def _time_skae(cls, X, batch_size, epochs):
    est = _fixed_epochs(cls, batch_size, epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds, cpu = _cpu_timed(est.fit, X)
    assert est.n_iter_ == epochs, (cls.__name__, est.n_iter_)
    return seconds, cpu, est.loss_curve_[-1]


def plain_adam(model, alpha, lr):
    """Fused Adam with weight decay ``alpha`` on the weight matrices only (as
    skae applies ``alpha``), as a user would set it up by hand."""
    if alpha == 0:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    named = list(model.named_parameters())
    groups = [
        {
            "params": [p for n, p in named if n.endswith("weight")],
            "weight_decay": alpha,
        },
        {"params": [p for n, p in named if not n.endswith("weight")]},
    ]
    return torch.optim.Adam(groups, lr=lr, weight_decay=0.0, fused=True)


def _time_plain(build, step, alpha, X, batch_size, epochs):
    """What a user would write: tensor slices of one shuffled copy per epoch,
    weight decay on the weight matrices only (as skae applies ``alpha``)."""

    def train():
        torch.manual_seed(0)
        model = build()
        opt = plain_adam(model, alpha, 1e-3)
        generator = torch.Generator().manual_seed(0)
        data = torch.from_numpy(X)
        model.train()
        total = 0.0
        for _ in range(epochs):
            shuffled = data[torch.randperm(len(data), generator=generator)]
            total = torch.zeros(())
            for start in range(0, len(data), batch_size):
                xb = shuffled[start : start + batch_size]
                loss = step(model, xb, generator)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.detach() * len(xb)
        return float(total) / len(data)

    loss, seconds, cpu = _cpu_timed(train)
    return seconds, cpu, loss


def run_sweep(args):
    data = sweep_data()
    cases = [c for c in sweep_cases() if not args.only or c[0] in args.only]
    batch_sizes = args.batch_sizes
    print(
        f"# sweep: {SWEEP_ROWS} x 64 rows, {args.epochs} epochs, batches "
        f"{batch_sizes}, {args.repeats} interleaved repeats, device cpu; "
        f"{machine_line()}"
    )
    rows = []
    for name, loss, cls, step in cases:
        X = data[loss]
        # The network skae builds for these data, for the plain loop.
        probe = _fixed_epochs(cls, 64, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.fit(X[:512])
        alpha = probe.alpha

        # Both start alike: the plain loop copies the weights of this probe
        # (skae's own initialization, e.g. PCA or the KL code bias, plus one
        # short epoch); skae's initialization stays inside its timed fit.
        start = copy.deepcopy(probe.module_.state_dict())

        def build(probe=probe, start=start):
            module = probe._build_module(probe.architecture_)
            module.load_state_dict(start)
            return module

        for batch_size in batch_sizes:
            skae_t, plain_t, skae_c, plain_c = [], [], [], []
            for _ in range(args.repeats):  # interleaved: drift hits both
                seconds, cpu, skae_loss = _time_skae(cls, X, batch_size, args.epochs)
                skae_t.append(seconds)
                skae_c.append(cpu)
                seconds, cpu, plain_loss = _time_plain(
                    build, step, alpha, X, batch_size, args.epochs
                )
                plain_t.append(seconds)
                plain_c.append(cpu)
            s, p = statistics.median(skae_t), statistics.median(plain_t)
            cpu_ratio = statistics.median(skae_c) / statistics.median(plain_c)
            rows.append(
                {
                    "estimator": name,
                    "loss": probe.loss_,
                    "alpha": alpha,
                    "batch": batch_size,
                    "skae s": s,
                    "plain s": p,
                    "ratio": s / p,
                    "CPU-time ratio": cpu_ratio,
                    "<= 1.1": "yes" if max(s / p, cpu_ratio) <= 1.1 else "NO",
                    "skae loss": skae_loss,
                    "plain loss": plain_loss,
                }
            )
            print(rows[-1], flush=True)
    print_table(rows, list(rows[0]))


# --------------------------------------------------------------------- small
# ``--small``: OutlierDetector's default scorer, where an epoch is one step.

SMALL_ROWS = (20, 200, 2000)
SMALL_FEATURES = 8


def _small_member(n_rows, n_features, seed=0):
    """(ensemble, member estimator, scaled rows): one member of the default
    ``AutoencoderEnsemble`` as its ``fit`` builds it."""
    from skae._outlier_default import AutoencoderEnsemble

    X = np.random.RandomState(seed).rand(n_rows, n_features)
    ens = AutoencoderEnsemble(random_state=seed)
    ens._update_statistics(X, reset=True)
    S = ens._scaled(X)
    batch = min(ens.batch_size, len(S))
    epochs = max(1, math.ceil(ens.n_steps * batch / len(S)))
    return ens, (lambda: ens._member(n_features, 12345, epochs)), S


def _time_small_skae(make_member, S):
    member = make_member()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds, cpu = _cpu_timed(member.fit, S)
    return seconds, cpu, member.n_iter_, member.loss_curve_[-1]


def _small_start(make_member, S):
    """The member's starting weights, its shuffle seed and optimizer
    settings, rebuilt from its own random streams (as ``fit`` draws them)."""
    from skae import _random
    from skae._base import _SHUFFLE_STREAM, _TORCH_STREAM, _stream_seed

    probe = make_member().set_params(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe.fit(S)
    torch_seed = _stream_seed(probe.random_seed_, 0, _TORCH_STREAM)
    with _random.seeded_global_rng(torch_seed, torch.device("cpu")):
        module = probe._build_module(probe.architecture_)
    shuffle_seed = _stream_seed(probe.random_seed_, 0, _SHUFFLE_STREAM)
    return copy.deepcopy(module.state_dict()), shuffle_seed, probe


def _time_small_plain(make_member, S, start):
    """A hand-written loop over the same steps as the member's training."""
    state, shuffle_seed, probe = start
    member = make_member()
    batch_size = min(member.batch_size, len(S))
    epochs, alpha, lr = member.max_iter, member.alpha, member.learning_rate

    def train():
        model = probe._build_module(probe.architecture_)
        model.load_state_dict(state)
        opt = plain_adam(model, alpha, lr)
        generator = torch.Generator().manual_seed(shuffle_seed)
        data = torch.from_numpy(S.astype(np.float32))
        model.train()
        losses = []
        for _ in range(epochs):
            order = torch.randperm(len(data), generator=generator)
            total = torch.zeros(())
            for start in range(0, len(data), batch_size):
                xb = data.index_select(0, order[start : start + batch_size])
                loss = nn.functional.mse_loss(model.decode(model.encode(xb)), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total.add_(loss.detach(), alpha=len(xb))
            losses.append(float(total / len(data)))  # one sync per epoch
        return losses

    losses, seconds, cpu = _cpu_timed(train)
    return seconds, cpu, len(losses), losses[-1]


def _time_detector(X):
    from skae import OutlierDetector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, seconds = timed(OutlierDetector(random_state=0).fit, X)
    return seconds


#: Steps of the longer of the two counted fits of each side (the shorter
#: one runs a third of them): enough for the per-epoch cost to dominate.
COUNTED_STEPS = 480


def count_small_child(side, n_rows, epochs):
    """Under valgrind: one fit of ``side`` ("skae" or "plain") for ``epochs``
    epochs, counted from its start to its end (after a short warm-up fit of
    both sides, so that neither pays for loading code the other loaded)."""
    import _instructions

    torch.set_num_threads(1)
    _, make_member, S = _small_member(n_rows, SMALL_FEATURES)
    start = _small_start(make_member, S)

    def member(n_epochs):
        return lambda: make_member().set_params(max_iter=n_epochs)

    _time_small_skae(member(2), S)
    _time_small_plain(member(2), S, start)
    _instructions.start()
    if side == "skae":
        result = _time_small_skae(member(epochs), S)
    else:
        result = _time_small_plain(member(epochs), S, start)
    _instructions.stop()
    print(f"epochs {result[2]} last loss {result[3]!r}")


def run_small_instructions(args):
    """Instructions per epoch and per whole member fit, skae against the
    hand-written loop, from two counted lengths of each."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import _instructions

    print(
        f"# small data, instruction counts (valgrind callgrind): "
        f"AutoencoderEnsemble member vs a hand-written loop, {SMALL_FEATURES} "
        f"features, one thread; {machine_line()}"
    )
    lacking = _instructions.missing()
    if lacking:
        print(f"# SKIPPED: cannot count instructions here: {lacking}")
        return
    plan = []
    for n_rows in args.small_rows:
        ens, make_member, S = _small_member(n_rows, SMALL_FEATURES)
        member = make_member()
        steps_per_epoch = math.ceil(n_rows / min(member.batch_size, n_rows))
        longer = max(3, COUNTED_STEPS // steps_per_epoch)
        lengths = (longer // 3, longer)
        plan.append((n_rows, member.max_iter, steps_per_epoch, lengths))
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        library = _instructions.build_library(tmp)
        jobs = {}
        # Two at a time: the counts do not depend on what else runs.
        with ThreadPoolExecutor(max_workers=2) as pool:
            for n_rows, _, _, lengths in plan:
                for side in ("skae", "plain"):
                    for epochs in lengths:
                        argv = [sys.executable, script, "--count-small", side]
                        argv += [str(n_rows), str(epochs)]
                        jobs[n_rows, side, epochs] = pool.submit(
                            _instructions.count, argv, library
                        )
            counts = {key: job.result() for key, job in jobs.items()}
    rows = []
    for n_rows, full_epochs, steps_per_epoch, (short, longer) in plan:
        per_epoch, fixed = {}, {}
        for side in ("skae", "plain"):
            a, b = counts[n_rows, side, short], counts[n_rows, side, longer]
            per_epoch[side] = (b - a) / (longer - short)
            fixed[side] = a - short * per_epoch[side]
        whole = {s: fixed[s] + full_epochs * per_epoch[s] for s in per_epoch}
        rows.append(
            {
                "rows": n_rows,
                "steps per epoch": steps_per_epoch,
                "epochs of a fit": full_epochs,
                "skae k instr/epoch": per_epoch["skae"] / 1e3,
                "plain k instr/epoch": per_epoch["plain"] / 1e3,
                "per-epoch ratio": per_epoch["skae"] / per_epoch["plain"],
                "skae fixed M instr": fixed["skae"] / 1e6,
                "plain fixed M instr": fixed["plain"] / 1e6,
                "whole-fit ratio": whole["skae"] / whole["plain"],
                "<= 1.1": "yes" if whole["skae"] / whole["plain"] <= 1.1 else "NO",
            }
        )
    print_table(rows, list(rows[0]))
    print(f"# counted lengths (epochs): {[p[3] for p in plan]}")


def run_small(args):
    from sklearn.datasets import load_wine

    print(
        f"# small data: AutoencoderEnsemble member vs a hand-written loop, "
        f"{SMALL_FEATURES} features, {args.repeats} interleaved repeats, device "
        f"cpu; {machine_line()}"
    )
    cases = []
    for n_rows in args.small_rows:
        _, make_member, S = _small_member(n_rows, SMALL_FEATURES)
        cases.append((n_rows, make_member, S, _small_start(make_member, S)))
    wine = load_wine().data
    times = {n: ([], []) for n, *_ in cases}
    cpu_times = {n: ([], []) for n, *_ in cases}
    detector = []
    outcome = {}
    if not args.skip_detector:
        _time_detector(wine[:20])  # warm-up
    for repeat in range(args.repeats):  # interleaved: drift hits both
        for n_rows, make_member, S, start in cases:
            # Which of the pair runs first alternates between repeats: the
            # second fit of a pair finds the machine in another state (caches,
            # clock), and neither should always take that place.
            runs = [
                (0, partial(_time_small_skae, make_member, S)),
                (1, partial(_time_small_plain, make_member, S, start)),
            ]
            for side, run in runs[:: 1 if repeat % 2 == 0 else -1]:
                seconds, cpu, n_epochs, last_loss = run()
                times[n_rows][side].append(seconds)
                cpu_times[n_rows][side].append(cpu)
                if side == 0:
                    epochs, skae_loss = n_epochs, last_loss
                else:
                    plain_epochs, plain_loss = n_epochs, last_loss
            assert epochs == plain_epochs, (epochs, plain_epochs)
            outcome[n_rows] = (epochs, skae_loss, plain_loss)
        if not args.skip_detector:
            detector.append(_time_detector(wine))
    rows = []
    for n_rows, make_member, _, _ in cases:
        epochs, skae_loss, plain_loss = outcome[n_rows]
        batch = min(make_member().batch_size, n_rows)
        steps = epochs * math.ceil(n_rows / batch)
        s, p = (statistics.median(t) for t in times[n_rows])
        cpu_ratio = statistics.median(cpu_times[n_rows][0]) / statistics.median(
            cpu_times[n_rows][1]
        )
        rows.append(
            {
                "rows": n_rows,
                "batch": batch,
                "epochs": epochs,
                "steps": steps,
                "skae ms/step": 1e3 * s / steps,
                "plain ms/step": 1e3 * p / steps,
                "ratio": s / p,
                "CPU-time ratio": cpu_ratio,
                "<= 1.1": "yes" if max(s / p, cpu_ratio) <= 1.1 else "NO",
                "same last loss": "yes" if skae_loss == plain_loss else "no",
            }
        )
    if args.small_json:
        Path(args.small_json).write_text(json.dumps(rows))
    print_table(rows, list(rows[0]))
    if detector:
        print(
            f"\nOutlierDetector(random_state=0).fit(load_wine 178 x 13): "
            f"{statistics.median(detector):.2f} s (median of {len(detector)}; "
            f"all: {', '.join(f'{t:.2f}' for t in detector)})"
        )


def run_small_processes(args):
    """``--small`` in ``--processes`` fresh processes, one after the other:
    the ratio of one process, however many its repeats, moves from process to
    process, which repeats within it do not average out."""
    import subprocess
    import tempfile

    print(
        f"# small data in {args.processes} fresh processes of {args.repeats} "
        f"interleaved repeats each (no detector); {machine_line()}"
    )
    script = str(Path(__file__).resolve())
    per_process = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.processes):
            out = Path(tmp) / f"{i}.json"
            argv = [sys.executable, script, "--small", "--skip-detector"]
            argv += ["--repeats", str(args.repeats), "--small-json", str(out)]
            argv += ["--small-rows", *map(str, args.small_rows)]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            per_process.append(json.loads(out.read_text()))
            ratios = ", ".join(f"{r['ratio']:.3f}" for r in per_process[-1])
            print(f"# process {i + 1}: ratios {ratios}", flush=True)
    rows = []
    for j, n_rows in enumerate(args.small_rows):
        ratios = [p[j]["ratio"] for p in per_process]
        cpu = [p[j]["CPU-time ratio"] for p in per_process]
        rows.append(
            {
                "rows": n_rows,
                "steps": per_process[0][j]["steps"],
                "median ratio": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
                "median CPU-time ratio": statistics.median(cpu),
                "processes <= 1.1": f"{sum(r <= 1.1 for r in ratios)}/{len(ratios)}",
                "same last loss": "yes"
                if all(p[j]["same last loss"] == "yes" for p in per_process)
                else "no",
            }
        )
    print_table(rows, list(rows[0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: 20 (--sweep: 5)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--skip", nargs="*", default=[], help="substrings of methods to skip"
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="every estimator's default path vs a hand-written loop, per batch size",
    )
    parser.add_argument(
        "--only", nargs="*", default=[], help="--sweep: estimator names to run"
    )
    parser.add_argument(
        "--batch-sizes", nargs="*", type=int, default=list(SWEEP_BATCH_SIZES)
    )
    parser.add_argument(
        "--quick", action="store_true", help="--sweep: 1 epoch, 1 repeat, a smoke test"
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="OutlierDetector's default members on small data vs a hand-written loop",
    )
    parser.add_argument("--small-rows", nargs="*", type=int, default=list(SMALL_ROWS))
    parser.add_argument(
        "--skip-detector", action="store_true", help="--small: no wine fit"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="--small: count instructions under valgrind instead of timing",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="--small: run it in this many fresh processes and report the "
        "spread of their ratios",
    )
    # Internal: where a --small process writes its rows for --processes.
    parser.add_argument("--small-json", help=argparse.SUPPRESS)
    # Internal: the process counted under valgrind (side, rows, epochs).
    parser.add_argument("--count-small", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_small:
        side, n_rows, epochs = args.count_small
        count_small_child(side, int(n_rows), int(epochs))
        return
    if args.small and args.instructions:
        run_small_instructions(args)
        return
    if args.small and args.processes:
        run_small_processes(args)
        return
    if args.small:
        run_small(args)
        return
    if args.sweep:
        if args.quick:
            args.epochs, args.repeats = 1, 1
        args.epochs = args.epochs or 5
        run_sweep(args)
        return
    args.epochs = args.epochs or 20
    device = resolve_device(args.device)
    X_train, X_test = load_data()
    print(
        f"# {X_train.shape[0]} x {X_train.shape[1]} train rows, {args.epochs} "
        f"epochs, batch {args.batch_size}, device {device}; {machine_line()}"
    )
    methods = {k: v for k, v in METHODS.items() if not any(s in k for s in args.skip)}
    times = {name: [] for name in methods}
    errors = {}
    run_skae(
        X_train[:512], X_test, argparse.Namespace(**{**vars(args), "epochs": 1}), device
    )
    for _ in range(args.repeats):  # interleaved, so drift hits all methods
        for name, fn in methods.items():
            seconds, err = fn(X_train, X_test, args, device)
            times[name].append(seconds)
            errors[name] = err
    base = statistics.median(times["plain PyTorch loop"])
    rows = []
    for name in methods:
        t = statistics.median(times[name])
        rows.append(
            {
                "method": name,
                "fit time (s, median)": t,
                "ratio to plain loop": t / base,
                "held-out MSE": errors[name],
            }
        )
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
