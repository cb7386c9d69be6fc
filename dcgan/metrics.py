"""Sample-quality statistics on feature vectors, in NumPy (float64): no scipy, no torch.

    fd = frechet_distance(feats_a, feats_b)               # FID's formula
    kid, kid_std = kernel_distance(feats_a, feats_b)      # KID: unbiased MMD^2, cubic kernel
    prec, rec = precision_recall(real_feats, fake_feats)  # Kynkaanniemi et al. 2019, k = 3
    share = confident_share(probs); hist = class_histogram(probs)

Features are rows (n, d). Each statistic is the published one; the choices
that an implementation has to make are said where they are made.

The matrix square root. The Frechet distance needs tr sqrt(S1 S2) for two
covariance matrices (symmetric positive semi-definite). pytorch-fid takes
scipy's sqrtm of the non-symmetric product S1 S2, which can come back with
an imaginary part from rounding (hence its eps offsets and "imaginary
component" checks). Here we use that S1 S2 is similar to the symmetric PSD
matrix M = sqrt(S1) S2 sqrt(S1) (conjugate by sqrt(S1)), so they share
eigenvalues and tr sqrt(S1 S2) = sum_i sqrt(lambda_i(M)). Both square roots
then come from NumPy's symmetric eigensolver (eigh), which is backward
stable and returns real eigenvalues; the few tiny negative ones that
rounding leaves on a rank-deficient matrix are clipped to 0. Newton-Schulz
would need an iteration count and a tolerance, and converges only after
normalising; a d x d eigh for d = 128 takes about a millisecond.
"""

import numpy as np

KID_SUBSETS = 100         # torch-fidelity's kid_subsets
KID_SUBSET_SIZE = 1000    # torch-fidelity's kid_subset_size (capped at the smaller set)
KID_SEED = 0
PR_K = 3                  # Kynkaanniemi et al. 2019: the k of the k-NN radii
CONFIDENCE = 0.9


def _features(name, x, min_rows=2):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < min_rows or x.shape[1] < 1:
        raise ValueError(f"{name}: expected features (n, d) with n >= {min_rows}, got shape "
                         f"{x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or inf")
    return x


def _pair(name, a, b, min_rows=2):
    a, b = _features(name, a, min_rows), _features(name, b, min_rows)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{name}: feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    return a, b


# --- matrix square root and the Frechet distance -----------------------------

def sqrtm_psd(a):
    """The PSD square root of a symmetric PSD matrix, by eigh (negative
    eigenvalues from rounding clipped to 0). The input is symmetrised first."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"sqrtm_psd: expected a square matrix, got shape {a.shape}")
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(s1, s2):
    """tr sqrt(S1 S2) for symmetric PSD S1, S2: the eigenvalues of S1 S2 are
    those of sqrt(S1) S2 sqrt(S1), which is symmetric PSD."""
    r1 = sqrtm_psd(s1)
    m = r1 @ np.asarray(s2, dtype=np.float64) @ r1
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def mean_cov(x):
    """Mean and unbiased covariance (ddof 1, as pytorch-fid's np.cov) of rows x."""
    x = _features("mean_cov", x)
    return x.mean(0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def frechet_distance_from_stats(mu1, s1, mu2, s2):
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)): the squared 2-Wasserstein
    distance between N(mu1, S1) and N(mu2, S2). Clipped at 0 (rounding)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance: shapes do not agree: mu {mu1.shape}, {mu2.shape}, "
                         f"sigma {s1.shape}, {s2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2)
    return float(max(value, 0.0))


def frechet_distance(a, b):
    """The Frechet distance between Gaussians fitted to feature rows a and b
    (FID's formula). Biased upwards by small n: state the sample counts."""
    a, b = _pair("frechet_distance", a, b)
    return frechet_distance_from_stats(*mean_cov(a), *mean_cov(b))


# --- KID ----------------------------------------------------------------------

