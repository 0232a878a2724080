/* test_metrics.c: core/metrics.c against hand-derived values and closed forms:
 * AUROC / average precision with ties (the arithmetic is in the comments),
 * the Jacobi eigensolver against reconstruction and known spectra, the
 * Frechet distance against closed forms for Gaussians, k-NN precision and
 * recall on constructed sets, CLIP score, Einthoven error, bad input. */
#include "check.h"

static ewb_tensor *vec(int ndim, const int64_t *shape, const float *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, ndim, shape, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}

static void test_auroc_ap(void) {
    /* sklearn's documented example: y = 0 0 1 1, s = .1 .4 .35 .8
       ranks ascending: .1->1 .35->2 .4->3 .8->4; positives 2 + 4 = 6;
       AUC = (6 - 2*3/2) / (2*2) = 0.75
       AP, thresholds descending: .8 (pos) R=1/2 P=1 -> 1/2; .4 (neg) R stays;
       .35 (pos) R=1 P=2/3 -> 1/2 * 2/3 = 1/3; AP = 5/6 */
    int64_t n4[1] = {4}, n6[1] = {6};
    float s1[4] = {0.1f, 0.4f, 0.35f, 0.8f}, y1[4] = {0, 0, 1, 1};
    ewb_tensor *s = vec(1, n4, s1), *y = vec(1, n4, y1);
    double v = 0;
    OK(ewb_auroc(s, y, &v));
    CHECK(fabs(v - 0.75) < 1e-12, "auroc %g != 0.75", v);
    OK(ewb_average_precision(s, y, &v));
    CHECK(fabs(v - 5.0 / 6) < 1e-12, "ap %g != 5/6", v);
    ewb_tensor_free(s);
    ewb_tensor_free(y);

    /* ties: y = 0 1 0 1 1 0, s = .2 .5 .5 .5 .9 .1
       ascending: .1 (neg) r1, .2 (neg) r2, .5 x3 (pos neg pos) r3..5 -> 4 each, .9 (pos) r6
       positives' ranks 4 + 4 + 6 = 14; AUC = (14 - 3*4/2) / (3*3) = 8/9
       (pairs: .9 beats 3 negatives; each .5 beats 2 and ties 1 -> 2.5; 3 + 5 = 8 of 9)
       AP: .9 (pos) R=1/3 P=1 -> 1/3; the .5 group as one threshold: tp 3 fp 1,
       R=1 P=3/4 -> 2/3 * 3/4 = 1/2; AP = 5/6 */
    float s2[6] = {0.2f, 0.5f, 0.5f, 0.5f, 0.9f, 0.1f}, y2[6] = {0, 1, 0, 1, 1, 0};
    s = vec(1, n6, s2);
    ewb_tensor *yi = NULL;
    int64_t yl[6] = {0, 1, 0, 1, 1, 0};
    OK(ewb_tensor_from_data(&yi, EWB_DTYPE_I64, 1, n6, yl)); /* integer labels */
    OK(ewb_auroc(s, yi, &v));
    CHECK(fabs(v - 8.0 / 9) < 1e-12, "auroc with ties %g != 8/9", v);
    OK(ewb_average_precision(s, yi, &v));
    CHECK(fabs(v - 5.0 / 6) < 1e-12, "ap with ties %g != 5/6", v);
    ewb_tensor_free(s);
    ewb_tensor_free(yi);
    (void)y2;

    /* (N, L): label 1 the first case, label 2 the scores negated (AUC 1 - 0.75),
       label 3 all scores tied (AUC 1/2, AP = P/N = 1/2), label 4 no positives (NaN) */
    int64_t nl[2] = {4, 4};
    float s3[16], y3[16];
    for (int i = 0; i < 4; i++) {
        s3[i * 4] = s1[i]; y3[i * 4] = y1[i];
        s3[i * 4 + 1] = -s1[i]; y3[i * 4 + 1] = y1[i];
        s3[i * 4 + 2] = 0.5f; y3[i * 4 + 2] = y1[i];
        s3[i * 4 + 3] = s1[i]; y3[i * 4 + 3] = 0;
    }
    s = vec(2, nl, s3);
    y = vec(2, nl, y3);
    double a[4], p[4];
    OK(ewb_auroc(s, y, a));
    OK(ewb_average_precision(s, y, p));
    CHECK(fabs(a[0] - 0.75) < 1e-12 && fabs(a[1] - 0.25) < 1e-12 && fabs(a[2] - 0.5) < 1e-12 && isnan(a[3]),
          "per-label auroc %g %g %g %g", a[0], a[1], a[2], a[3]);
    /* label 2 descending: -.1 (neg), -.35 (pos) R=1/2 P=1/2 -> 1/4, -.4 (neg), -.8 (pos) R=1 P=2/4 -> 1/4 */
    CHECK(fabs(p[0] - 5.0 / 6) < 1e-12 && fabs(p[1] - 0.5) < 1e-12 && fabs(p[2] - 0.5) < 1e-12 && isnan(p[3]),
          "per-label ap %g %g %g %g", p[0], p[1], p[2], p[3]);
    int64_t counts[16];
    OK(ewb_binary_counts(s, y, 0.38, counts));
    /* label 1 at 0.38: predicted .4 .8 -> tp 1 (.8) fp 1 (.4) fn 1 (.35) tn 1 (.1) */
    CHECK(counts[0] == 1 && counts[1] == 1 && counts[2] == 1 && counts[3] == 1, "counts %lld %lld %lld %lld",
          (long long)counts[0], (long long)counts[1], (long long)counts[2], (long long)counts[3]);
    /* label 3 all 0.5 >= 0.38: tp 2 fp 2 fn 0 tn 0 */
    CHECK(counts[8] == 2 && counts[9] == 2 && counts[10] == 0 && counts[11] == 0, "counts label 3");

    /* errors */
    ewb_tensor *bad = NULL;
    int64_t n3[1] = {3};
    OK(ewb_tensor_new(&bad, EWB_DTYPE_F32, 1, n3));
    FAILS(ewb_auroc(s, bad, a), "labels f32[3] must have the shape of scores f32[4,4]");
    FAILS(ewb_auroc(NULL, y, a), "auroc: tensor argument is nil");
    float nanv[4] = {0, NAN, 1, 2};
    ewb_tensor *sn = vec(1, n4, nanv), *y1t = vec(1, n4, y1);
    FAILS(ewb_average_precision(sn, y1t, a), "score at row 2, label 1 is NaN");
    ewb_tensor_free(sn);
    ewb_tensor_free(y1t);
    ewb_tensor_free(bad);
    ewb_tensor_free(s);
    ewb_tensor_free(y);
}

