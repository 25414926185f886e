"""skae.save / skae.load: files that cannot lie.

A damaged file does not load, a crafted one fails with one clear ValueError
before anything it describes is allocated, a file relabelled as another class
is refused, a failed save leaves the old file intact, and what skae cannot
store is refused when saving. Crafted files are re-signed (their SHA-256
recomputed), as an attacker would, so that each check is reached on its own.
"""

import errno
import io
import json
import os
import pickle
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import skae
from skae import (
    VAE,
    AutoencoderTransformer,
    DenoisingAE,
    DictionaryLearner,
    OutlierDetector,
    SparseAE,
    _persistence,
)
from skae._base import BaseAutoencoder
from skae._outlier_default import AutoencoderEnsemble


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _data(n=80, d=16, seed=0):
    rng = np.random.RandomState(seed)
    return np.abs(rng.randn(n, d) @ rng.randn(d, d) + 2.0)


@pytest.fixture
def ae_file(tmp_path):
    """A fitted autoencoder, its file and its output on the data."""
    X = _data()
    ae = AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(32,), max_iter=2, random_state=0
    ).fit(X)
    path = tmp_path / "model.skae"
    skae.save(ae, path)
    return ae, path, X


def _read(path):
    payload = torch.load(path, weights_only=True)
    return payload, json.loads(payload["header"])


def _write(path, payload, header=None, *, sign=True):
    """Write ``payload`` (with ``header``) as a file; re-sign it unless told."""
    payload = dict(payload)
    if header is not None:
        payload["header"] = json.dumps(header)
    if sign:
        payload["sha256"] = _persistence._digest(payload)
    torch.save(payload, path)


def _edit_header(path, edit):
    payload, header = _read(path)
    edit(header)
    _write(path, payload, header)


def _no_building(monkeypatch):
    """Fail the test if a module is built for real (not on the meta device)."""

    def refuse(self, *args):
        raise AssertionError("a module was built before the file was validated")

    monkeypatch.setattr(BaseAutoencoder, "_restore_modules", refuse)
    monkeypatch.setattr(AutoencoderEnsemble, "_index_reference", refuse)


# ----------------------------------------------------------------- integrity
def _member_data(path):
    """Where each archive member's bytes lie in the file: {name: (start, size)}."""
    with zipfile.ZipFile(path) as archive:
        return {
            info.filename: (
                info.header_offset + 30 + len(info.filename) + len(info.extra),
                info.file_size,
            )
            for info in archive.infolist()
        }


@pytest.mark.parametrize("member", ["largest tensor", "header"])
def test_flipped_bytes_fail_the_integrity_check(ae_file, member):
    _, path, _ = ae_file
    members = _member_data(path)
    if member == "header":
        (start, size), width = members["archive/data.pkl"], 1
    else:
        tensors = [m for name, m in members.items() if "/data/" in name]
        (start, size), width = max(tensors, key=lambda m: m[1]), 8
    # Bytes in the middle of a weight matrix, or one character of the JSON
    # header (a parameter's name: the pickle around it stays valid).
    data = bytearray(path.read_bytes())
    middle = start + size // 2
    if member == "header":
        middle = start + bytes(data[start : start + size]).index(b"learning_rate")
    for i in range(middle, middle + width):
        data[i] ^= 0x01
    path.write_bytes(bytes(data))
    # The header's own CRC-32 (zip) or the SHA-256 of the whole payload.
    with pytest.raises(ValueError, match="failed its integrity check|is damaged"):
        skae.load(path)


def test_any_damage_loads_identically_or_fails_clearly(ae_file):
    ae, path, X = ae_file
    original = path.read_bytes()
    rng = np.random.RandomState(0)
    for _ in range(40):
        data = bytearray(original)
        for i in rng.randint(len(data), size=8):
            data[i] ^= 1 + rng.randint(255)
        path.write_bytes(bytes(data))
        try:
            loaded = skae.load(path)
        except ValueError as exc:
            assert str(exc)
            continue
        np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


