"""SequenceAutoencoder, its recurrent network and the time-series helpers."""

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

import skae
from skae import SequenceAutoencoder, _persistence
from skae.nn import RecurrentAutoencoder, RecurrentDecoder, RecurrentEncoder
from skae.timeseries import n_windows, sliding_windows, window_scores_to_steps


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _sines(n=120, n_steps=10, n_channels=2, seed=0):
    """Windows of sines with random phases: (n, n_steps, n_channels)."""
    rng = np.random.RandomState(seed)
    t = np.arange(n_steps)[None, :, None] * 0.5
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    freq = 1.0 + 0.5 * np.arange(n_channels)[None, None, :]
    return np.sin(freq * t + phase) + 0.05 * rng.randn(n, n_steps, n_channels)


def _small(**params):
    defaults = dict(n_components=3, hidden_size=8, max_iter=3, random_state=0)
    return SequenceAutoencoder(**{**defaults, **params})


# ------------------------------------------------------------------ network
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_shapes_through_encoder_and_decoder(cell, num_layers):
    module = RecurrentAutoencoder(
        21, 4, n_steps=7, n_channels=3, cell=cell, hidden_size=5, num_layers=num_layers
    )
    x = torch.randn(6, 21)
    z = module.encode(x)
    assert z.shape == (6, 4)
    assert module.decode(z).shape == (6, 21)
    assert module(x).shape == (6, 21)
    assert module.encoder.rnn.num_layers == module.decoder.rnn.num_layers == num_layers


def test_encoder_reads_rows_step_by_step():
    # Row layout [x_1[0], x_1[1], x_2[0], ...]: the recurrent network must see
    # x.reshape(n, n_steps, n_channels), step t's channels together.
    torch.manual_seed(0)
    encoder = RecurrentEncoder(4, 3, 2, hidden_size=5)
    x = torch.randn(6, 12)
    outputs, _ = encoder.rnn(x.reshape(6, 4, 3))
    expected = encoder.code(outputs[:, -1])
    torch.testing.assert_close(encoder(x), expected)
    # The step order matters: reversing the steps changes the code.
    reversed_steps = x.reshape(6, 4, 3).flip(1).reshape(6, 12)
    assert not torch.allclose(encoder(reversed_steps), expected)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_decoder_unrolls_the_code_from_its_initial_state(cell):
    torch.manual_seed(0)
    decoder = RecurrentDecoder(4, 3, 2, cell=cell, hidden_size=5)
    z = torch.randn(6, 2)
    # By hand: state = tanh(initial(z)), input z at each of the 4 steps.
    state = torch.tanh(decoder.initial(z)).reshape(6, -1, 1, 5).permute(1, 2, 0, 3)
    state = (state[0], state[1]) if cell == "lstm" else state[0]
    outputs, _ = decoder.rnn(z[:, None, :].repeat(1, 4, 1), state)
    expected = decoder.readout(outputs).reshape(6, 12)
    torch.testing.assert_close(decoder(z), expected)


@pytest.mark.parametrize(
    "sizes, match",
    [
        (dict(n_steps=4, n_channels=4), "not n_features=12"),
        (dict(n_steps=0, n_channels=3), "n_steps must be a positive integer"),
        (dict(n_steps=4.0, n_channels=3), "n_steps must be a positive integer"),
    ],
)
def test_network_refuses_inconsistent_sizes(sizes, match):
    with pytest.raises(ValueError, match=match):
        RecurrentAutoencoder(12, 2, **sizes)


# ---------------------------------------------------------------- estimator
def test_transform_and_inverse_transform_shapes():
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2)).fit(X)
    Z = ae.transform(X)
    assert Z.shape == (120, 3)
    assert ae.inverse_transform(Z).shape == (120, 20)
    assert ae.score_samples(X).shape == (120,)
    assert ae.score_steps(X).shape == (120, 10)
    assert ae.sequence_shape_ == (10, 2)
    assert ae.architecture_["n_steps"] == 10