static void test_confusion(void) {
    int64_t n[1] = {6}, t[6] = {0, 1, 2, 2, 1, 0}, p[6] = {0, 2, 2, 2, 1, 1};
    ewb_tensor *tt = NULL, *pt = NULL, *m = NULL;
    OK(ewb_tensor_from_data(&tt, EWB_DTYPE_I64, 1, n, t));
    OK(ewb_tensor_from_data(&pt, EWB_DTYPE_I64, 1, n, p));
    OK(ewb_confusion_matrix(tt, pt, 3, &m));
    int64_t want[9] = {1, 1, 0, 0, 1, 1, 0, 0, 2};
    int ok = m && ewb_tensor_dtype(m) == EWB_DTYPE_I64;
    for (int i = 0; ok && i < 9; i++) ok = ((int64_t *)ewb_tensor_data(m))[i] == want[i];
    CHECK(ok, "confusion matrix");
    ewb_tensor_free(m);
    m = NULL;
    FAILS(ewb_confusion_matrix(tt, pt, 2, &m), "class out of range [0, 2) at position 2: target 1, pred 2");
    ewb_tensor *f = NULL;
    OK(ewb_tensor_new(&f, EWB_DTYPE_F32, 1, n));
    FAILS(ewb_confusion_matrix(tt, f, 3, &m), "classes must be i32 or i64, got f32[6]");
    ewb_tensor_free(f);
    ewb_tensor_free(tt);
    ewb_tensor_free(pt);
}

/* random symmetric matrix: reconstruction, orthogonality, ascending order */
typedef int (*eig_fn)(double *a, int64_t n, double *w, double *v);

