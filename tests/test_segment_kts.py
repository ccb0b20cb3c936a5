"""KTS: identical change points to a straightforward DP written here, on random, tied and constant inputs."""
import math
import zlib

import numpy as np
import pytest

from egoflow.segment import kts


def reference(K, m_max, lmin=1, lmax=None):
    """Textbook KTS DP: J from full prefix sums, loops over k, l, t; first minimum (smallest t) wins."""
    n = K.shape[0]
    lmax = n if lmax is None else min(lmax, n)
    D = np.cumsum([0.0] + list(np.diag(K)))
    P = np.zeros((n + 1, n + 1))
    P[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)

    def J(t, l):
        return D[l] - D[t] - (P[l, l] + P[t, t] - P[l, t] - P[t, l]) / (l - t)

    I = np.full((m_max + 1, n + 1), np.inf)
    p = np.zeros((m_max + 1, n + 1), dtype=int)
    for l in range(lmin, lmax + 1):
        I[0, l] = J(0, l)
    for k in range(1, m_max + 1):
        for l in range((k + 1) * lmin, n + 1):
            best, arg = math.inf, 0
            for t in range(max(k * lmin, l - lmax), l - lmin + 1):
                c = I[k - 1, t] + J(t, l)
                if c < best:
                    best, arg = c, t
            I[k, l], p[k, l] = best, arg
    return I, p


def backtrack(p, m, n):
    cps, cur = [], n
    for k in range(m, 0, -1):
        cur = int(p[k, cur])
        cps.append(cur)
    return cps[::-1]