def test_sequence_shape_inferred_as_one_channel():
    X = _sines(n_channels=1).reshape(120, -1)
    ae = _small().fit(X)
    assert ae.sequence_shape_ == (10, 1)
    assert ae.sequence_shape is None  # the parameter is left untouched


@pytest.mark.parametrize(
    "shape, match",
    [
        ((5, 3), r"5 x 3 = 15 features, but X has 20 features"),
        ((20,), "pair of positive integers"),
        ((10, 2, 1), "pair of positive integers"),
        ((0, 20), "pair of positive integers"),
        ((10.0, 2), "pair of positive integers"),
        ((True, 20), "pair of positive integers"),
    ],
)
def test_bad_sequence_shape_is_a_clear_error(shape, match):
    X = _sines().reshape(120, -1)
    with pytest.raises(ValueError, match=match):
        _small(sequence_shape=shape).fit(X)


def test_bad_sequence_shape_leaves_a_fitted_model_unchanged():
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2)).fit(X)
    before = ae.transform(X)
    ae.set_params(sequence_shape=(3, 3))
    with pytest.raises(ValueError, match="sequence_shape"):
        ae.fit(X)
    np.testing.assert_array_equal(ae.transform(X), before)
    assert ae.sequence_shape_ == (10, 2)


def _per_channel(windows, reduce):
    return np.array([reduce(windows[:, :, c]) for c in range(windows.shape[2])])


@pytest.mark.parametrize("scaling", ["standard", "minmax", "global"])
def test_scaling_is_per_channel_not_per_step(scaling):
    windows = _sines(n_steps=6, n_channels=3)
    # Channels in very different units, and a trend along the steps, so that
    # per-step statistics would differ from per-channel ones.
    windows = windows * np.array([1000.0, 1.0, 0.01]) + np.array([5.0, -2.0, 0.3])
    windows = windows + 0.2 * np.arange(6)[None, :, None]
    X = windows.reshape(len(windows), -1)
    ae = _small(sequence_shape=(6, 3), scaling=scaling, max_iter=1).fit(X)
    offset = ae.offset_.reshape(6, 3)
    scale = ae.scale_.reshape(6, 3)
    # Every step of a channel is scaled alike ...
    np.testing.assert_array_equal(offset, np.tile(offset[0], (6, 1)))
    np.testing.assert_array_equal(scale, np.tile(scale[0], (6, 1)))
    # ... with the statistics of all the channel's values (hand-computed).
    if scaling == "standard":
        np.testing.assert_allclose(offset[0], _per_channel(windows, np.mean))
        np.testing.assert_allclose(scale[0], _per_channel(windows, np.std))
    elif scaling == "minmax":
        low, high = _per_channel(windows, np.min), _per_channel(windows, np.max)
        np.testing.assert_allclose(offset[0], low)
        np.testing.assert_allclose(scale[0], high - low)
    else:
        np.testing.assert_allclose(offset[0], _per_channel(windows, np.mean))
        var = _per_channel(windows, np.var)
        np.testing.assert_allclose(scale[0], np.sqrt(var.mean()))


def test_auto_scaling_standardizes_channels_for_mse_and_keeps_unit_data():
    X = _sines().reshape(120, -1) * 50
    assert _small(max_iter=1).fit(X).scaling_ == "standard"
    unit = (_sines().reshape(120, -1) + 1.2) / 2.4
    ae = _small(max_iter=1).fit(unit)
    assert (ae.loss_, ae.scaling_) == ("bce", "minmax")
    np.testing.assert_array_equal(ae.offset_, 0.0)


def test_training_reduces_the_reconstruction_error():
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2), max_iter=30, learning_rate=1e-2).fit(X)
    assert ae.loss_curve_[-1] < 0.8 * ae.loss_curve_[0]