/* eigenvalues come back in w_out (n) when given */
static double eig_check(eig_fn solver, int64_t n, uint64_t seed, int *sweeps, double *w_out) {
    double *a = malloc(sizeof(double) * n * n), *e = malloc(sizeof(double) * n * n), *v = malloc(sizeof(double) * n * n),
           *w = malloc(sizeof(double) * n);
    int64_t sh[2] = {n, n};
    ewb_manual_seed(seed);
    ewb_tensor *r = T(2, sh);
    const float *rp = ewb_f32(r);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) a[i * n + j] = (double)rp[i * n + j] + rp[j * n + i];
    ewb_tensor_free(r);
    memcpy(e, a, sizeof(double) * n * n);
    *sweeps = solver(e, n, w, v);
    if (w_out) memcpy(w_out, w, sizeof(double) * n);
    double worst = 0, scale = 0;
    for (int64_t i = 0; i < n * n; i++) scale = fmax(scale, fabs(a[i]));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double rec = 0, dot = 0;
            for (int64_t k = 0; k < n; k++) {
                rec += v[i * n + k] * w[k] * v[j * n + k];
                dot += v[k * n + i] * v[k * n + j];
            }
            worst = fmax(worst, fabs(rec - a[i * n + j]) / scale);
            worst = fmax(worst, fabs(dot - (i == j)));
        }
    for (int64_t i = 1; i < n; i++) if (w[i] < w[i - 1]) worst = INFINITY;
    free(a); free(e); free(v); free(w);
    return worst;
}

static void test_eig_with(const char *name, eig_fn eig) {
    /* [[2,1],[1,2]]: eigenvalues 1 and 3, vectors (1,-1)/sqrt2 and (1,1)/sqrt2 */
    double a[4] = {2, 1, 1, 2}, w[2], v[4];
    CHECK(eig(a, 2, w, v) >= 0, "%s 2x2: %s", name, ewb_last_error());
    CHECK(fabs(w[0] - 1) < 1e-14 && fabs(w[1] - 3) < 1e-14, "%s eigenvalues %g %g", name, w[0], w[1]);
    CHECK(fabs(fabs(v[0]) - sqrt(0.5)) < 1e-14 && fabs(v[0] + v[2]) < 1e-14 && fabs(v[1] - v[3]) < 1e-14,
          "%s eigenvectors %g %g %g %g", name, v[0], v[1], v[2], v[3]);
    /* a diagonal matrix: the sorted diagonal */
    double d[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2}, w3[3];
    CHECK(eig(d, 3, w3, NULL) >= 0 && w3[0] == -1 && w3[1] == 2 && w3[2] == 3, "%s diagonal", name);
    double one[1] = {-2.5}, w1[1], v1[1];
    CHECK(eig(one, 1, w1, v1) >= 0 && w1[0] == -2.5 && v1[0] == 1, "%s 1x1", name);
    /* I + u u^T, |u|^2 = 3 (u = 1 1 1): eigenvalues 1, 1, 4 (a repeated one) */
    double r1[9] = {2, 1, 1, 1, 2, 1, 1, 1, 2};
    CHECK(eig(r1, 3, w3, NULL) >= 0 && fabs(w3[0] - 1) < 1e-14 && fabs(w3[1] - 1) < 1e-14 && fabs(w3[2] - 4) < 1e-14,
          "%s rank-one update %g %g %g", name, w3[0], w3[1], w3[2]);
    int sw = 0;
    double e;
    e = eig_check(eig, 7, 1, &sw, NULL);  /* odd size: for Jacobi one index sits out each round */
    CHECK(e < 1e-13, "%s n=7: error %g", name, e);
    e = eig_check(eig, 40, 2, &sw, NULL);
    CHECK(e < 1e-13, "%s n=40: error %g", name, e);
    double ns[4] = {1, 2, 0, 1};
    FAILS(eig(ns, 2, w, NULL), "matrix is not symmetric: a[2][1] = 0, a[1][2] = 2");
    double nf[1] = {NAN};
    FAILS(eig(nf, 1, w, NULL), "non-finite entry at (1, 1)");
}