# ------------------------------------------------------------ another class
def _relabel_as_sparse_ae(path, *, params, architecture, attributes):
    """Make the autoencoder's file name SparseAE, fixing up as told."""
    payload, header = _read(path)
    header["class"] = "SparseAE"
    if params:
        # SparseAE's own parameters, at their defaults where AE has none.
        defaults = {k: v for k, v in SparseAE().get_params().items()}
        header["params"] = {k: header["params"].get(k, v) for k, v in defaults.items()}
    arch = header["attributes"]["architecture_"]["__dict__"]
    if architecture:
        # Top-k with k = n_components keeps every unit: the same network.
        arch.update(sparsity="topk", k=arch["n_components"])
    if attributes:
        n = arch["n_components"]
        payload["tensors"]["attr.dead_units_"] = torch.zeros(n, dtype=torch.bool)
        header["attributes"].update(
            k_=n, dead_fraction_=0.0, dead_units_={"__ndarray__": "attr.dead_units_"}
        )
    _write(path, payload, header)


@pytest.mark.parametrize(
    "fixed, match",
    [
        ({}, "parameters are not those of SparseAE"),
        ({"params": True, "attributes": True}, "SparseAE describes its network by"),
        ({"params": True, "architecture": True}, r"fitted attributes \['dead_"),
    ],
    ids=["class", "class+params+attributes", "class+params+architecture"],
)
def test_a_file_relabelled_as_another_class_is_refused(ae_file, fixed, match):
    _, path, _ = ae_file
    fixed = {"params": False, "architecture": False, "attributes": False, **fixed}
    _relabel_as_sparse_ae(path, **fixed)
    with pytest.raises(ValueError, match=match):
        skae.load(path)


def test_a_file_relabelled_without_resigning_fails_the_integrity_check(ae_file):
    _, path, _ = ae_file
    payload, header = _read(path)
    header["class"] = "SparseAE"
    _write(path, payload, header, sign=False)
    with pytest.raises(ValueError, match="integrity check"):
        skae.load(path)


def test_a_dictionary_relabelled_as_an_autoencoder_is_refused(tmp_path):
    X = _data()
    path = tmp_path / "dl.skae"
    skae.save(DictionaryLearner(n_components=3, random_state=0).fit(X), path)
    for name in ("AutoencoderTransformer", "VAE"):
        _edit_header(path, lambda header, name=name: header.update({"class": name}))
        with pytest.raises(ValueError, match="parameters are not those of"):
            skae.load(path)


# ------------------------------------------------------------ crafted files
def _set_arch(key, value):
    def edit(header):
        header["attributes"]["architecture_"]["__dict__"][key] = value

    return edit


def _set_attr(name, value):
    def edit(header):
        header["attributes"][name] = value

    return edit


def _set_param(name, value):
    def edit(header):
        header["params"][name] = value

    return edit


def _both(*edits):
    def edit(header):
        for one in edits:
            one(header)

    return edit