def test_score_steps_averages_to_score_samples():
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2)).fit(X)
    np.testing.assert_allclose(
        ae.score_steps(X).mean(axis=1), ae.score_samples(X), rtol=1e-5
    )


def test_score_steps_finds_the_anomalous_step():
    windows = _sines(n_steps=10, n_channels=2)
    X = windows.reshape(120, -1)
    ae = _small(sequence_shape=(10, 2), max_iter=30, learning_rate=1e-2).fit(X)
    spiked = windows[:5].copy()
    spiked[np.arange(5), [1, 3, 5, 7, 8], 1] += 8.0  # one spike per window
    steps = ae.score_steps(spiked.reshape(5, -1))
    np.testing.assert_array_equal(steps.argmin(axis=1), [1, 3, 5, 7, 8])
    assert np.all(ae.score_samples(spiked.reshape(5, -1)) < ae.score_samples(X).min())


def test_partial_fit_continues_training():
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2))
    ae.partial_fit(X)
    assert ae.n_iter_ == 1 and ae.sequence_shape_ == (10, 2)
    weights = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    ae.partial_fit(X)
    assert ae.n_iter_ == 2
    changed = [
        not torch.equal(weights[k], v) for k, v in ae.module_.state_dict().items()
    ]
    assert all(changed)
    with pytest.raises(ValueError, match="X has 12 features"):
        ae.partial_fit(X[:, :12])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_save_and_load_round_trip(cell, tmp_path):
    X = _sines().reshape(120, -1)
    ae = _small(sequence_shape=(10, 2), cell=cell, num_layers=2).fit(X)
    path = tmp_path / "seq.skae"
    skae.save(ae, path)
    loaded = skae.load(path)
    assert loaded.sequence_shape_ == (10, 2)
    np.testing.assert_array_equal(loaded.score_steps(X), ae.score_steps(X))
    # Training continues exactly as the saved model's would.
    np.testing.assert_array_equal(
        loaded.partial_fit(X).transform(X), ae.partial_fit(X).transform(X)
    )


def _edit_architecture(path, **entries):
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["header"])
    header["attributes"]["architecture_"]["__dict__"].update(entries)
    payload["header"] = json.dumps(header)
    payload["sha256"] = _persistence._digest(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    "entries, match",
    [
        (dict(n_steps=5), "not n_features=20"),
        (dict(n_steps=20, n_channels=1), r"weight 'encoder.rnn.weight_ih_l0' .* shape"),
        (dict(num_layers=10**6), r"num_layers'\]=1000000 for"),
        (dict(cell="rnn"), "not one SequenceAutoencoder builds"),
        (dict(hidden_size=10**5), r"weight 'encoder.rnn.weight_ih_l0' .* shape"),
    ],
)
def test_crafted_architecture_is_refused(entries, match, tmp_path):
    X = _sines().reshape(120, -1)
    path = tmp_path / "seq.skae"
    skae.save(_small(sequence_shape=(10, 2), max_iter=1).fit(X), path)
    _edit_architecture(path, **entries)
    with pytest.raises(ValueError, match=match):
        skae.load(path)


# ------------------------------------------------------------- time series
def test_sliding_windows_layout_one_and_several_channels():
    np.testing.assert_array_equal(
        sliding_windows(np.arange(7.0), window=3, stride=2),
        [[0, 1, 2], [2, 3, 4], [4, 5, 6]],
    )
    series = np.arange(10.0).reshape(5, 2)  # step t holds (2t, 2t+1)
    X = sliding_windows(series, window=2, stride=3)
    np.testing.assert_array_equal(X, [[0, 1, 2, 3], [6, 7, 8, 9]])
    # Each row is the window as (window, n_channels), raveled.
    np.testing.assert_array_equal(X[1].reshape(2, 2), series[3:5])
    assert sliding_windows(series, window=5).shape == (1, 10)