static void test_eig(void) {
    test_eig_with("sym_eig", ewb_sym_eig);
    test_eig_with("sym_eig_jacobi", ewb_sym_eig_jacobi);
    /* the diagonal matrix is already converged for Jacobi: one sweep with no rotation */
    double d[9] = {3, 0, 0, 0, -1, 0, 0, 0, 2}, w3[3];
    CHECK(ewb_sym_eig_jacobi(d, 3, w3, NULL) == 1, "jacobi on a diagonal matrix takes one sweep");
    /* QL above its OpenMP threshold; the two independent algorithms agree */
    double wq[300], wj[300];
    int sw = 0;
    double e = eig_check(ewb_sym_eig, 300, 3, &sw, NULL);
    CHECK(e < 1e-12, "sym_eig n=300: error %g", e);
    e = eig_check(ewb_sym_eig, 150, 4, &sw, wq);
    CHECK(e < 1e-12, "sym_eig n=150: error %g", e);
    e = eig_check(ewb_sym_eig_jacobi, 150, 4, &sw, wj);
    CHECK(e < 1e-12 && sw <= 15, "sym_eig_jacobi n=150: error %g (%d sweeps)", e, sw);
    double diff = 0, scale = 0;
    for (int i = 0; i < 150; i++) { diff = fmax(diff, fabs(wq[i] - wj[i])); scale = fmax(scale, fabs(wj[i])); }
    CHECK(diff < 1e-12 * scale, "QL and Jacobi eigenvalues differ by %g", diff);
}

/* Frechet distance with known covariances */
static void rot2(double deg, const double *diag, double *out) { /* R diag R^T */
    double c = cos(deg * M_PI / 180), s = sin(deg * M_PI / 180), r[4] = {c, -s, s, c};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) out[i * 2 + j] = r[i * 2] * diag[0] * r[j * 2] + r[i * 2 + 1] * diag[1] * r[j * 2 + 1];
}

static void test_frechet(void) {
    /* diagonal: FID = |mu1-mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
       mu1 = (0,0,0), mu2 = (1,2,2): 9; a = 4 1 9, b = 1 1 16: (2-1)^2 + 0 + (3-4)^2 = 2; total 11 */
    double m1[3] = {0, 0, 0}, m2[3] = {1, 2, 2}, s1[9] = {4, 0, 0, 0, 1, 0, 0, 0, 9}, s2[9] = {1, 0, 0, 0, 1, 0, 0, 0, 16}, f;
    OK(ewb_frechet_distance(m1, s1, m2, s2, 3, &f));
    CHECK(fabs(f - 11) < 1e-12, "diagonal FID %.15g != 11", f);
    /* both rotated by the same 30 degrees (they commute): same value as unrotated,
       diag (4, 1) vs (9, 0.25): (2-3)^2 + (1-0.5)^2 = 1.25 */
    double da[2] = {4, 1}, db[2] = {9, 0.25}, r1[4], r2[4], z[2] = {0, 0};
    rot2(30, da, r1);
    rot2(30, db, r2);
    OK(ewb_frechet_distance(z, r1, z, r2, 2, &f));
    CHECK(fabs(f - 1.25) < 1e-12, "co-rotated FID %.15g != 1.25", f);
    /* non-commuting 2x2: diag(4,1) against the 30-degree rotation of diag(9, 0.25).
       For 2x2, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) (sqrt l1 + sqrt l2 squared);
       M = S1 S2 has det = 4*1*9*0.25 = 9 and tr = sum_ij S1_ij S2_ji */
    double s1d[4] = {4, 0, 0, 1};
    OK(ewb_frechet_distance(z, s1d, z, r2, 2, &f));
    double trm = s1d[0] * r2[0] + s1d[3] * r2[3]; /* S1 diagonal */
    double want = 5 + 9.25 - 2 * sqrt(trm + 2 * sqrt(9.0));
    CHECK(fabs(f - want) < 1e-12, "rotated FID %.15g != %.15g", f, want);
    /* identical Gaussians: 0; isotropic sigma^2 I against S2: tr sqrt = sigma sum sqrt(l(S2)) */
    OK(ewb_frechet_distance(z, r2, z, r2, 2, &f));
    CHECK(fabs(f) < 1e-12, "FID of identical Gaussians %g", f);
    /* singular covariance (rank 1): s1 = diag(1, 0), s2 = diag(0, 1): tr sqrt(s1 s2) = 0 -> FID = 2 */
    double sa[4] = {1, 0, 0, 0}, sb[4] = {0, 0, 0, 1};
    OK(ewb_frechet_distance(z, sa, z, sb, 2, &f));
    CHECK(fabs(f - 2) < 1e-12, "singular FID %g != 2", f);
}

