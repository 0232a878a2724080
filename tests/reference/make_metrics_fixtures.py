#!/usr/bin/python3
"""Reference values for tests/test_metrics.lua, written to tests/fixtures/metrics.h5.

Each value is computed with plain numpy by a formulation different from
core/metrics.c, so the test compares two independent implementations:
  - AUROC: the fraction of (positive, negative) pairs ranked correctly,
    ties counting 1/2 (O(P N) pairs, no ranks);
  - AP: the mean over positives of the precision at that positive's score
    (all samples with score >= it), which equals sklearn's step sum;
  - FID: numpy.cov and numpy.linalg.eigh (LAPACK) in float64;
  - k-NN precision/recall (Kynkaenniemi et al. 2019, k = 3): brute-force
    float64 distances; the script checks that no distance lies within 1e-5
    (relative) of a radius, so f32 rounding cannot flip a comparison.
Inputs are stored as float32 and the references are computed from those
float32 values. Run: /usr/bin/python3 tests/reference/make_metrics_fixtures.py
"""
import os
import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "metrics.h5")


def auroc_pairs(s, y):
    pos, neg = s[y == 1], s[y == 0]
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return (gt + 0.5 * eq) / (len(pos) * len(neg))


def ap_per_positive(s, y):
    total = 0.0
    for i in np.flatnonzero(y == 1):
        above = s >= s[i]
        total += y[above].sum() / above.sum()
    return total / (y == 1).sum()


def fid(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    mw = np.linalg.eigvalsh(r @ s2 @ r)
    return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(mw, 0, None)).sum()


def knn(real, fake, k=3):
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    d = lambda x, y: np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    rr, ff, fr = d(real, real), d(fake, fake), d(fake, real)
    rad_r = np.sort(rr, 1)[:, k]  # index 0 is the point itself
    rad_f = np.sort(ff, 1)[:, k]
    margin = min(np.abs(fr - rad_r[None, :]).min() / rad_r.max(), np.abs(fr.T - rad_f[None, :]).min() / rad_f.max())
    precision = (fr <= rad_r[None, :]).any(1).mean()
    recall = (fr.T <= rad_f[None, :]).any(1).mean()
    return precision, recall, margin


def main():
    rng = np.random.default_rng(2024)
    with h5py.File(OUT, "w") as f:
        # classification: 3 labels, scores rounded to 0.1 so many ties
        n = 200
        y = (rng.random((n, 3)) < [0.3, 0.5, 0.1]).astype(np.int64)
        s = np.round(rng.random((n, 3)) * 0.6 + 0.4 * y * rng.random((n, 3)), 1).astype(np.float32)
        f["cls/scores"], f["cls/labels"] = s, y
        f["cls/auroc"] = np.array([auroc_pairs(s[:, j].astype(np.float64), y[:, j]) for j in range(3)], np.float32)
        f["cls/ap"] = np.array([ap_per_positive(s[:, j].astype(np.float64), y[:, j]) for j in range(3)], np.float32)
        # FID: correlated Gaussians of different means and covariances
        for name, d, n1, n2 in (("small", 8, 300, 250), ("wide", 48, 300, 260)):
            l1, l2 = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)
            a = (rng.normal(size=(n1, d)) @ l1 + rng.normal(size=d)).astype(np.float32)
            b = (rng.normal(size=(n2, d)) @ l2 * 1.5).astype(np.float32)
            f[f"fid/{name}/a"], f[f"fid/{name}/b"] = a, b
            f[f"fid/{name}/fid"] = np.array(fid(a, b), np.float32)
        # k-NN precision and recall: overlapping clouds of different spread
        for seed in range(100):
            r2 = np.random.default_rng(seed)
            real = r2.normal(size=(300, 5)).astype(np.float32)
            fake = (r2.normal(size=(250, 5)) * 1.3 + 0.5).astype(np.float32)
            p, r, margin = knn(real, fake)
            if margin > 1e-5:
                break
        print(f"knn seed {seed}: precision {p:.4f} recall {r:.4f} (closest comparison margin {margin:.2e})")
        f["knn/real"], f["knn/fake"] = real, fake
        f["knn/pr"] = np.array([p, r], np.float32)
        print("auroc", f["cls/auroc"][:], "ap", f["cls/ap"][:], "fid", f["fid/small/fid"][()], f["fid/wide/fid"][()])


if __name__ == "__main__":
    main()