def test_window_scores_to_steps_hand_computed():
    # 8 steps, windows of 4 every 2 steps: [0-3], [2-5], [4-7].
    step_scores = window_scores_to_steps([3.0, 6.0, 9.0], 8, window=4, stride=2)
    np.testing.assert_allclose(step_scores, [3, 3, 4.5, 4.5, 7.5, 7.5, 9, 9])
    # Per-position scores: step t averages what each covering window gave it.
    per_position = np.array(
        [[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0], [5.0, 6.0, 7.0, 8.0]]
    )
    expected = [1, 2, (3 + 10) / 2, (4 + 20) / 2, (30 + 5) / 2, (40 + 6) / 2, 7, 8]
    np.testing.assert_allclose(
        window_scores_to_steps(per_position, 8, window=4, stride=2), expected
    )


def test_window_scores_to_steps_marks_uncovered_steps():
    # 7 steps, windows of 3 every 3 steps: step 6 is in no window.
    out = window_scores_to_steps([1.0, 2.0], 7, window=3, stride=3)
    np.testing.assert_array_equal(out[:6], [1, 1, 1, 2, 2, 2])
    assert np.isnan(out[6])
    assert n_windows(7, 3, 3) == 2


def test_windows_and_scores_round_trip_through_the_estimator():
    t = np.arange(600) * 0.3
    series = np.column_stack([np.sin(t), np.cos(0.5 * t)])
    X = sliding_windows(series, window=12, stride=4)
    ae = _small(sequence_shape=(12, 2), max_iter=1).fit(X)
    steps = window_scores_to_steps(ae.score_steps(X), len(series), 12, stride=4)
    assert steps.shape == (600,) and np.all(np.isfinite(steps))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sliding_windows(np.zeros(5), window=6), "longer than the series"),
        (lambda: sliding_windows(np.zeros(5), window=0), "window must be a positive"),
        (lambda: sliding_windows(np.zeros(5), 2, stride=0), "stride must be"),
        (
            lambda: sliding_windows(np.zeros((2, 2, 2)), 2),
            r"series must be 1-D \(n_times,\) or 2-D",
        ),
        (lambda: sliding_windows([0.0, np.nan, 1.0], 2), "NaN"),
        (lambda: window_scores_to_steps([1.0, 2.0], 8, 4, 2), r"expected \(3,\)"),
        (
            lambda: window_scores_to_steps(np.zeros((3, 3)), 8, 4, 2),
            r"or \(3, 4\)",
        ),
    ],
)
def test_time_series_helpers_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dask_fit_matches_in_memory():
    da = pytest.importorskip("dask.array", reason="dask[array] is not installed")
    X = _sines().reshape(120, -1)
    ref = _small(sequence_shape=(10, 2)).fit(X)
    fitted = _small(sequence_shape=(10, 2)).fit(da.from_array(X, chunks=(50, 20)))
    np.testing.assert_allclose(fitted.offset_, ref.offset_, rtol=1e-12)
    np.testing.assert_allclose(fitted.scale_, ref.scale_, rtol=1e-12)
    np.testing.assert_allclose(fitted.transform(X), ref.transform(X), atol=1e-5)
    steps = fitted.score_steps(da.from_array(X, chunks=(50, 20)))
    assert isinstance(steps, da.Array) and steps.shape == (120, 10)
    np.testing.assert_allclose(steps.compute(), fitted.score_steps(X), rtol=1e-6)


def test_pipeline_and_grid_search():
    windows = _sines(n=80)
    y = (windows[:, 0, 0] > 0).astype(int)  # the sign of the first value
    X = windows.reshape(80, -1)
    pipe = make_pipeline(_small(sequence_shape=(10, 2)), LogisticRegression())
    search = GridSearchCV(
        pipe, {"sequenceautoencoder__cell": ["gru", "lstm"]}, cv=2
    ).fit(X, y)
    assert search.best_params_["sequenceautoencoder__cell"] in ("gru", "lstm")
    assert search.predict(X).shape == (80,)