static void test_fid_samples(void) {
    /* mean_cov against plain loops, then FID(A, A) = 0 and FID(A, A + c) = |c|^2 */
    int64_t sh[2] = {200, 5};
    ewb_manual_seed(7);
    ewb_tensor *a = T(2, sh), *b = NULL;
    const float *p = ewb_f32(a);
    double mean[5], cov[25], want[25] = {0}, mu[5] = {0};
    OK(ewb_mean_cov(a, mean, cov));
    for (int i = 0; i < 200; i++) for (int j = 0; j < 5; j++) mu[j] += p[i * 5 + j] / 200.0;
    for (int i = 0; i < 200; i++)
        for (int j = 0; j < 5; j++)
            for (int k = 0; k < 5; k++) want[j * 5 + k] += (p[i * 5 + j] - mu[j]) * (p[i * 5 + k] - mu[k]) / 199.0;
    double e = 0;
    for (int j = 0; j < 5; j++) e = fmax(e, fabs(mean[j] - mu[j]));
    for (int j = 0; j < 25; j++) e = fmax(e, fabs(cov[j] - want[j]));
    CHECK(e < 1e-12, "mean_cov error %g", e);
    double f;
    OK(ewb_fid(a, a, &f));
    CHECK(fabs(f) < 1e-10, "FID(A, A) = %g", f);
    float *q = malloc(sizeof(float) * 1000);
    for (int i = 0; i < 1000; i++) q[i] = p[i] + (i % 5 == 2 ? 3.0f : 0.0f);
    b = vec(2, sh, q);
    OK(ewb_fid(a, b, &f));
    CHECK(fabs(f - 9) < 1e-4, "FID(A, A + 3 e3) = %g != 9", f);
    /* a strided view (a transpose of a transpose) gives the same value */
    ewb_tensor *t1 = NULL, *t2 = NULL;
    OK(ewb_transpose(b, 0, 1, &t1));
    OK(ewb_contiguous(t1, &t2));
    ewb_tensor_free(t1);
    OK(ewb_transpose(t2, 0, 1, &t1));
    double f2;
    OK(ewb_fid(a, t1, &f2));
    CHECK(fabs(f2 - f) < 1e-9, "strided FID %g != %g", f2, f);
    int64_t s1[2] = {1, 5}, s3[2] = {10, 4};
    ewb_tensor *one = T(2, s1), *d4 = T(2, s3);
    FAILS(ewb_fid(a, one, &f), "each set needs at least 2 embeddings");
    FAILS(ewb_fid(a, d4, &f), "need two sets of embeddings (N1, D) and (N2, D), got f32[200,5] and f32[10,4]");
    ewb_tensor_free(one); ewb_tensor_free(d4);
    ewb_tensor_free(t1); ewb_tensor_free(t2);
    free(q);
    ewb_tensor_free(a);
    ewb_tensor_free(b);
}

static void test_knn(void) {
    /* 1-D points on the first axis of 2-D embeddings, k = 1.
       real 0 1 2 3 30: radii 1 1 1 1 27. fake -2 .5 3.9 10: radii 2.5 2.5 3.4 6.1.
       precision: .5 (|.5-0| <= 1) yes; 10 (|10-30| = 20 <= 27) yes; 3.9 (.9 <= 1) yes;
       -2 (2 > 1 from 0, 32 > 27 from 30) no -> 3/4.
       recall: 0, 1, 2 within 2.5 of .5 yes; 3 within 3.4 of 3.9 yes; 30 (20 > 6.1 from 10) no -> 4/5 */
    float r[10] = {0, 0, 1, 0, 2, 0, 3, 0, 30, 0}, f[8] = {-2, 0, 0.5f, 0, 3.9f, 0, 10, 0};
    int64_t sr[2] = {5, 2}, sf[2] = {4, 2};
    ewb_tensor *rt = vec(2, sr, r), *ft = vec(2, sf, f);
    double p, rc;
    OK(ewb_knn_precision_recall(rt, ft, 1, &p, &rc));
    CHECK(fabs(p - 0.75) < 1e-12 && fabs(rc - 0.8) < 1e-12, "knn constructed: precision %g recall %g", p, rc);
    FAILS(ewb_knn_precision_recall(rt, ft, 4, &p, &rc), "k must be in [1, N - 1] for both sets");
    ewb_tensor_free(rt);
    ewb_tensor_free(ft);
    /* identical sets -> 1, 1; a set shifted far away -> 0, 0 (sizes above one block of 512 rows) */
    int64_t sh[2] = {700, 16};
    ewb_manual_seed(3);
    ewb_tensor *a = T(2, sh), *b = NULL;
    float *q = malloc(sizeof(float) * 700 * 16);
    memcpy(q, ewb_f32(a), sizeof(float) * 700 * 16);
    for (int i = 0; i < 700 * 16; i++) q[i] += 100;
    b = vec(2, sh, q);
    OK(ewb_knn_precision_recall(a, a, 3, &p, &rc));
    CHECK(p == 1 && rc == 1, "identical sets: precision %g recall %g", p, rc);
    OK(ewb_knn_precision_recall(a, b, 3, &p, &rc));
    CHECK(p == 0 && rc == 0, "far sets: precision %g recall %g", p, rc);
    /* a set against a fresh draw of the same distribution: both well inside (0, 1] */
    ewb_tensor *c = T(2, sh);
    OK(ewb_knn_precision_recall(a, c, 3, &p, &rc));
    CHECK(p > 0.5 && p < 1 && rc > 0.5 && rc < 1, "same distribution: precision %g recall %g", p, rc);
    ewb_tensor_free(c);
    free(q);
    ewb_tensor_free(a);
    ewb_tensor_free(b);
}

