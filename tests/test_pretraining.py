import numpy as np
import pytest
import torch

from skae import AutoencoderTransformer
from skae._contractive import ContractiveAE
from skae._denoising import DenoisingAE
from skae._losses import reconstruction_loss
from skae._pretraining import layer_pairs, pretrain_layerwise
from skae._sources import TensorRows
from skae._sparse import SparseAE
from skae.nn import MLPAutoencoder

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _data(n=300, d=10, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    return latent @ rng.normal(size=(3, d)) + 0.1 * rng.normal(size=(n, d))


def test_layer_pairs_mirror_and_share_parameters():
    module = MLPAutoencoder(8, 2, (6, 4), dropout=0.1)
    pairs = layer_pairs(module)
    shapes = [
        (
            p.encoder[0].in_features,
            p.encoder[0].out_features,
            p.decoder[0].in_features,
            p.decoder[0].out_features,
        )
        for p in pairs
    ]
    assert shapes == [(8, 6, 6, 8), (6, 4, 4, 6), (4, 2, 2, 4)]
    assert pairs[0].encoder[0] is module.encoder[0]
    assert pairs[0].decoder[0] is module.decoder[-1]
    own = {id(p) for p in module.parameters()}
    assert all(id(p) in own for pair in pairs for p in pair.parameters())


def test_pretrain_layerwise_on_autoencoder_transformer_module():
    X = _data()
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(8, 4),
        init="random",  # a plain MLP stack: every weight is pretrained
        learning_rate=1e-2,
        max_iter=1,
        random_state=0,
    ).fit(X)
    x = torch.as_tensor((X - ae.offset_) / ae.scale_, dtype=torch.float32)
    before = {k: v.clone() for k, v in ae.module_.state_dict().items()}
    first = layer_pairs(ae.module_)[0]
    with torch.no_grad():
        loss_before = reconstruction_loss(first(x), x, ae.loss_).mean().item()
    curves = pretrain_layerwise(
        ae.module_,
        TensorRows(x),
        loss=ae.loss_,
        make_net=ae._make_net,
        seed=0,
        epochs=15,
    )
    assert len(curves) == 3 and all(1 <= len(c) <= 15 for c in curves)
    for curve in curves:
        assert curve[-1] < curve[0]
    with torch.no_grad():
        loss_after = reconstruction_loss(first(x), x, ae.loss_).mean().item()
    assert loss_after < 0.8 * loss_before  # level 0 is a trained shallow AE
    after = ae.module_.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    "est",
    [
        DenoisingAE(n_components=2, hidden_layer_sizes=(8, 4), noise="gaussian"),
        SparseAE(n_components=12, hidden_layer_sizes=(8,), sparsity="topk", k=3),
        ContractiveAE(n_components=2, hidden_layer_sizes=(8,)),
    ],
)
def test_pretraining_then_fine_tuning_in_loss_curve(est):
    X = _data()
    est.set_params(pretraining="layerwise", max_iter=4, random_state=0)
    est.fit(X)
    n_levels = len(est.hidden_layer_sizes) + 1
    assert est.n_pretraining_iter_ == 4 * n_levels
    assert len(est.loss_curve_) == est.n_iter_ == est.n_pretraining_iter_ + 4
    again = type(est)(**est.get_params()).fit(X)
    assert again.loss_curve_ == est.loss_curve_  # reproducible
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_no_pretraining_by_default():
    X = _data()
    dae = DenoisingAE(n_components=2, max_iter=3, random_state=0).fit(X)
    assert dae.n_pretraining_iter_ == 0 and len(dae.loss_curve_) == 3


def test_pretraining_helps_a_deep_stack_start():
    X = _data(n=400)
    common = dict(
        n_components=2,
        hidden_layer_sizes=(16, 8),
        noise_level=0.0,
        noise="gaussian",
        max_iter=10,
        random_state=0,
    )
    pre = DenoisingAE(pretraining="layerwise", **common).fit(X)
    plain = DenoisingAE(**common).fit(X)
    # The first fine-tuning epoch starts from the pretrained stack.
    assert pre.loss_curve_[pre.n_pretraining_iter_] < plain.loss_curve_[0]


def test_bad_pretraining_value():
    with pytest.raises(ValueError, match="pretraining"):
        DenoisingAE(pretraining="greedy", max_iter=1).fit(_data())