CRAFTED = {
    # 10**12 codes would ask for terabytes; so would these hidden layers.
    "n_components=10**12": (
        _both(_set_arch("n_components", 10**12), _set_attr("n_components_", 10**12)),
        r"weight 'encoder.*shape",
    ),
    "hidden_layer_sizes=(10**6, 10**7)": (
        _set_arch("hidden_layer_sizes", {"__tuple__": [10**6, 10**7]}),
        "weights do not fit the network of architecture_",
    ),
    "n_features=10**9": (
        _both(_set_arch("n_features", 10**9), _set_attr("n_features_in_", 10**9)),
        r"offset_ must have shape \(1000000000,\)",
    ),
    "architecture_ vs n_components_": (
        _set_attr("n_components_", 5),
        r"architecture_\['n_components'\]=3 differs",
    ),
    "negative layer": (
        _set_arch("hidden_layer_sizes", {"__tuple__": [-4]}),
        "architecture_ is not one AutoencoderTransformer builds",
    ),
    "unknown activation": (
        _set_arch("activation", "swish"),
        "architecture_ is not one AutoencoderTransformer builds",
    ),
    "another class's architecture": (
        _set_arch("sparsity", "topk"),
        r"architecture_ has entries \[.*'sparsity'\], but AutoencoderTransformer",
    ),
    "too many layers": (
        _set_arch("hidden_layer_sizes", {"__tuple__": [1] * 10**5}),
        "entries for .* stored weight tensors",
    ),
    "invalid parameter": (
        _set_param("n_components", -1),
        "invalid parameters for AutoencoderTransformer",
    ),
    "parameter of the wrong type": (
        _set_param("learning_rate", "fast"),
        "invalid parameters for AutoencoderTransformer",
    ),
    "missing parameter": (
        lambda header: header["params"].pop("alpha"),
        r"missing \['alpha'\]",
    ),
    "missing attribute": (
        lambda header: header["attributes"].pop("scale_"),
        r"fitted attributes \['scale_'\] .* are missing",
    ),
    "attribute of the wrong type": (
        _set_attr("n_features_in_", "many"),
        "n_features_in_ must be an int",
    ),
    "unknown loss": (_set_attr("loss_", "hinge"), "loss_ must be a resolved value"),
    "unresolved scaling": (
        _set_attr("scaling_", "auto"),
        "scaling_ must be a resolved",
    ),
    "a method replaced": (_set_attr("transform", 1), "'transform' is not a fitted"),
    "a property replaced": (_set_attr("encoder_", 1), "'encoder_' is not a fitted"),
    "device": (_set_attr("device_", {"__device__": "meta"}), "device_ must be"),
    "unknown tag": (_set_attr("n_iter_", {"__code__": "x"}), "unexpected structure"),
    "missing tensor": (
        _set_attr("offset_", {"__ndarray__": "nowhere"}),
        "missing tensor 'nowhere'",
    ),
    "one tensor twice": (
        _set_attr("scale_", {"__ndarray__": "attr.offset_"}),
        "tensor 'attr.offset_' twice",
    ),
    "unknown class": (
        lambda header: header.update({"class": "os.system"}),
        "unknown estimator 'os.system'",
    ),
    "header of another shape": (lambda header: header.pop("modules"), "not an skae"),
}