static void test_clip_einthoven(void) {
    /* cosines 1, -1, 1/sqrt2: w=100 -> (100 + 0 + 70.71...) / 3; w=2.5 -> (2.5 + 0 + 1.7678) / 3 */
    float a[6] = {1, 0, 0, 1, 1, 1}, b[6] = {2, 0, 0, -1, 1, 0};
    int64_t sh[2] = {3, 2};
    ewb_tensor *at = vec(2, sh, a), *bt = vec(2, sh, b);
    double s;
    OK(ewb_clip_score(at, bt, 100, &s));
    CHECK(fabs(s - (100 + 100 / sqrt(2)) / 3) < 1e-9, "clip score %g", s);
    OK(ewb_clip_score(at, bt, 2.5, &s));
    CHECK(fabs(s - (2.5 + 2.5 / sqrt(2)) / 3) < 1e-9, "clip score w=2.5 %g", s);
    float z[6] = {1, 0, 0, 0, 1, 1};
    ewb_tensor *zt = vec(2, sh, z);
    FAILS(ewb_clip_score(at, zt, 100, &s), "row 2 has a zero embedding");
    ewb_tensor_free(at); ewb_tensor_free(bt); ewb_tensor_free(zt);

    /* two records of 12 leads x 3 samples; leads derived from I and II so the
       laws hold, then record 2's lead III off by +0.5 at every sample and aVF by -0.3:
       limb error = 0.5 * 3 / 6 = 0.25, augmented = 0.3 * 3 / 6 = 0.15 */
    float x[2 * 12 * 3] = {0};
    for (int r = 0; r < 2; r++)
        for (int t = 0; t < 3; t++) {
            float *e = x + r * 36;
            float l1 = 0.1f * (t + 1) + r, l2 = -0.4f * t + 0.3f;
            e[0 * 3 + t] = l1;
            e[1 * 3 + t] = l2;
            e[2 * 3 + t] = l2 - l1;
            e[3 * 3 + t] = -(l1 + l2) / 2;
            e[4 * 3 + t] = l1 - l2 / 2;
            e[5 * 3 + t] = l2 - l1 / 2;
            e[6 * 3 + t] = 7;  /* precordial leads play no part */
            if (r == 1) { e[2 * 3 + t] += 0.5f; e[5 * 3 + t] -= 0.3f; }
        }
    int64_t se[3] = {2, 12, 3};
    ewb_tensor *et = vec(3, se, x);
    double limb, aug;
    OK(ewb_einthoven_error(et, &limb, &aug));
    CHECK(fabs(limb - 0.25) < 1e-6 && fabs(aug - 0.15) < 1e-6, "einthoven %g %g", limb, aug);
    int64_t s11[2] = {11, 3};
    ewb_tensor *e11 = T(2, s11);
    FAILS(ewb_einthoven_error(e11, &limb, &aug), "need (..., 12, T) leads I II III aVR aVL aVF V1..V6, got f32[11,3]");
    ewb_tensor_free(e11);
    ewb_tensor_free(et);
}

int main(void) {
    test_auroc_ap();
    test_confusion();
    test_eig();
    test_frechet();
    test_fid_samples();
    test_knn();
    test_clip_einthoven();
    return check_report();
}
