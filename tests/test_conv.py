"""ConvAutoencoder: the network's shapes and arithmetic, per-channel scaling,
image_shape inference, denoising, persistence and scikit-learn composition."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

import skae
from skae import ConvAutoencoder
from skae._conv import resolve_image_shape
from skae._denoising import DenoisingObjective
from skae._objectives import ReconstructionObjective
from skae._sources import chunked_statistics, pooled_statistics
from skae.nn import AutoencoderModule, ConvAutoencoderModule
from skae.nn._conv import conv_output_size, transposed_output_padding

da = pytest.importorskip("dask.array")


def fit_quietly(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


# ----------------------------------------------------------------- network
@pytest.mark.parametrize(
    "image_shape", [(1, 28, 28), (3, 5, 7), (2, 1, 9), (1, 1, 1), (1, 8, 8)]
)
@pytest.mark.parametrize("channels", [(4,), (4, 6, 8)])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_encoder_and_decoder_shapes(image_shape, channels, kernel_size):
    n_features = int(np.prod(image_shape))
    module = ConvAutoencoderModule(image_shape, 5, channels, kernel_size)
    assert isinstance(module, AutoencoderModule)
    x = torch.randn(3, n_features)
    code = module.encode(x)
    assert code.shape == (3, 5)
    assert module.decode(code).shape == (3, n_features)
    # Every strided convolution halves the sides (rounding up) and every
    # transposed convolution restores the sides it came from, exactly.
    maps = [m for m in module.encoder if isinstance(m, torch.nn.Conv2d)]
    h = x.reshape(3, *image_shape)
    sides = [image_shape[1:]]
    for conv in maps:
        h = conv(h)
        sides.append(tuple(-(-s // 2) for s in sides[-1]))
        assert h.shape[2:] == sides[-1]
    z = code
    ups = [m for m in module.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    z = module.decoder[:3](code)
    assert z.shape[1:] == (channels[-1], *sides[-1])
    for up, side in zip(ups, reversed(sides[:-1])):
        z = up(z)
        assert z.shape[2:] == side


def test_output_size_arithmetic():
    for n in range(1, 60):
        for k in (1, 3, 5, 7):
            m = conv_output_size(n, k)
            assert m == -(-n // 2)
            padding = k // 2
            op = transposed_output_padding(m, n, k)
            assert (m - 1) * 2 - 2 * padding + k + op == n
    with pytest.raises(ValueError, match="cannot map"):
        transposed_output_padding(3, 9, 3)


def test_rows_are_read_channel_by_channel_row_by_row():
    # A 1x1 kernel of weight 1 and stride 2 picks pixels (0, 0), (0, 2), ...
    # of every channel: what reshape(-1, C, H, W) of the rows puts there.
    module = ConvAutoencoderModule((2, 4, 6), 3, (2,), kernel_size=1)
    conv = module.encoder[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        conv.weight[1, 1, 0, 0] = 1.0
        conv.bias.zero_()
    x = torch.arange(2 * 48, dtype=torch.float32).reshape(2, 48)
    maps = module.encoder[:3](x)
    images = x.reshape(2, 2, 4, 6)
    torch.testing.assert_close(maps, torch.relu(images[:, :, ::2, ::2]))


# --------------------------------------------------------------- image_shape
def test_image_shape_inference_and_errors():
    assert resolve_image_shape(None, 784) == (1, 28, 28)
    assert resolve_image_shape((3, -1, 2), 24) == (3, 4, 2)
    assert resolve_image_shape([1, 1, -1], 7) == (1, 1, 7)
    with pytest.raises(ValueError, match="Cannot infer image_shape from 10 features"):
        resolve_image_shape(None, 10)
    with pytest.raises(ValueError, match="has 12 values per image, but X has 10"):
        resolve_image_shape((1, 3, 4), 10)
    with pytest.raises(ValueError, match="not a multiple of 3"):
        resolve_image_shape((3, -1, 1), 10)
    with pytest.raises(ValueError, match="one -1"):
        resolve_image_shape((-1, -1, 2), 10)
    with pytest.raises(ValueError, match="three positive"):
        resolve_image_shape((0, 2, 5), 10)
    with pytest.raises(ValueError, match="three positive"):
        resolve_image_shape((2, 5), 10)


def test_fit_infers_square_images_and_refuses_others(digits):
    X, _ = digits
    est = fit_quietly(ConvAutoencoder(n_components=3, max_iter=1), X)
    assert est.image_shape_ == (1, 8, 8)
    assert est.architecture_["image_shape"] == (1, 8, 8)
    bad = ConvAutoencoder(max_iter=1)
    with pytest.raises(ValueError, match="image_shape"):
        bad.fit(X[:, :10])
    assert not hasattr(bad, "module_")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvAutoencoder(kernel_size=2).fit(X)
    with pytest.raises(ValueError, match="channels"):
        ConvAutoencoder(channels=(4, 0)).fit(X)
    with pytest.raises(ValueError, match="X has 10 features"):
        est.transform(X[:, :10])


# ------------------------------------------------------------------ scaling
def _two_channel_images(n=200, seed=0):
    """Channel 0 in [0, 1] with a constant border, channel 1 ~ 100 + 10 N(0, 1)."""
    rng = np.random.RandomState(seed)
    first = rng.rand(n, 4, 4)
    first[:, 0, :] = 0.0  # a constant row of pixels
    second = 100 + 10 * rng.randn(n, 4, 4)
    return np.stack([first, second], axis=1).reshape(n, 32)


@pytest.mark.parametrize("scaling", ["standard", "global", "minmax"])
def test_scaling_is_per_channel(scaling):
    X = _two_channel_images()
    est = fit_quietly(
        ConvAutoencoder(
            n_components=2,
            image_shape=(2, 4, 4),
            channels=(2,),
            loss="mse",
            scaling=scaling,
            max_iter=1,
        ),
        X,
    )
    channels = X.reshape(len(X), 2, 16)
    mean = channels.mean(axis=(0, 2))
    std = channels.std(axis=(0, 2))
    low, high = channels.min(axis=(0, 2)), channels.max(axis=(0, 2))
    offset = est.offset_.reshape(2, 16)
    scale = est.scale_.reshape(2, 16)
    # One offset and one scale per channel, the same for all its pixels ...
    assert np.all(offset == offset[:, :1]) and np.all(scale == scale[:, :1])
    if scaling == "standard":
        np.testing.assert_allclose(offset[:, 0], mean, rtol=1e-10)
        np.testing.assert_allclose(scale[:, 0], std, rtol=1e-10)
    elif scaling == "global":
        np.testing.assert_allclose(offset[:, 0], mean, rtol=1e-10)
        np.testing.assert_allclose(scale[:, 0], np.sqrt(np.mean(std**2)), rtol=1e-10)
    else:
        np.testing.assert_allclose(offset[:, 0], low, rtol=1e-10)
        np.testing.assert_allclose(scale[:, 0], high - low, rtol=1e-10)
    # ... so the constant border keeps its place instead of scaling to 0/1.
    np.testing.assert_allclose(est.data_min_.reshape(2, 16)[:, 0], low)
    np.testing.assert_allclose(est.data_max_.reshape(2, 16)[:, 0], high)


def test_per_channel_statistics_pool_pixels():
    X = np.random.RandomState(0).randn(50, 3, 5) * [[1.0], [4.0], [0.1]]
    pooled = pooled_statistics(
        chunked_statistics(X.reshape(50, 15)), (3, 5), channel_axis=0
    )
    np.testing.assert_allclose(pooled.mean[::5], X.mean(axis=(0, 2)), atol=1e-12)
    np.testing.assert_allclose(pooled.std[::5], X.std(axis=(0, 2)), rtol=1e-10)
    np.testing.assert_allclose(pooled.min[::5], X.min(axis=(0, 2)))
    np.testing.assert_allclose(pooled.max[::5], X.max(axis=(0, 2)))


# --------------------------------------------------------------- objectives
def test_noise_selects_the_denoising_objective(digits):
    X, _ = digits
    plain = fit_quietly(ConvAutoencoder(n_components=3, max_iter=1), X)
    assert type(plain._make_objective()) is ReconstructionObjective
    noisy = fit_quietly(
        ConvAutoencoder(n_components=3, noise="salt_and_pepper", max_iter=1), X
    )
    objective = noisy._make_objective()
    assert isinstance(objective, DenoisingObjective)
    # The salt and pepper values are the channel's extremes (0 and 1 here),
    # also for the border pixels that are always 0.
    assert torch.all(objective.low == 0) and torch.all(objective.high == 1)
    with pytest.raises(ValueError, match="noise_level"):
        ConvAutoencoder(noise="masking", noise_level=1.5).fit(X)


def test_training_reduces_the_reconstruction_error(digits):
    X, _ = digits
    est = ConvAutoencoder(
        n_components=8,
        channels=(8,),
        max_iter=15,
        batch_size=50,
        learning_rate=5e-3,
        loss="mse",
        random_state=0,
    )
    est = fit_quietly(est, X)
    assert est.loss_curve_[-1] < 0.7 * est.loss_curve_[0]
    X_hat = est.inverse_transform(est.transform(X))
    assert np.mean((X_hat - X) ** 2) < np.var(X, axis=0).mean()


def test_partial_fit_dask_and_persistence(digits, tmp_path):
    X, _ = digits
    params = dict(n_components=3, channels=(4,), random_state=0, batch_size=50)
    est = ConvAutoencoder(**params)
    est.partial_fit(X)
    est.partial_fit(X)
    assert est.n_iter_ == 2
    dask_fit = fit_quietly(
        ConvAutoencoder(**params, max_iter=2, early_stopping=False, shuffle=False),
        da.from_array(X, chunks=100),
    )
    numpy_fit = fit_quietly(
        ConvAutoencoder(**params, max_iter=2, early_stopping=False, shuffle=False), X
    )
    np.testing.assert_allclose(dask_fit.transform(X), numpy_fit.transform(X), atol=1e-4)
    skae.save(est, tmp_path / "conv.skae")
    loaded = skae.load(tmp_path / "conv.skae")
    assert loaded.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    np.testing.assert_array_equal(
        loaded.partial_fit(X).transform(X), est.partial_fit(X).transform(X)
    )


def test_safe_format_checks_the_conv_network(digits, tmp_path):
    X, _ = digits
    est = fit_quietly(ConvAutoencoder(n_components=3, channels=(4,), max_iter=1), X)
    est.architecture_ = {**est.architecture_, "image_shape": (1, 4, 4)}
    with pytest.raises(ValueError, match="image_shape"):
        skae.save(est, tmp_path / "bad.skae")
    est.architecture_ = {**est.architecture_, "image_shape": (1, 8, 8)}
    est.architecture_ = {**est.architecture_, "channels": (5,)}
    with pytest.raises(ValueError, match="network of architecture_"):
        skae.save(est, tmp_path / "bad.skae")
    est.architecture_ = {**est.architecture_, "channels": (4,), "kernel_size": 2}
    with pytest.raises(ValueError, match="kernel_size"):
        skae.save(est, tmp_path / "bad.skae")


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(
        ConvAutoencoder(channels=(4,), max_iter=2, random_state=0), SVC()
    )
    search = GridSearchCV(pipe, {"convautoencoder__n_components": [2, 6]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    assert search.best_params_["convautoencoder__n_components"] in (2, 6)
    assert 0 <= search.score(X, y) <= 1