@pytest.mark.parametrize("edit, match", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_header_fails_clearly_before_building(
    ae_file, monkeypatch, edit, match
):
    _, path, _ = ae_file
    _edit_header(path, edit)
    _no_building(monkeypatch)
    with pytest.raises(ValueError, match=match) as info:
        skae.load(path)
    assert type(info.value) is ValueError and str(path) in str(info.value)


def _edit_tensors(path, edit, sign=True):
    payload, _ = _read(path)
    edit(payload["tensors"])
    _write(path, payload, sign=sign)


def test_crafted_tensors_fail_clearly_before_building(ae_file, monkeypatch):
    ae, path, _ = ae_file
    _no_building(monkeypatch)
    weight, bias = list(ae.module_.state_dict())[:2]
    param = next(iter(ae._optimizer_moments))
    cases = {
        # A zero-stride view claims 10**12 entries over one stored number.
        "huge view": (
            lambda t: t.__setitem__(
                "attr.offset_", torch.zeros(1).expand(10**6, 10**6)
            ),
            "not a dense, contiguous",
        ),
        "weight shape": (
            lambda t: t.__setitem__(f"module.module_.{bias}", torch.zeros(10**4)),
            rf"weight '{bias}' is torch.float32 of shape \(10000,\)",
        ),
        "weight dtype": (
            lambda t: t.__setitem__(
                f"module.module_.{weight}", t[f"module.module_.{weight}"].double()
            ),
            f"weight '{weight}' is torch.float64",
        ),
        "weight not finite": (
            lambda t: t[f"module.module_.{weight}"].fill_(np.nan),
            f"weight '{weight}' is not finite",
        ),
        "moment shape": (
            lambda t: t.__setitem__(f"optimizer.{param}.exp_avg", torch.zeros(2, 2)),
            f"optimizer moment 'exp_avg' of '{param}'",
        ),
        "extra tensor": (
            lambda t: t.__setitem__("junk", torch.zeros(3)),
            "belong to nothing",
        ),
        "offset_ not finite": (
            lambda t: t["attr.offset_"].fill_(np.inf),
            "offset_ must be finite",
        ),
    }
    original = path.read_bytes()
    for name, (edit, match) in cases.items():
        path.write_bytes(original)
        # A view cannot be hashed without a copy: the loader refuses it first.
        _edit_tensors(path, edit, sign=name != "huge view")
        with pytest.raises(ValueError, match=match):
            skae.load(path)


def test_compressed_or_oversized_archives_are_refused_before_torch_reads_them(
    ae_file, tmp_path, monkeypatch
):
    _, path, _ = ae_file

    def never(*args, **kwargs):
        raise AssertionError("torch.load ran on an archive that should be refused")

    # A small file whose members inflate to 64 MB.
    bomb = tmp_path / "bomb.skae"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w") as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info), zipfile.ZIP_DEFLATED)
        out.writestr("archive/data/zeros", bytes(64 * 2**20), zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2**20
    # A member that claims more bytes than the whole file has.
    liar = tmp_path / "liar.skae"
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first member's directory entry
    data[entry + 20 : entry + 28] = (2**31).to_bytes(4, "little") * 2  # its sizes
    liar.write_bytes(bytes(data))
    # A pickle of a million one-byte instructions (a million dicts).
    busy = tmp_path / "busy.skae"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(busy, "w") as out:
        for info in src.infolist():
            member = src.read(info)
            if info.filename.endswith("data.pkl"):
                member = b"\x80\x02](" + b"}" * 10**6 + b"e."
            out.writestr(info.filename, member)

    monkeypatch.setattr(torch, "load", never)
    for crafted, match in [
        (bomb, "is compressed"),
        (liar, "declares 2147483648 bytes"),
        (busy, "more than .* pickle instructions"),
    ]:
        with pytest.raises(ValueError, match=match):
            skae.load(crafted)
    with pytest.raises(ValueError, match="more than max_bytes=1000"):
        skae.load(path, max_bytes=1000)


# ------------------------------------------------------------ atomic saves
def test_a_save_failing_part_way_leaves_the_old_file_intact(
    ae_file, tmp_path, monkeypatch
):
    ae, path, X = ae_file
    before = path.read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        # Half a file, then the error a full disk gives (torch.save truncates
        # a path it is given, as a real failing save would).
        buffer = io.BytesIO()
        real_save(obj, buffer)
        with open(f, "wb") if isinstance(f, (str, os.PathLike)) else f as out:
            out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        skae.save(ae.partial_fit(X), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.skae"]


def test_save_replaces_an_existing_file(ae_file):
    ae, path, X = ae_file
    ae.partial_fit(X)
    skae.save(ae, path)
    np.testing.assert_array_equal(skae.load(path).transform(X), ae.transform(X))
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.skae"]


# ------------------------------------------------------ what is refused
def test_save_refuses_what_skae_does_not_store(tmp_path):
    X = _data()
    with pytest.raises(TypeError, match="skae.save stores skae estimators; got PCA"):
        skae.save(PCA(2).fit(X), tmp_path / "pca.skae")
    with pytest.raises(NotFittedError):
        skae.save(AutoencoderTransformer(), tmp_path / "unfitted.skae")
    ae = AutoencoderTransformer(max_iter=2, random_state=0).fit(X)
    ae.set_params(n_components=-1)  # load would refuse this parameter
    with pytest.raises(ValueError, match="Cannot save .*'n_components' parameter"):
        skae.save(ae, tmp_path / "invalid.skae")
    ae.set_params(n_components=2)
    ae.notes_ = "a fitted attribute no skae estimator has"
    with pytest.raises(ValueError, match=r"no fitted attributes \['notes_'\]"):
        skae.save(ae, tmp_path / "extra.skae")
    assert list(tmp_path.iterdir()) == []


def test_load_reports_missing_files_and_foreign_files_in_its_own_words(tmp_path):
    with pytest.raises(FileNotFoundError):
        skae.load(tmp_path / "missing.skae")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"format": "skae-estimator"}))
    with pytest.raises(ValueError, match="not a readable skae file") as info:
        skae.load(plain)
    assert "weights_only" not in str(info.value)
    # A torch archive holding an object: torch would advise an unsafe load.
    foreign = tmp_path / "foreign.skae"
    torch.save({"format": "skae-estimator", "x": _Foreign()}, foreign)
    with pytest.raises(ValueError, match="not a readable skae file") as info:
        skae.load(foreign)
    assert "weights_only" not in str(info.value)


