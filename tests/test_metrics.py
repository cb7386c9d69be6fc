"""dcgan.metrics against independent references on synthetic data.

- the matrix square root: matrices built from a chosen eigenbasis and
  spectrum (the answer is known by construction), scipy.linalg.sqrtm when
  installed, and tr sqrt(S1 S2) against the eigenvalues of the
  non-symmetric product from numpy.linalg.eig and the 2 x 2 closed form;
- the Frechet distance against the closed form for known Gaussians (exact
  from the statistics, within sampling error from 200,000 samples);
- KID against a direct double loop over pairs;
- precision/recall on point clouds whose answer is known, and against a
  brute-force loop.
"""

import numpy as np
import pytest

from dcgan import metrics


def random_spd(rng, d, rank=None):
    """Q diag(w) Q^T with a random orthogonal Q and spectrum w (rank-deficient if rank < d)."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    w = rng.uniform(0.1, 3.0, d)
    if rank is not None:
        w[rank:] = 0.0
    return q, w, (q * w) @ q.T


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


# A zero eigenvalue comes back as +-1e-16 from rounding, whose square root is
# 1e-8: the square root is not Lipschitz at 0, so rank-deficient input is only
# good to sqrt(machine epsilon).
@pytest.mark.parametrize("d,rank,tol", [(1, None, 1e-12), (7, None, 1e-10), (33, None, 1e-10),
                                        (20, 12, 1e-7)])
def test_sqrtm_psd_matches_known_root(seed, d, rank, tol):
    rng = np.random.default_rng(seed)
    q, w, a = random_spd(rng, d, rank)
    want = (q * np.sqrt(w)) @ q.T
    got = metrics.sqrtm_psd(a)
    assert rel(got, want) < tol
    assert rel(got @ got, a) < 1e-10


def test_sqrtm_psd_matches_scipy(seed):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(seed)
    _, _, a = random_spd(rng, 40)
    assert rel(metrics.sqrtm_psd(a), scipy_linalg.sqrtm(a).real) < 1e-10


def test_sqrtm_psd_rejects_non_square():
    with pytest.raises(ValueError, match="sqrtm_psd: expected a square matrix"):
        metrics.sqrtm_psd(np.ones((2, 3)))


@pytest.mark.parametrize("d", [5, 64])
def test_trace_sqrt_product_matches_eig_of_product(seed, d):
    rng = np.random.default_rng(seed)
    s1, s2 = random_spd(rng, d)[2], random_spd(rng, d)[2]
    # S1 S2 is not symmetric, but its eigenvalues are real and positive.
    eig = np.linalg.eig(s1 @ s2)[0]
    assert np.abs(eig.imag).max() < 1e-8 * np.abs(eig).max()
    want = np.sqrt(eig.real).sum()
    assert abs(metrics.trace_sqrt_product(s1, s2) - want) < 1e-10 * want


def test_trace_sqrt_product_2x2_closed_form(seed):
    # For a 2 x 2 matrix with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
    rng = np.random.default_rng(seed)
    s1, s2 = random_spd(rng, 2)[2], random_spd(rng, 2)[2]
    m = s1 @ s2
    want = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    assert abs(metrics.trace_sqrt_product(s1, s2) - want) < 1e-12 * want


def test_frechet_distance_from_stats_closed_form(seed):
    rng = np.random.default_rng(seed)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # Diagonal (commuting) covariances: sum (sqrt(a) - sqrt(b))^2 on the diagonal.
    a, b = rng.uniform(0.2, 2, d), rng.uniform(0.2, 2, d)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = metrics.frechet_distance_from_stats(mu1, np.diag(a), mu2, np.diag(b))
    assert abs(got - want) < 1e-12 * want
    # Same Gaussian: 0.
    _, _, s = random_spd(rng, d)
    assert metrics.frechet_distance_from_stats(mu1, s, mu1, s) < 1e-12
    # A rotated covariance: S2 = R S1 R^T has the same spectrum; 2-D closed form.
    s1 = random_spd(rng, 2)[2]
    t = rng.uniform(0, np.pi)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    s2 = r @ s1 @ r.T
    m = s1 @ s2
    want = (np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m))))
    got = metrics.frechet_distance_from_stats(np.zeros(2), s1, np.zeros(2), s2)
    assert abs(got - want) < 1e-10 * max(want, 1e-3)


def test_frechet_distance_of_samples_converges_to_closed_form(seed):
    rng = np.random.default_rng(seed)
    d, n = 4, 200_000
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    l1, l2 = rng.standard_normal((d, d)) / 2, rng.standard_normal((d, d)) / 2
    s1, s2 = l1 @ l1.T + 0.1 * np.eye(d), l2 @ l2.T + 0.1 * np.eye(d)
    want = metrics.frechet_distance_from_stats(mu1, s1, mu2, s2)
    # The closed form, independently: the 2-Wasserstein formula via eig of the product.
    prod = np.sqrt(np.linalg.eig(s1 @ s2)[0].real).sum()
    assert abs(want - ((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2) - 2 * prod)) < 1e-10
    a = rng.multivariate_normal(mu1, s1, n)
    b = rng.multivariate_normal(mu2, s2, n)
    # Sampling error of the statistics is O(1/sqrt(n)) ~ 0.2%; allow 3%.
    assert abs(metrics.frechet_distance(a, b) - want) < 0.03 * want
    # And the same distribution gives ~0, far below the distance above.
    assert metrics.frechet_distance(a, rng.multivariate_normal(mu1, s1, n)) < 0.01 * want


def test_frechet_distance_rejects_bad_features():
    with pytest.raises(ValueError, match="feature sizes differ: 3 and 4"):
        metrics.frechet_distance(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        metrics.frechet_distance(np.full((5, 3), np.nan), np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"expected features \(n, d\)"):
        metrics.frechet_distance(np.ones(5), np.ones((5, 1)))


def direct_mmd2(x, y):
    """The unbiased MMD^2 by its definition, one pair at a time."""
    d, m = x.shape[1], len(x)

    def k(u, v):
        return (float(np.dot(u, v)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_direct_computation(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((37, 5))
    b = rng.standard_normal((41, 5)) * 1.3 + 0.2
    # Subsets of 20 of each set; the reference redraws the same subsets (same RandomState).
    mean, std = metrics.kernel_distance(a, b, subsets=4, subset_size=20, seed=3)
    r = np.random.RandomState(3)
    values = []
    for _ in range(4):
        x = a[r.choice(len(a), 20, replace=False)]
        y = b[r.choice(len(b), 20, replace=False)]
        values.append(direct_mmd2(x, y))
    assert abs(mean - np.mean(values)) < 1e-10 * abs(np.mean(values))
    assert abs(std - np.std(values)) < 1e-8 * np.std(values)
    assert std > 0


def test_kid_whole_sets_and_unbiasedness(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((30, 3)), rng.standard_normal((30, 3)) + 1.0
    mean, std = metrics.kernel_distance(a, b, subsets=2, subset_size=1000)
    assert std < 1e-12 * abs(mean)  # every subset is the whole set (m capped at 30), permuted
    assert abs(mean - direct_mmd2(a, b)) < 1e-10 * abs(mean)
    # Unbiased: for two samples of one distribution the estimate averages ~0
    # (it can be negative), while a shifted distribution gives far more.
    same = [metrics.kernel_distance(rng.standard_normal((200, 4)), rng.standard_normal((200, 4)),
                                    subsets=1)[0] for _ in range(20)]
    shifted = metrics.kernel_distance(rng.standard_normal((200, 4)),
                                      rng.standard_normal((200, 4)) + 0.5, subsets=1)[0]
    assert min(same) < 0 < shifted
    assert abs(np.mean(same)) < 0.1 * shifted


def test_precision_recall_known_answers(seed):
    rng = np.random.default_rng(seed)
    # Real: two well-separated clusters of 50 points. Fake: the first cluster,
    # jittered far below its k-NN radii, plus as many points far from both.
    a = rng.standard_normal((50, 2))
    real = np.concatenate([a, rng.standard_normal((50, 2)) + 100.0])
    fake = a + 1e-6 * rng.standard_normal(a.shape)
    p, r = metrics.precision_recall(real, fake)
    assert (p, r) == (1.0, 0.5)  # every fake is on the manifold; half the reals are covered
    outliers = rng.standard_normal((50, 2)) - 100.0
    p, r = metrics.precision_recall(real, np.concatenate([fake, outliers]))
    assert p == 0.5  # the outliers are off the real manifold
    assert r == 0.5  # and their own balls (radii among themselves) cover no real point
    p, r = metrics.precision_recall(real, real)
    assert (p, r) == (1.0, 1.0)


def test_precision_recall_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    real, fake = rng.standard_normal((60, 3)), rng.standard_normal((45, 3)) * 1.5 + 0.3

    def share_inside(manifold, queries, k=3):
        radii = [sorted(np.linalg.norm(manifold - m, axis=1))[k] for m in manifold]
        return np.mean([any(np.linalg.norm(q - m) <= r for m, r in zip(manifold, radii))
                        for q in queries])

    p, r = metrics.precision_recall(real, fake)
    assert p == pytest.approx(share_inside(real, fake), abs=1e-12)
    assert r == pytest.approx(share_inside(fake, real), abs=1e-12)
    assert 0 < p < 1 and 0 < r < 1


def test_precision_recall_needs_more_than_k_points():
    with pytest.raises(ValueError, match="n >= 4"):
        metrics.precision_recall(np.ones((3, 2)), np.ones((10, 2)))


def test_confident_share_and_histogram():
    probs = np.array([[0.95, 0.05, 0.0], [0.5, 0.4, 0.1], [0.0, 0.1, 0.9], [0.0, 0.2, 0.8]])
    assert metrics.confident_share(probs) == 0.5  # 0.95 and 0.9 (the boundary counts)
    np.testing.assert_array_equal(metrics.class_histogram(probs), [0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="class_histogram: expected finite class probabilities"):
        metrics.class_histogram(np.ones(3))
