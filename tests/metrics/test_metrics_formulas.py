"""FID, KID, precision/recall and PPL formulas against closed forms and hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from flowergan.metrics.distances import (
    frechet_distance,
    kernel_inception_distance,
    ppl_from_lengths,
    precision_recall,
)
from flowergan.metrics.features import FeatureStats


def _random_rotation(d: int, rng: np.random.RandomState) -> np.ndarray:
    q, r = np.linalg.qr(rng.randn(d, d))
    return q * np.sign(np.diag(r))


# ---------------------------------------------------------------- FID


METHODS = pytest.mark.parametrize("method", ["eigh", "sqrtm"])


@METHODS
def test_fid_zero_for_identical_statistics(method):
    rng = np.random.RandomState(0)
    x = rng.randn(200, 16)
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert abs(frechet_distance(mu, sigma, mu, sigma, method=method)) < 1e-6


@METHODS
def test_fid_closed_form_commuting_covariances(method):
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute, so tr((S1 S2)^1/2) = sum sqrt(a_i b_i) and
    # FD = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    rng = np.random.RandomState(1)
    d = 8
    q = _random_rotation(d, rng)
    a, b = rng.uniform(0.5, 4.0, d), rng.uniform(0.1, 9.0, d)
    mu1, mu2 = rng.randn(d), rng.randn(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T, method=method)
    assert got == pytest.approx(expected, rel=1e-9)


@METHODS
def test_fid_one_dimensional_is_mean_and_std_difference(method):
    # In 1-D: FD = (m1 - m2)^2 + (s1 - s2)^2 with standard deviations s.
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]], method=method) == pytest.approx(9.0 + 1.0)


def test_fid_non_commuting_2d_closed_form():
    # For 2x2 SPD A, B: tr((AB)^1/2) = sqrt(tr(AB) + 2 sqrt(det(AB))) (the eigenvalues l1, l2 of AB are > 0 and
    # (sqrt(l1) + sqrt(l2))^2 = l1 + l2 + 2 sqrt(l1 l2)).
    a = np.array([[2.0, 0.7], [0.7, 1.0]])
    b = np.array([[1.0, -0.4], [-0.4, 3.0]])
    ab = a @ b
    tr_sqrt = np.sqrt(np.trace(ab) + 2 * np.sqrt(np.linalg.det(ab)))
    expected = 1.0 + np.trace(a) + np.trace(b) - 2 * tr_sqrt
    for method in ("eigh", "sqrtm"):
        assert frechet_distance([1.0, 0.0], a, [0.0, 0.0], b, method=method) == pytest.approx(expected, rel=1e-12)


def test_fid_methods_agree_on_rank_deficient_statistics():
    # 20 samples in 64 dimensions: rank-19 covariances, as with a small --num on 2048-d Inception features.
    rng = np.random.RandomState(10)
    x, y = rng.randn(20, 64), rng.randn(20, 64) * 1.5 + 0.3
    s = FeatureStats(capture_mean_cov=True), FeatureStats(capture_mean_cov=True)
    s[0].append(x)
    s[1].append(y)
    stats = [*s[0].get_mean_cov(), *s[1].get_mean_cov()]
    assert frechet_distance(*stats, method="eigh") == pytest.approx(frechet_distance(*stats, method="sqrtm"),
                                                                    rel=1e-6)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(*stats, method="svd")


def test_fid_from_sample_statistics_approaches_closed_form():
    rng = np.random.RandomState(2)
    d, n = 4, 20000
    q = _random_rotation(d, rng)
    a, b = np.array([1.0, 2.0, 0.5, 3.0]), np.array([2.0, 0.5, 1.0, 4.0])
    mu1, mu2 = np.zeros(d), np.array([1.0, -1.0, 0.5, 0.0])
    x1 = mu1 + (rng.randn(n, d) * np.sqrt(a)) @ q.T
    x2 = mu2 + (rng.randn(n, d) * np.sqrt(b)) @ q.T
    s1 = FeatureStats(capture_mean_cov=True)
    s2 = FeatureStats(capture_mean_cov=True)
    for chunk in np.array_split(x1, 7):
        s1.append(chunk)
    for chunk in np.array_split(x2, 5):
        s2.append(chunk)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)  # 2.25 + 0.84...
    assert frechet_distance(*s1.get_mean_cov(), *s2.get_mean_cov()) == pytest.approx(expected, rel=0.03)


def test_fid_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# ---------------------------------------------------------------- FeatureStats


def test_feature_stats_matches_biased_covariance_and_truncates(tmp_path):
    rng = np.random.RandomState(3)
    x = rng.randn(50, 5).astype(np.float32)
    st = FeatureStats(capture_all=True, capture_mean_cov=True, max_items=40)
    for chunk in np.array_split(x, 6):
        st.append(chunk)
    assert st.num_items == 40 and st.is_full()
    ref = x[:40].astype(np.float64)
    mu, sigma = st.get_mean_cov()
    np.testing.assert_allclose(mu, ref.mean(0), atol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(ref, rowvar=False, bias=True), atol=1e-10)
    np.testing.assert_array_equal(st.get_all(), x[:40])
    st.save(tmp_path / "s.npz")
    back = FeatureStats.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.get_all(), x[:40])
    np.testing.assert_allclose(back.get_mean_cov()[1], sigma, atol=1e-12)
    only_all = FeatureStats(capture_all=True)
    only_all.append(x)
    np.testing.assert_allclose(only_all.get_mean_cov()[1], np.cov(x.astype(np.float64), rowvar=False, bias=True),
                               atol=1e-10)


# ---------------------------------------------------------------- KID


def _kernel(x, y):
    return (x @ y.T / x.shape[1] + 1) ** 3


def _mmd2_unbiased(x, y):
    """Independent unbiased MMD^2 (Gretton et al. 2012, eq. 3), written with explicit off-diagonal masks."""
    m = x.shape[0]
    off = ~np.eye(m, dtype=bool)
    kxx, kyy, kxy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
    return kxx[off].sum() / (m * (m - 1)) + kyy[off].sum() / (m * (m - 1)) - 2 * kxy.sum() / (m * m)


def test_kid_with_full_subsets_is_unbiased_mmd2():
    # With subsets as large as the sets, every subset is a permutation: KID = MMD^2_u exactly.
    rng = np.random.RandomState(4)
    x, y = rng.randn(30, 6), rng.randn(30, 6) * 1.3 + 0.2
    assert kernel_inception_distance(x, y, num_subsets=3, max_subset_size=1000) == pytest.approx(
        _mmd2_unbiased(y, x), rel=1e-9)


def test_kid_identical_sets_is_slightly_negative_closed_form():
    # x == y: KID = 2 (S - m tr K) / (m^2 (m - 1)) with S = sum(K). K is PSD, so 0 <= S <= m lambda_max <= m tr K:
    # -2 mean(diag K) / (m - 1) <= KID <= 0 (slightly negative, shrinking like 1/m).
    rng = np.random.RandomState(5)
    x = rng.randn(25, 8)
    k = _kernel(x, x)
    m = x.shape[0]
    expected = 2 * (k.sum() - m * np.trace(k)) / (m * m * (m - 1))
    got = kernel_inception_distance(x, x, num_subsets=2)
    assert got == pytest.approx(expected, rel=1e-9)
    assert -2 * np.diag(k).mean() / (m - 1) <= got <= 0


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.RandomState(6)
    real, gen = rng.randn(400, 16), rng.randn(400, 16)
    same = kernel_inception_distance(real, gen, num_subsets=20, max_subset_size=100)
    shifted = kernel_inception_distance(real, gen + 1.0, num_subsets=20, max_subset_size=100)
    # expected MMD^2 for a shift of 1 in each of 16 dims is far above the sampling noise of `same`
    assert abs(same) < 0.05 * shifted and shifted > 0.5


# ---------------------------------------------------------------- precision / recall


def test_precision_recall_identical_clouds():
    x = np.random.RandomState(7).randn(60, 5)
    assert precision_recall(x, x.copy()) == (1.0, 1.0)


def test_precision_recall_disjoint_far_clouds():
    x = np.random.RandomState(8).randn(60, 5)
    assert precision_recall(x, x + 1000.0) == (0.0, 0.0)


def test_precision_recall_subset_has_full_precision():
    x = np.random.RandomState(9).randn(100, 4)
    p, r = precision_recall(x, x[:20])
    assert p == 1.0 and r < 1.0


def test_precision_recall_hand_computed_1d():
    # k=1. Real {0,1,2,10}: radii (distance to nearest other point) 1,1,1,8.
    # Gen {-5,0.5,3.5,5,5.5}: radii 5.5,3,1.5,0.5,0.5.
    # Precision: -5 is 5 from 0 (>1) and 15 from 10 (>8): out; 0.5 in (0); 3.5, 5, 5.5 in (ball of 10) -> 4/5.
    # Recall: 0, 1, 2 lie in the ball of 0.5 (radius 3); 10 is 4.5 from 5.5 (>0.5), 6.5 from 3.5 (>1.5),
    # 9.5 from 0.5 (>3), 15 from -5 (>5.5): out -> 3/4.
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    gen = np.array([[-5.0], [0.5], [3.5], [5.0], [5.5]])
    p, r = precision_recall(real, gen, k=1, row_batch=2)
    assert p == pytest.approx(0.8) and r == pytest.approx(0.75)


def test_precision_recall_needs_more_points_than_k():
    with pytest.raises(ValueError, match="k=3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


# ---------------------------------------------------------------- PPL reduction


def test_ppl_trimmed_mean_by_hand():
    # 1..200: 1st percentile "lower" = 2, 99th "higher" = 199, mean of 2..199 = 100.5
    assert ppl_from_lengths(np.arange(1, 201)) == pytest.approx(100.5)
    d = np.concatenate([np.full(198, 3.0), [1e9, -1e9]])
    assert ppl_from_lengths(d) == pytest.approx(3.0)