class _Foreign:
    pass


def test_files_of_format_version_2_are_refused_by_version(ae_file):
    _, path, _ = ae_file
    payload, header = _read(path)
    _write(path, {**payload, "format_version": 2}, header)
    with pytest.raises(ValueError, match="format version 2"):
        skae.load(path)


def test_load_checks_its_classes_argument(ae_file):
    _, path, _ = ae_file
    with pytest.raises(TypeError, match="skae estimator classes"):
        skae.load(path, classes=[PCA])


# ------------------------------------------------------- what still loads
@pytest.mark.parametrize(
    "est",
    [
        AutoencoderTransformer(n_components=3, early_stopping=True),
        SparseAE(n_components=6, sparsity="topk"),
        DenoisingAE(n_components=3, noise="salt_and_pepper"),
        VAE(n_components=3),
        DictionaryLearner(n_components=3, code="onehot"),
    ],
    ids=lambda est: type(est).__name__,
)
def test_optional_attributes_round_trip(est, tmp_path):
    X = pd.DataFrame(_data(), columns=[f"f{i}" for i in range(16)])
    est = est.set_params(max_iter=3, random_state=0).fit(X)
    path = tmp_path / "model.skae"
    skae.save(est, path)
    loaded = skae.load(path)
    assert loaded.feature_names_in_.tolist() == X.columns.tolist()
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


class _NotedAE(AutoencoderTransformer):
    """A user's estimator with a fitted attribute of its own."""

    def fit(self, X, y=None):
        super().fit(X, y)
        self.notes_ = np.arange(3)
        return self


def test_a_users_class_may_add_fitted_attributes(tmp_path):
    X = _data()
    est = _NotedAE(max_iter=2, random_state=0).fit(X)
    skae.save(est, tmp_path / "noted.skae")
    loaded = skae.load(tmp_path / "noted.skae", classes=[_NotedAE])
    assert type(loaded) is _NotedAE
    np.testing.assert_array_equal(loaded.notes_, est.notes_)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))


# ------------------------------------------------------- outlier detectors
def _ensemble():
    return AutoencoderEnsemble(
        n_estimators=2, hidden_layer_size=4, n_steps=10, random_state=0
    )


DETECTOR_ESTIMATORS = {
    "AutoencoderEnsemble": _ensemble(),
    "AutoencoderTransformer": AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(8,), max_iter=3, random_state=0
    ),
    "VAE": VAE(n_components=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0),
    "DictionaryLearner": DictionaryLearner(n_components=3, random_state=0),
}


@pytest.mark.parametrize(
    "inner", DETECTOR_ESTIMATORS.values(), ids=DETECTOR_ESTIMATORS.keys()
)
def test_a_detector_round_trips_bit_identically_and_continues_its_stream(
    inner, tmp_path
):
    columns = [f"f{i}" for i in range(16)]
    X, X_new = (pd.DataFrame(_data(seed=s), columns=columns) for s in (0, 1))
    X_new.iloc[:3] *= 5.0  # a few rows far from the training data
    det = OutlierDetector(clone(inner), level=0.2, random_state=0)
    det.fit(X).partial_fit(X_new)
    path = tmp_path / "detector.skae"
    skae.save(det, path)
    loaded = skae.load(path)
    assert type(loaded.estimator_) is type(inner)
    for method in ("predict", "score_samples", "p_values", "feature_scores"):
        np.testing.assert_array_equal(
            getattr(loaded, method)(X_new), getattr(det, method)(X_new)
        )
    np.testing.assert_array_equal(
        loaded.predict(X_new, fdr=0.2), det.predict(X_new, fdr=0.2)
    )
    assert loaded.offset_ == det.offset_ and loaded.n_batches_ == 1
    # The next batch takes the step the original (here a pickled twin) takes.
    twin = pickle.loads(pickle.dumps(det))
    loaded.partial_fit(X)
    twin.partial_fit(X)
    np.testing.assert_array_equal(
        loaded.score_samples(X_new), twin.score_samples(X_new)
    )
    np.testing.assert_array_equal(loaded.calibration_scores_, twin.calibration_scores_)
    assert loaded.offset_ == twin.offset_


