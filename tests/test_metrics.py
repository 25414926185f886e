"""Tests for skae.metrics and skae.model_selection (uniform reconstruction scoring)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.cluster import KMeans, MiniBatchKMeans  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import NMF, PCA  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline  # noqa: E402
from sklearn.preprocessing import Normalizer, StandardScaler  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from skae import AutoencoderTransformer  # noqa: E402
from skae.metrics import (  # noqa: E402
    neg_reconstruction_error,
    reconstruct,
    reconstruction_error,
)
from skae.model_selection import compare_reconstruction, plot_comparison  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def _split(X):
    return X[:200], X[200:]


def test_reconstruction_error_pca_equals_hand_computed(digits):
    X_train, X_test = _split(digits[0])
    pca = PCA(n_components=5).fit(X_train)
    # Project the centred test data on the components and back by hand.
    centred = X_test - pca.mean_
    X_hat = centred @ pca.components_.T @ pca.components_ + pca.mean_
    expected = np.mean((X_test - X_hat) ** 2)
    assert reconstruction_error(pca, X_test) == pytest.approx(expected, rel=1e-10)
    assert neg_reconstruction_error(pca, X_test) == pytest.approx(-expected)


def test_reconstruction_error_pipeline_is_in_units_of_X(digits):
    X_train, X_test = _split(digits[0])
    pipe = Pipeline([("scale", StandardScaler()), ("pca", PCA(n_components=5))])
    pipe.fit(X_train)
    scaler, pca = pipe.named_steps["scale"], pipe.named_steps["pca"]
    Xs = scaler.transform(X_test)
    Xs_hat = (Xs - pca.mean_) @ pca.components_.T @ pca.components_ + pca.mean_
    X_hat = Xs_hat * scaler.scale_ + scaler.mean_
    expected = np.mean((X_test - X_hat) ** 2)
    assert reconstruction_error(pipe, X_test) == pytest.approx(expected, rel=1e-10)
    # Not the error in the scaled space.
    assert reconstruction_error(pipe, X_test) != pytest.approx(
        np.mean((Xs - Xs_hat) ** 2)
    )


def test_reconstruction_error_kmeans_uses_assigned_centroid(digits):
    X_train, X_test = _split(digits[0])
    km = KMeans(n_clusters=6, n_init=2, random_state=0).fit(X_train)
    # The nearest centroid, found by brute force.
    dist = ((X_test[:, None, :] - km.cluster_centers_[None]) ** 2).sum(axis=2)
    X_hat = km.cluster_centers_[dist.argmin(axis=1)]
    expected = np.mean((X_test - X_hat) ** 2)
    assert reconstruction_error(km, X_test) == pytest.approx(expected, rel=1e-10)


def test_reconstruction_error_minibatch_kmeans_in_pipeline(digits):
    X_train, X_test = _split(digits[0])
    pipe = make_pipeline(
        StandardScaler(), MiniBatchKMeans(n_clusters=4, n_init=1, random_state=0)
    ).fit(X_train)
    scaler, km = pipe[0], pipe[-1]
    X_hat = scaler.inverse_transform(
        km.cluster_centers_[km.predict(scaler.transform(X_test))]
    )
    assert reconstruct(pipe, X_test) == pytest.approx(X_hat)


def test_reconstruction_error_nmf_and_autoencoder(digits):
    X_train, X_test = _split(digits[0])
    nmf = NMF(n_components=4, max_iter=100, random_state=0).fit(X_train)
    expected = np.mean((X_test - nmf.inverse_transform(nmf.transform(X_test))) ** 2)
    assert reconstruction_error(nmf, X_test) == pytest.approx(expected)
    ae = AutoencoderTransformer(n_components=4, max_iter=2, random_state=0)
    ae.fit(X_train)
    expected = np.mean((X_test - ae.inverse_transform(ae.transform(X_test))) ** 2)
    assert reconstruction_error(ae, X_test) == pytest.approx(expected)


def test_reconstruction_error_accepts_dataframe(digits):
    X_train, X_test = _split(digits[0])
    columns = [f"px{i}" for i in range(X_train.shape[1])]
    pca = PCA(n_components=3).fit(pd.DataFrame(X_train, columns=columns))
    value = reconstruction_error(pca, pd.DataFrame(X_test, columns=columns))
    assert value == pytest.approx(
        reconstruction_error(PCA(n_components=3).fit(X_train), X_test)
    )


@pytest.mark.parametrize(
    "estimator, match",
    [
        (SVC(), "SVC is none of these"),
        (LogisticRegression(), "LogisticRegression is none of these"),
        (make_pipeline(StandardScaler(), SVC()), "SVC is none of these"),
        (make_pipeline(Normalizer(), PCA(2)), "step 'normalizer' .* no inverse"),
    ],
)
def test_reconstruction_error_rejects_non_reconstructing_estimators(
    digits, estimator, match
):
    X, y = digits
    estimator.fit(X, y) if not isinstance(estimator, Pipeline) else None
    with pytest.raises(TypeError, match=match):
        reconstruction_error(estimator, X)


def test_reconstruction_error_unfitted_kmeans_raises_not_fitted(digits):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        reconstruction_error(KMeans(n_clusters=3), digits[0])


def test_scorer_in_cross_validate(digits):
    X, _ = digits
    result = cross_validate(
        PCA(n_components=4),
        X,
        cv=3,
        scoring={
            "rec": neg_reconstruction_error,
            "loglik": lambda est, X, y=None: est.score(X),
        },
    )
    assert result["test_rec"].shape == (3,)
    assert np.all(result["test_rec"] < 0)
    # Same number as scoring each held-out fold by hand.
    train, test = next(KFold(3).split(X))
    by_hand = -reconstruction_error(PCA(n_components=4).fit(X[train]), X[test])
    assert result["test_rec"][0] == pytest.approx(by_hand)


def test_scorer_in_cross_val_score_with_kmeans(digits):
    scores = cross_val_score(
        KMeans(n_clusters=5, n_init=1, random_state=0),
        digits[0],
        cv=2,
        scoring=neg_reconstruction_error,
    )
    assert scores.shape == (2,) and np.all(scores < 0)


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (PCA(), {"n_components": [2, 10]}),
        (
            make_pipeline(StandardScaler(), PCA()),
            {"pca__n_components": [2, 10]},
        ),
        (KMeans(n_init=1, random_state=0), {"n_clusters": [2, 10]}),
    ],
)
def test_grid_search_picks_largest_latent_size(digits, estimator, grid):
    search = GridSearchCV(estimator, grid, scoring=neg_reconstruction_error, cv=2)
    search.fit(digits[0])
    (key,) = grid
    assert search.best_params_[key] == 10
    assert search.best_score_ < 0


def test_compare_reconstruction_rows_and_columns(digits):
    X, y = digits
    df = compare_reconstruction(
        {
            "PCA": [PCA(n_components=k) for k in (2, 6)],
            "KMeans": KMeans(n_clusters=4, n_init=1, random_state=0),
        },
        X,
        y,
        cv=2,
        classifier=LogisticRegression(max_iter=200),
    )
    assert list(df.columns) == [
        "method",
        "latent_size",
        "reconstruction_error",
        "reconstruction_error_std",
        "accuracy",
        "accuracy_std",
        "fit_time",
        "transform_time",
    ]
    assert df["method"].tolist() == ["PCA", "PCA", "KMeans"]
    assert df["latent_size"].tolist() == [2, 6, 4]
    assert df.loc[1, "reconstruction_error"] < df.loc[0, "reconstruction_error"]
    assert df["accuracy"].between(0, 1).all()
    assert (df["fit_time"] > 0).all()


def test_compare_reconstruction_matches_cross_validate(digits):
    X, _ = digits
    df = compare_reconstruction([PCA(n_components=3)], X, cv=KFold(3))
    assert "accuracy" not in df
    assert df.loc[0, "method"] == "PCA"
    scores = cross_val_score(
        PCA(n_components=3), X, cv=KFold(3), scoring=neg_reconstruction_error
    )
    assert df.loc[0, "reconstruction_error"] == pytest.approx(-scores.mean())
    assert df.loc[0, "reconstruction_error_std"] == pytest.approx(scores.std())


def test_compare_reconstruction_return_folds_and_named_pairs(digits):
    X, _ = digits
    df = compare_reconstruction(
        [("linear", PCA(n_components=2)), NMF(n_components=2, max_iter=50)],
        X,
        cv=2,
        return_folds=True,
    )
    assert len(df) == 4
    assert df["method"].tolist() == ["linear", "linear", "NMF", "NMF"]
    assert df["fold"].tolist() == [0, 1, 0, 1]


def test_compare_reconstruction_fails_fast_on_bad_estimator(digits):
    with pytest.raises(TypeError, match="estimator 'svc'.*SVC is none of these"):
        compare_reconstruction({"svc": SVC(), "pca": PCA(2)}, digits[0], cv=2)
    with pytest.raises(TypeError, match="classifier must be"):
        compare_reconstruction([PCA(2)], *digits, cv=2, classifier=PCA(2))
    with pytest.raises(ValueError, match="empty"):
        compare_reconstruction([], digits[0])


def test_plot_comparison_returns_axes_with_one_line_per_method(digits):
    import matplotlib.pyplot as plt

    df = compare_reconstruction(
        {
            "PCA": [PCA(n_components=k) for k in (2, 4, 16)],
            "KMeans": [KMeans(n_clusters=k, n_init=1, random_state=0) for k in (2, 16)],
        },
        digits[0],
        cv=2,
    )
    ax = plot_comparison(df)
    assert isinstance(ax, matplotlib.axes.Axes)
    labels = [line.get_label() for line in ax.get_lines() if line.get_label()[0] != "_"]
    assert labels == ["PCA", "KMeans"]
    assert ax.get_legend() is not None
    _, given = plt.subplots()
    assert plot_comparison(df, ax=given, metric="fit_time") is given
    plt.close("all")


def test_plot_comparison_rejects_missing_columns():
    with pytest.raises(ValueError, match="lacks the column"):
        plot_comparison(pd.DataFrame({"method": ["PCA"], "latent_size": [2]}))