def features(kind, n, rng, d=4):
    if kind == "random":
        return rng.normal(size=(n, d))
    if kind == "repeated":  # exact ties between many segmentations
        return np.repeat(rng.normal(size=(n // 5 + 1, d)), 5, axis=0)[:n]
    if kind == "binary":
        return rng.integers(0, 2, size=(n, d)).astype(float)
    return np.ones((n, d))  # constant: every segmentation costs the same up to rounding


@pytest.mark.parametrize("kind", ["random", "repeated", "binary", "constant"])
@pytest.mark.parametrize("kernel", ["linear", "cosine", "rbf"])
def test_fixed_m_identical_to_reference(kind, kernel):
    rng = np.random.default_rng(zlib.crc32(f"{kind}-{kernel}".encode()))
    for _ in range(3):
        n = int(rng.integers(2, 45))
        lmin = int(rng.integers(1, 3))
        lmax = int(rng.integers(max(lmin, 4), n + 2)) if n >= 4 and rng.random() < 0.6 else None
        L = n if lmax is None else min(lmax, n)
        m = int(rng.integers(max(0, math.ceil(n / L) - 1), n // lmin))
        K = kts.gram(features(kind, n, rng), kernel)
        I, p = reference(K, m, lmin, L)
        cps, score = kts.kts_dp(K, m, lmin=lmin, lmax=lmax)
        assert cps.tolist() == backtrack(p, m, n)
        assert score == I[m, n]  # bitwise: same floating-point operations


@pytest.mark.parametrize("lmax", [None, 25, 70])
def test_all_rows_identical_across_many_chunks(lmax):
    # n spans several row chunks (64-row blocks) so the streamed prefix sums and band hand-over are exercised
    rng = np.random.default_rng(7)
    n = 230
    x = np.repeat(rng.normal(size=(n // 9 + 1, 6)), 9, axis=0)[:n] + 0.3 * rng.normal(size=(n, 6))
    K = kts.gram(x, "cosine")
    K_before = K.copy()
    m = 12
    I, p = reference(K, m, 1, lmax)
    costs = kts.band_costs(K, n, 1, lmax)
    assert np.array_equal(K, K_before)  # the input is not modified
    scores, back = kts._dp(costs, m, keep_back=True)
    np.testing.assert_array_equal(scores, I[:, n])
    for k in range(m + 1):
        if np.isfinite(I[k, n]):
            assert kts._backtrack(back, k, n).tolist() == backtrack(p, k, n)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_auto_selection_identical_and_stops_early(noise):
    rng = np.random.default_rng(3)
    n = 90
    x = features("repeated", n, rng, d=5) + noise * rng.normal(size=(n, 5))
    K = kts.gram(x, "cosine")
    I, p = reference(K, n - 1)
    total = I[:, n] / n + kts.penalties(n, n - 1)
    m_best = int(np.argmin(total))
    cps, computed = kts.kts_auto(K, None, 1.0)
    assert cps.tolist() == backtrack(p, m_best, n)
    np.testing.assert_array_equal(computed, total[:len(computed)])
    assert len(computed) < n  # the exact early stop skipped the hopeless numbers of change points
    # two-pass variant (back-pointers over budget) gives the same answer
    cps2, _ = kts.kts_auto(K, None, 1.0, back_budget_bytes=0)
    assert cps2.tolist() == cps.tolist()
    # segment() on the features = the reference on gram(features)
    b = kts.segment(x, kernel="cosine")
    assert b[0] == 0 and b[-1] == n and b[1:-1].tolist() == cps.tolist()


def test_planted_scenes_are_recovered():
    rng = np.random.default_rng(0)
    lengths = [12, 30, 7, 25, 18, 40]
    x = np.repeat(rng.normal(size=(len(lengths), 32)), lengths, axis=0) + 0.1 * rng.normal(size=(sum(lengths), 32))
    b = kts.segment(x, max_change_points=20, vmax=1.0)
    assert b.tolist() == [0, *np.cumsum(lengths).tolist()]
    assert kts.segment_ids(b).tolist() == np.repeat(np.arange(len(lengths)), lengths).tolist()
    # lmax caps every segment, exactly m change points when asked
    b = kts.segment(x, lmax=20)
    assert np.diff(b).max() <= 20
    assert len(kts.segment(x, n_change_points=9)) == 11


def test_banded_memory_is_linear_in_n():
    x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
    xp, extra = kts._prepare(x, "cosine", None)
    costs = kts.band_costs(lambda a, b: kts._gram_rows(xp, extra, a, b), 3000, 1, 50)
    assert costs.nbytes <= 3000 * (50 + 2 * kts.GRAM_BLOCK) * 8  # band + chunk overlap, not N x N
    xs, extra = kts._prepare(x[:2000], "cosine", None)
    full = kts.band_costs(lambda a, b: kts._gram_rows(xs, extra, a, b), 2000, 1, None)
    assert full.nbytes < 0.7 * 2000 * 2000 * 8  # unbounded lmax keeps about the lower triangle only


def test_bad_input_errors():
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(kts.KTSError, match="10 shots cannot form 12 segments"):
        kts.segment(x, n_change_points=11)
    with pytest.raises(kts.KTSError, match="at most lmax=3"):
        kts.segment(x, n_change_points=1, lmax=3)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(kts.KTSError, match="NaN/inf.*first: \\[4\\]"):
        kts.segment(bad)
    bad[4, 1] = np.inf
    with pytest.raises(kts.KTSError, match="NaN/inf"):
        kts.gram(bad)
    with pytest.raises(kts.KTSError, match="unknown kernel"):
        kts.segment(x, kernel="poly")
    with pytest.raises(kts.KTSError, match="non-empty"):
        kts.segment(np.zeros((0, 3)))
    with pytest.raises(kts.KTSError, match="max_memory_gb"):
        kts.segment(np.zeros((5000, 2)) + np.arange(5000)[:, None], max_memory_gb=0.01)
    assert kts.segment(x[:1]).tolist() == [0, 1]  # one shot: one segment


def test_segment_cli_on_a_store(tmp_path, capsys):
    import json

    from egoflow.cli import main
    from egoflow.features_store import FeatureStore
    rng = np.random.default_rng(1)
    lengths = [6, 10, 4]  # shots of 5 s, two store steps per shot
    shots = np.repeat(rng.normal(size=(3, 16)), lengths, axis=0)
    feats = np.repeat(shots, 2, axis=0) + 0.01 * rng.normal(size=(40, 16))
    store = FeatureStore(str(tmp_path / "s.zarr"))
    store.create_feature_set("f", {"k": 1}, dim=16, dtype="float32")
    store.write_video("f", "vid", feats, np.arange(40) * 2.5 + 1.25)
    assert main(["segment", "--store", str(tmp_path / "s.zarr"), "--feature-set", "f", "vid",
                 "--max-change-points", "5", "--out", str(tmp_path / "seg.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_shots"] == 20 and out["boundaries"] == [0, 6, 16, 20]
    assert out["segments"] == [[0.0, 30.0], [30.0, 80.0], [80.0, 100.0]]
    assert json.loads((tmp_path / "seg.json").read_text()) == out
    assert main(["segment", "--store", str(tmp_path / "s.zarr"), "--feature-set", "f", "nope"]) == 2