def test_a_stream_started_by_partial_fit_round_trips(tmp_path):
    X = _data().astype(np.float32)
    # One row: it goes to the ensemble, so the held-out window is empty.
    det = OutlierDetector(_ensemble(), random_state=0).partial_fit(X[:1])
    assert det.calibration_data_.shape == (0, 16)
    skae.save(det, tmp_path / "stream.skae")
    loaded = skae.load(tmp_path / "stream.skae")
    assert loaded.calibration_data_.dtype == np.float32
    assert loaded.offset_ == -np.inf
    loaded.partial_fit(X)
    det.partial_fit(X)
    np.testing.assert_array_equal(loaded.calibration_data_, det.calibration_data_)
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


@pytest.fixture
def detector_file(tmp_path):
    """A fitted detector around the default ensemble, and its file (16
    held-out rows: too few for level=0.05, so offset_ is -inf)."""
    X = _data()
    with pytest.warns(UserWarning, match="cannot support level=0.05"):
        det = OutlierDetector(_ensemble(), random_state=0).fit(X)
    path = tmp_path / "detector.skae"
    skae.save(det, path)
    return det, path, X


def _inner(header):
    return header["attributes"]["estimator_"]["__fitted__"]


def _member(header):
    return _inner(header)["attributes"]["estimators_"][0]["__fitted__"]


def _move_member_weight(header, tensors):
    """Store a member's weight outside the member's own key prefix."""
    weights = _member(header)["modules"]["module_"]
    key = next(iter(weights))
    tensors["attr.stray"] = tensors.pop(weights[key])
    weights[key] = "attr.stray"


def _set_tensor(key, make):
    def edit(header, tensors):
        tensors[key] = make(tensors[key])

    return edit


def _in_header(edit):
    return lambda header, tensors: edit(header)