def polynomial_kernel(x, y):
    """k(x, y) = (x.y / d + 1)^3, KID's kernel (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(k_xx, k_xy, k_yy):
    """The unbiased estimate of MMD^2 from kernel matrices of two m-sample sets:
    the within-set means leave out the diagonal, the cross mean keeps every
    pair (torch-fidelity's mmd2, mmd_est="unbiased")."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kernel_distance(a, b, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=KID_SEED):
    """(mean, std) of the unbiased MMD^2 over `subsets` random subsets of
    m = min(subset_size, n_a, n_b) rows of each set, drawn without
    replacement, as torch-fidelity (np.std, ddof 0). With m equal to both set
    sizes every subset is the whole set and the std is 0: pass a smaller
    subset_size for a spread.

    The three kernel matrices are computed once over the whole sets, and
    every subset's sums come out of them at once: with S the (subsets, n)
    0/1 matrix whose row i marks subset i, the sum of K over subset i's pairs
    is row i of (S K) . S (one matrix product for all subsets instead of
    gathering subsets m x m blocks, ~30x faster at n = 1000). The same
    estimate as mmd2_unbiased on each subset's blocks, up to the order of the
    float64 sums (tests/test_metrics.py checks it against a pair loop)."""
    a, b = _pair("kernel_distance", a, b)
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"kernel_distance: need subsets >= 1 and subset_size >= 2, got "
                         f"{subsets} and {subset_size}")
    m = min(subset_size, len(a), len(b))
    k_aa, k_ab, k_bb = polynomial_kernel(a, a), polynomial_kernel(a, b), polynomial_kernel(b, b)
    rng = np.random.RandomState(seed)
    s_a, s_b = np.zeros((subsets, len(a))), np.zeros((subsets, len(b)))
    for i in range(subsets):  # the draws in torch-fidelity's order: x, then y
        s_a[i, rng.choice(len(a), m, replace=False)] = 1.0
        s_b[i, rng.choice(len(b), m, replace=False)] = 1.0

    def pair_sums(s_x, k, s_y):
        return np.einsum("ij,ij->i", s_x @ k, s_y)

    within = (pair_sums(s_a, k_aa, s_a) - s_a @ np.diag(k_aa)
              + pair_sums(s_b, k_bb, s_b) - s_b @ np.diag(k_bb)) / (m * (m - 1))
    values = within - 2.0 * pair_sums(s_a, k_ab, s_b) / (m * m)
    return float(values.mean()), float(values.std())


# --- precision and recall -----------------------------------------------------

def _sq_distances(a, b):
    """(len(a), len(b)) squared Euclidean distances, clipped at 0."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(x, k=PR_K):
    """Squared distance from each row of x to its k-th nearest other row."""
    if len(x) <= k:
        raise ValueError(f"knn_radii: need more than k = {k} points, got {len(x)}")
    d = _sq_distances(x, x)
    # Column 0 of the sorted row is the point itself (distance 0).
    return np.partition(d, k, axis=1)[:, k]


def coverage_share(manifold, radii, queries, chunk=2048):
    """The share of `queries` inside at least one ball (centre a manifold row,
    squared radius `radii`), boundary included."""
    inside = np.zeros(len(queries), bool)
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk]
        inside[i:i + chunk] = (_sq_distances(q, manifold) <= radii[None, :]).any(1)
    return float(inside.mean())


def precision_recall(real, fake, k=PR_K):
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision is
    the share of fake samples inside the real manifold (the union of balls
    around each real sample reaching its k-th nearest real neighbour),
    recall the share of real samples inside the fake manifold."""
    real, fake = _pair("precision_recall", real, fake, min_rows=k + 1)
    precision = coverage_share(real, knn_radii(real, k), fake)
    recall = coverage_share(fake, knn_radii(fake, k), real)
    return precision, recall


# --- the classifier's outputs -------------------------------------------------

def _probabilities(name, probs):
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) < 1 or not np.isfinite(p).all():
        raise ValueError(f"{name}: expected finite class probabilities (n, classes), got shape "
                         f"{p.shape}")
    return p


def confident_share(probs, threshold=CONFIDENCE):
    """The share of samples whose largest class probability is >= threshold."""
    return float((_probabilities("confident_share", probs).max(1) >= threshold).mean())


def class_histogram(probs):
    """The share of samples per predicted class (argmax), summing to 1."""
    p = _probabilities("class_histogram", probs)
    return np.bincount(p.argmax(1), minlength=p.shape[1]) / len(p)