MEMBER = "attr.estimator_.attr.estimators_.0."
CRAFTED_DETECTORS = {
    "estimator_ of a foreign class": (
        _in_header(lambda h: _inner(h).update({"class": "PCA"})),
        "estimator_ must be an skae autoencoder, a DictionaryLearner or the "
        "default AutoencoderEnsemble, got 'PCA'",
    ),
    "estimator_ of another skae class": (
        _in_header(lambda h: _inner(h).update({"class": "VAE"})),
        r"estimator_ \(VAE\): its parameters are not those of VAE",
    ),
    "a detector in a detector": (
        _in_header(lambda h: _inner(h).update({"class": "OutlierDetector"})),
        "estimator_ must be an skae autoencoder.*got 'OutlierDetector'",
    ),
    "member of another class": (
        _in_header(lambda h: _member(h).update({"class": "VAE"})),
        r"estimators_\[0\] must be a fitted AutoencoderTransformer, got 'VAE'",
    ),
    "missing nested attribute": (
        _in_header(lambda h: _member(h)["attributes"].pop("scale_")),
        r"estimators_\[0\] \(AutoencoderTransformer\): fitted attributes "
        r"\['scale_'\] of AutoencoderTransformer are missing",
    ),
    "nested estimator not fitted": (
        _in_header(lambda h: _inner(h).update({"attributes": {}})),
        r"estimator_ \(AutoencoderEnsemble\): fitted attributes .* are missing",
    ),
    "estimator_ stored unfitted": (
        _in_header(
            lambda h: h["attributes"].update(
                estimator_={"__estimator__": {"class": "VAE", "params": {}}}
            )
        ),
        "estimator_ must be a fitted estimator",
    ),
    "nested weight not finite": (
        lambda h, t: next(v for k, v in t.items() if ".module." in k).fill_(np.nan),
        r"estimators_\[0\] \(AutoencoderTransformer\): weight .* is not finite",
    ),
    "nested tensor outside its prefix": (
        _move_member_weight,
        f"tensor 'attr.stray' lies outside its estimator's prefix '{MEMBER}'",
    ),
    "normalizers of another length": (
        _set_tensor("attr.estimator_.attr.normalizers_", lambda t: torch.ones(3)),
        r"normalizers_ must have shape \(2,\)",
    ),
    "calibration rows of another width": (
        _set_tensor("attr.calibration_data_", lambda t: t[:, :5].clone()),
        r"calibration_data_ must be a float32 or float64 array of shape "
        r"\(n_calibration, 16\)",
    ),
    "calibration scores of another length": (
        _set_tensor("attr.calibration_scores_", lambda t: t[:-1].clone()),
        r"calibration_scores_ must have shape \(16,\), got \(15,\)",
    ),
    "unsorted calibration scores": (
        _set_tensor("attr.calibration_scores_", lambda t: t.flip(0)),
        "calibration_scores_ must be sorted float64 scores",
    ),
    "calibration row not finite": (
        _set_tensor("attr.calibration_data_", lambda t: t.fill_(np.inf)),
        "calibration_data_ must be finite",
    ),
    "NaN offset": (
        _in_header(_set_attr("offset_", float("nan"))),
        "offset_ must be a number below",
    ),
    "+inf offset": (
        _in_header(_set_attr("offset_", float("inf"))),
        "offset_ must be a number below",
    ),
    "estimator_ of another width": (
        _in_header(_set_attr("n_features_in_", 17)),
        r"feature_weights_ must have shape \(17,\)",
    ),
    "a module on the detector": (
        _in_header(lambda h: h.update(modules={"module_": {}})),
        "OutlierDetector has no torch module or optimizer of its own",
    ),
    "estimator parameter of a foreign class": (
        _in_header(
            _set_param("estimator", {"__estimator__": {"class": "PCA", "params": {}}})
        ),
        "a parameter names 'PCA', which is not an skae autoencoder",
    ),
}


@pytest.mark.parametrize(
    "edit, match", CRAFTED_DETECTORS.values(), ids=CRAFTED_DETECTORS.keys()
)
def test_crafted_detector_fails_clearly_before_building(
    detector_file, monkeypatch, edit, match
):
    _, path, _ = detector_file
    payload, header = _read(path)
    edit(header, payload["tensors"])
    _write(path, payload, header)
    _no_building(monkeypatch)
    with pytest.raises(ValueError, match=match) as info:
        skae.load(path)
    assert type(info.value) is ValueError and str(path) in str(info.value)


def test_the_digest_covers_a_nested_estimators_tensors(detector_file):
    det, path, X = detector_file
    loaded = skae.load(path)
    assert loaded.offset_ == -np.inf
    np.testing.assert_array_equal(loaded.predict(X), det.predict(X))
    payload, header = _read(path)
    payload["tensors"][MEMBER + "attr.scale_"] *= 2.0
    _write(path, payload, header, sign=False)
    with pytest.raises(ValueError, match="integrity check"):
        skae.load(path)


def test_save_refuses_a_detector_around_an_estimator_skae_does_not_store(tmp_path):
    X = _data()
    with pytest.raises(
        TypeError, match="its estimator_ is a fitted PCA.*Save it with joblib"
    ):
        skae.save(OutlierDetector(PCA(2), level=0.2).fit(X), tmp_path / "pca.skae")
    # The parameter alone (set after fitting) is refused the same way.
    det = OutlierDetector(_ensemble(), level=0.2, random_state=0).fit(X)
    det.set_params(estimator=PCA(2))
    with pytest.raises(TypeError, match="'estimator', a PCA.*with joblib"):
        skae.save(det, tmp_path / "param.skae")
    with pytest.raises(NotFittedError):
        skae.save(OutlierDetector(), tmp_path / "unfitted.skae")
    assert list(tmp_path.iterdir()) == []
