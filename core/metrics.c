/* metrics.c: the numeric parts of ecgwb's evaluation metrics (wb.metrics).
 *
 *  - classification: AUROC, average precision, confusion counts, confusion
 *    matrix, with sklearn's definitions (roc_auc_score, average_precision_score);
 *  - generation: mean and covariance, a symmetric eigensolver, the Frechet
 *    distance (FID), k-NN precision and recall, CLIP score, Einthoven error.
 *
 * The eigensolver is hand-written because the dependency list has no LAPACK
 * (oneDNN has no eigen decomposition, and adding LAPACK to every machine for
 * one routine is not worth it). It is the classical two-sided Jacobi method:
 * every rotation zeroes one off-diagonal pair exactly, convergence is
 * quadratic, and eigenvalues come out with small relative error, which
 * matters for FID's tr sqrt(.) of nearly singular covariances. Rotations on
 * disjoint index pairs commute, so each step applies n/2 of them at once
 * (round-robin tournament order, as in Brent and Luk's parallel Jacobi): one
 * pass over the rows and one over the columns, both parallel.
 *
 * All arithmetic is in double; tensors come in as f32 (labels any dtype).
 */
#include "internal.h"
#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* all elements of t, row-major, as doubles (any dtype, any strides); NULL + error on failure */
static double *doubles_of(const char *op, ewb_tensor *t) {
    if (ewb_check_alive(op, t)) return NULL;
    int64_t n = ewb_tensor_numel(t);
    double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
    ewb_tensor *c = ewb_contig_or_self(t);
    if (!d || !c) { free(d); ewb_tensor_free(c); ewb_error("%s: out of memory for %s", op, ewb_s(t)); return NULL; }
    const void *p = ewb_tensor_data(c);
    for (int64_t i = 0; i < n; i++) {
        switch (c->dtype) {
        case EWB_DTYPE_F32: d[i] = ((const float *)p)[i]; break;
        case EWB_DTYPE_I32: d[i] = ((const int32_t *)p)[i]; break;
        case EWB_DTYPE_I64: d[i] = (double)((const int64_t *)p)[i]; break;
        default: d[i] = ((const uint8_t *)p)[i]; break;
        }
    }
    ewb_tensor_free(c);
    return d;
}

/* scores (N) or (N, L) f32 and labels of the same shape: *n rows, *l labels */
static int check_scores(const char *op, ewb_tensor *scores, ewb_tensor *labels, int64_t *n, int64_t *l) {
    EWB_TRY(ewb_check_f32(op, scores));
    EWB_TRY(ewb_check_alive(op, labels));
    if (scores->ndim < 1 || scores->ndim > 2)
        return ewb_error("%s: scores must be (N) or (N, L), got %s", op, ewb_s(scores));
    if (labels->ndim != scores->ndim || labels->shape[0] != scores->shape[0] ||
        (scores->ndim == 2 && labels->shape[1] != scores->shape[1]))
        return ewb_error("%s: labels %s must have the shape of scores %s", op, ewb_s(labels), ewb_s(scores));
    *n = scores->shape[0];
    *l = scores->ndim == 2 ? scores->shape[1] : 1;
    if (*n < 1) return ewb_error("%s: no samples in %s", op, ewb_s(scores));
    return 0;
}

typedef struct { double s; int pos; } scored;

static int cmp_scored(const void *a, const void *b) {
    double x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

/* column j of (n, l) scores and labels, sorted by ascending score; *npos positives */
static int column_sorted(const char *op, const double *s, const double *y, int64_t n, int64_t l, int64_t j,
                         scored *col, int64_t *npos) {
    *npos = 0;
    for (int64_t i = 0; i < n; i++) {
        col[i].s = s[i * l + j];
        col[i].pos = y[i * l + j] != 0;
        if (isnan(col[i].s)) return ewb_error("%s: score at row %lld, label %lld is NaN", op, (long long)i + 1, (long long)j + 1);
        *npos += col[i].pos;
    }
    qsort(col, (size_t)n, sizeof *col, cmp_scored);
    return 0;
}

typedef double (*column_metric)(const scored *col, int64_t n, int64_t npos);

static int per_label(const char *op, ewb_tensor *scores, ewb_tensor *labels, double *out, column_metric f) {
    int64_t n, l;
    EWB_TRY(check_scores(op, scores, labels, &n, &l));
    if (!out) return ewb_error("%s: out is NULL", op);
    double *s = doubles_of(op, scores), *y = doubles_of(op, labels);
    scored *col = malloc(sizeof(scored) * (size_t)n);
    int rc = 0;
    if (!s || !y || !col) rc = s && y ? ewb_error("%s: out of memory", op) : -1;
    for (int64_t j = 0; j < l && rc == 0; j++) {
        int64_t npos;
        rc = column_sorted(op, s, y, n, l, j, col, &npos);
        if (rc == 0) out[j] = f(col, n, npos);
    }
    free(s);
    free(y);
    free(col);
    return rc;
}

/* ------------------------------------------------------------ classification */

/* Mann-Whitney: AUC = (sum of the positives' ranks - P(P+1)/2) / (P N), tied
   scores sharing their average rank; this equals the trapezoidal area under
   the ROC curve with tied scores as one point, which is sklearn's value */
static double auroc_column(const scored *col, int64_t n, int64_t npos) {
    int64_t nneg = n - npos;
    if (npos == 0 || nneg == 0) return NAN;
    double rank_sum = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && col[j].s == col[i].s) j++;
        double rank = 0.5 * (double)(i + 1 + j); /* mean of ranks i+1 .. j (1-based) */
        for (int64_t k = i; k < j; k++) if (col[k].pos) rank_sum += rank;
        i = j;
    }
    return (rank_sum - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
}

/* thresholds from the highest score down; a group of tied scores is one threshold */
static double ap_column(const scored *col, int64_t n, int64_t npos) {
    if (npos == 0) return NAN;
    double tp = 0, fp = 0, ap = 0, prev_recall = 0;
    for (int64_t i = n - 1; i >= 0;) {
        int64_t j = i;
        while (j >= 0 && col[j].s == col[i].s) {
            if (col[j].pos) tp++; else fp++;
            j--;
        }
        double recall = tp / (double)npos, precision = tp / (tp + fp);
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    return ap;
}

int ewb_auroc(ewb_tensor *scores, ewb_tensor *labels, double *out) {
    return per_label("auroc", scores, labels, out, auroc_column);
}

int ewb_average_precision(ewb_tensor *scores, ewb_tensor *labels, double *out) {
    return per_label("average_precision", scores, labels, out, ap_column);
}

int ewb_binary_counts(ewb_tensor *scores, ewb_tensor *labels, double threshold, int64_t *counts) {
    int64_t n, l;
    EWB_TRY(check_scores("binary_counts", scores, labels, &n, &l));
    if (!counts) return ewb_error("binary_counts: counts is NULL");
    double *s = doubles_of("binary_counts", scores), *y = doubles_of("binary_counts", labels);
    if (!s || !y) { free(s); free(y); return -1; }
    memset(counts, 0, sizeof(int64_t) * 4 * (size_t)l);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < l; j++) {
            int pred = s[i * l + j] >= threshold, truth = y[i * l + j] != 0;
            counts[4 * j + (pred ? (truth ? 0 : 1) : (truth ? 2 : 3))]++; /* tp fp fn tn */
        }
    free(s);
    free(y);
    return 0;
}

int ewb_confusion_matrix(ewb_tensor *target, ewb_tensor *pred, int64_t k, ewb_tensor **out) {
    const char *op = "confusion_matrix";
    EWB_TRY(ewb_check_alive(op, target));
    EWB_TRY(ewb_check_alive(op, pred));
    if (!out) return ewb_error("%s: out is NULL", op);
    *out = NULL;
    for (int i = 0; i < 2; i++) {
        ewb_tensor *t = i ? pred : target;
        if (t->dtype != EWB_DTYPE_I32 && t->dtype != EWB_DTYPE_I64)
            return ewb_error("%s: classes must be i32 or i64, got %s", op, ewb_s(t));
        if (t->ndim != 1) return ewb_error("%s: classes must be (N), got %s", op, ewb_s(t));
    }
    if (target->shape[0] != pred->shape[0])
        return ewb_error("%s: target %s and pred %s differ in length", op, ewb_s(target), ewb_s(pred));
    if (k < 1 || k > 100000) return ewb_error("%s: number of classes must be in [1, 100000], got %lld", op, (long long)k);
    double *t = doubles_of(op, target), *p = doubles_of(op, pred);
    if (!t || !p) { free(t); free(p); return -1; }
    int64_t n = target->shape[0], shape[2] = {k, k};
    ewb_tensor *m = NULL;
    int rc = ewb_tensor_new(&m, EWB_DTYPE_I64, 2, shape);
    for (int64_t i = 0; i < n && rc == 0; i++) {
        if (t[i] < 0 || t[i] >= k || p[i] < 0 || p[i] >= k)
            rc = ewb_error("%s: class out of range [0, %lld) at position %lld: target %g, pred %g", op, (long long)k,
                           (long long)i + 1, t[i], p[i]);
        else ((int64_t *)ewb_tensor_data(m))[(int64_t)t[i] * k + (int64_t)p[i]]++;
    }
    free(t);
    free(p);
    if (rc) { ewb_tensor_free(m); return rc; }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------ symmetric eigensolver */

/* a (n, n) must be finite and symmetric (to 1e-10 of its Frobenius norm);
   gives its Frobenius norm through fro_out (may be NULL) */
static int check_symmetric(const char *op, const double *a, int64_t n, double *fro_out) {
    double fro = 0;
    for (int64_t i = 0; i < n * n; i++) {
        if (!isfinite(a[i])) return ewb_error("%s: matrix has a non-finite entry at (%lld, %lld)", op, (long long)(i / n) + 1, (long long)(i % n) + 1);
        fro += a[i] * a[i];
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < i; j++)
            if (fabs(a[i * n + j] - a[j * n + i]) > 1e-10 * sqrt(fro))
                return ewb_error("%s: matrix is not symmetric: a[%lld][%lld] = %g, a[%lld][%lld] = %g", op,
                                 (long long)i + 1, (long long)j + 1, a[i * n + j], (long long)j + 1, (long long)i + 1, a[j * n + i]);
    if (fro_out) *fro_out = sqrt(fro);
    return 0;
}

typedef struct { double w; int64_t i; } eigpair;
static int cmp_eig(const void *a, const void *b) {
    double x = ((const eigpair *)a)->w, y = ((const eigpair *)b)->w;
    return (x > y) - (x < y);
}

int ewb_sym_eig_jacobi(double *a, int64_t n, double *w, double *v) {
    const char *op = "sym_eig_jacobi";
    if (!a || !w) return ewb_error("%s: matrix or eigenvalue buffer is NULL", op);
    if (n < 1 || n > 8192) return ewb_error("%s: size must be in [1, 8192], got %lld", op, (long long)n);
    double fro;
    if (check_symmetric(op, a, n, &fro)) return -1;
    int64_t m = n + (n & 1);                    /* players in the tournament; index n is a bye */
    int64_t half = m / 2;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)m);
    int64_t *pp = malloc(sizeof(int64_t) * (size_t)half), *qq = malloc(sizeof(int64_t) * (size_t)half);
    double *cs = malloc(sizeof(double) * 2 * (size_t)half);
    double *vt = v ? malloc(sizeof(double) * (size_t)(n * n)) : NULL; /* (n, n) rows = eigenvectors */
    if (!order || !pp || !qq || !cs || (v && !vt)) {
        free(order); free(pp); free(qq); free(cs); free(vt);
        return ewb_error("%s: out of memory for n = %lld", op, (long long)n);
    }
    if (vt) for (int64_t i = 0; i < n * n; i++) vt[i] = i / n == i % n;
    for (int64_t i = 0; i < m; i++) order[i] = i;
    int sweeps = 0, converged = 0;
    const double rel_tol = 1e-15, abs_tol = 1e-18 * fro;
    while (!converged && sweeps < 60) {
        sweeps++;
        int64_t rotations = 0;
        for (int64_t step = 0; step < m - 1; step++) {
            /* pairs of this round: order[i] against order[m-1-i] */
            int64_t np = 0;
            for (int64_t i = 0; i < half; i++) {
                int64_t p = order[i], q = order[m - 1 - i];
                if (p > q) { int64_t t = p; p = q; q = t; }
                if (q >= n) continue; /* bye */
                double apq = a[p * n + q], app = a[p * n + p], aqq = a[q * n + q];
                if (fabs(apq) <= rel_tol * sqrt(fabs(app * aqq)) || fabs(apq) <= abs_tol) continue;
                double theta = (aqq - app) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                if (fabs(theta) > 1e150) t = 0.5 / theta; /* theta^2 would overflow: t ~ 1/(2 theta) */
                double c = 1 / sqrt(t * t + 1);
                pp[np] = p;
                qq[np] = q;
                cs[2 * np] = c;
                cs[2 * np + 1] = t * c;
                np++;
            }
            if (np) {
                rotations += np;
                /* the new 2x2 blocks, from the values before this step (exact zero off the diagonal) */
                double *dd = malloc(sizeof(double) * 2 * (size_t)np);
                if (!dd) { free(order); free(pp); free(qq); free(cs); free(vt); return ewb_error("%s: out of memory", op); }
                for (int64_t r = 0; r < np; r++) {
                    double t = cs[2 * r + 1] / cs[2 * r], apq = a[pp[r] * n + qq[r]];
                    dd[2 * r] = a[pp[r] * n + pp[r]] - t * apq;
                    dd[2 * r + 1] = a[qq[r] * n + qq[r]] + t * apq;
                }
                /* rows: A <- J^T A */
                #pragma omp parallel for if (n >= 512)
                for (int64_t r = 0; r < np; r++) {
                    double c = cs[2 * r], s = cs[2 * r + 1];
                    double *rp = a + pp[r] * n, *rq = a + qq[r] * n;
                    for (int64_t k = 0; k < n; k++) {
                        double x = rp[k], y = rq[k];
                        rp[k] = c * x - s * y;
                        rq[k] = s * x + c * y;
                    }
                    if (vt) {
                        double *vp = vt + pp[r] * n, *vq = vt + qq[r] * n;
                        for (int64_t k = 0; k < n; k++) {
                            double x = vp[k], y = vq[k];
                            vp[k] = c * x - s * y;
                            vq[k] = s * x + c * y;
                        }
                    }
                }
                /* columns: A <- A J */
                #pragma omp parallel for if (n >= 512)
                for (int64_t k = 0; k < n; k++) {
                    double *row = a + k * n;
                    for (int64_t r = 0; r < np; r++) {
                        double c = cs[2 * r], s = cs[2 * r + 1], x = row[pp[r]], y = row[qq[r]];
                        row[pp[r]] = c * x - s * y;
                        row[qq[r]] = s * x + c * y;
                    }
                }
                for (int64_t r = 0; r < np; r++) {
                    a[pp[r] * n + pp[r]] = dd[2 * r];
                    a[qq[r] * n + qq[r]] = dd[2 * r + 1];
                    a[pp[r] * n + qq[r]] = a[qq[r] * n + pp[r]] = 0;
                }
                free(dd);
            }
            /* next round: keep order[0], rotate the rest by one */
            int64_t last = order[m - 1];
            for (int64_t i = m - 1; i > 1; i--) order[i] = order[i - 1];
            if (m > 1) order[1] = last;
        }
        converged = rotations == 0;
    }
    int rc = sweeps;
    if (!converged) rc = ewb_error("%s: no convergence after %d sweeps (n = %lld)", op, sweeps, (long long)n);
    eigpair *ep = malloc(sizeof(eigpair) * (size_t)n);
    if (!ep) rc = ewb_error("%s: out of memory", op);
    if (rc >= 0) {
        for (int64_t i = 0; i < n; i++) { ep[i].w = a[i * n + i]; ep[i].i = i; }
        qsort(ep, (size_t)n, sizeof *ep, cmp_eig);
        for (int64_t j = 0; j < n; j++) {
            w[j] = ep[j].w;
            if (v) for (int64_t k = 0; k < n; k++) v[k * n + j] = vt[ep[j].i * n + k];
        }
    }
    free(ep); free(order); free(pp); free(qq); free(cs); free(vt);
    return rc;
}

/* Householder tridiagonalisation, then the implicit QL method with Wilkinson
   shifts on the tridiagonal matrix (the EISPACK tred2 / tql2 algorithms, as
   in LAPACK's dsteqr family): about 9 n^3 flops with vectors, 4/3 n^3 without,
   against roughly 10 n^3 per sweep for Jacobi. The transformation matrix is
   kept transposed (vt[c*n + r] is V(r, c)) so the inner loops run along
   contiguous memory. */
static void tred2(double *vt, double *d, double *e, int64_t n, int want) {
#define V(r, c) vt[(int64_t)(c) * n + (r)]
    for (int64_t j = 0; j < n; j++) d[j] = V(n - 1, j);
    for (int64_t i = n - 1; i > 0; i--) {
        double scale = 0, h = 0;
        for (int64_t k = 0; k < i; k++) scale += fabs(d[k]);
        if (scale == 0) {
            e[i] = d[i - 1];
            for (int64_t j = 0; j < i; j++) {
                d[j] = V(i - 1, j);
                V(i, j) = 0;
                V(j, i) = 0;
            }
        } else {
            for (int64_t k = 0; k < i; k++) {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            double f = d[i - 1], g = sqrt(h);
            if (f > 0) g = -g;
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for (int64_t j = 0; j < i; j++) e[j] = 0;
            for (int64_t j = 0; j < i; j++) { /* e = A u (lower triangle of A in V) */
                f = d[j];
                V(j, i) = f;
                g = e[j] + V(j, j) * f;
                double *col = vt + j * n;
                for (int64_t k = j + 1; k <= i - 1; k++) {
                    g += col[k] * d[k];
                    e[k] += col[k] * f;
                }
                e[j] = g;
            }
            f = 0;
            for (int64_t j = 0; j < i; j++) {
                e[j] /= h;
                f += e[j] * d[j];
            }
            double hh = f / (h + h);
            for (int64_t j = 0; j < i; j++) e[j] -= hh * d[j];
            for (int64_t j = 0; j < i; j++) { /* A -= u q^T + q u^T */
                f = d[j];
                g = e[j];
                double *col = vt + j * n;
                for (int64_t k = j; k <= i - 1; k++) col[k] -= f * e[k] + g * d[k];
                d[j] = V(i - 1, j);
                V(i, j) = 0;
            }
        }
        d[i] = h;
    }
    if (want) { /* accumulate the Householder reflections into V */
        for (int64_t i = 0; i < n - 1; i++) {
            V(n - 1, i) = V(i, i);
            V(i, i) = 1;
            double h = d[i + 1];
            const double *ci = vt + (i + 1) * n;
            if (h != 0) {
                for (int64_t k = 0; k <= i; k++) d[k] = ci[k] / h;
                #pragma omp parallel for if (i >= 256)
                for (int64_t j = 0; j <= i; j++) {
                    double *cj = vt + j * n, g = 0;
                    for (int64_t k = 0; k <= i; k++) g += ci[k] * cj[k];
                    for (int64_t k = 0; k <= i; k++) cj[k] -= g * d[k];
                }
            }
            for (int64_t k = 0; k <= i; k++) V(k, i + 1) = 0;
        }
        for (int64_t j = 0; j < n; j++) {
            d[j] = V(n - 1, j);
            V(n - 1, j) = 0;
        }
        V(n - 1, n - 1) = 1;
    } else {
        for (int64_t j = 0; j < n; j++) d[j] = V(j, j);
    }
    e[0] = 0;
#undef V
}

/* d (n) diagonal, e (n) sub-diagonal in e[1..n); vt rows are V's columns */
static int tql2(double *vt, double *d, double *e, int64_t n, int want) {
    for (int64_t i = 1; i < n; i++) e[i - 1] = e[i];
    e[n - 1] = 0;
    double f = 0, tst1 = 0, eps = DBL_EPSILON;
    for (int64_t l = 0; l < n; l++) {
        tst1 = fmax(tst1, fabs(d[l]) + fabs(e[l]));
        int64_t m = l;
        while (m < n - 1 && fabs(e[m]) > eps * tst1) m++;
        if (m > l) {
            int iter = 0;
            do {
                if (++iter > 60) return ewb_error("sym_eig: QL iteration does not converge (n = %lld)", (long long)n);
                double g = d[l], p = (d[l + 1] - g) / (2 * e[l]), r = hypot(p, 1);
                if (p < 0) r = -r;
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                double dl1 = d[l + 1], h = g - d[l];
                for (int64_t i = l + 2; i < n; i++) d[i] -= h;
                f += h;
                p = d[m];
                double c = 1, c2 = 1, c3 = 1, el1 = e[l + 1], s = 0, s2 = 0;
                for (int64_t i = m - 1; i >= l; i--) {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if (want) {
                        double *vi = vt + i * n, *vj = vt + (i + 1) * n;
                        for (int64_t k = 0; k < n; k++) {
                            double t = vj[k];
                            vj[k] = s * vi[k] + c * t;
                            vi[k] = c * vi[k] - s * t;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
            } while (fabs(e[l]) > eps * tst1);
        }
        d[l] += f;
        e[l] = 0;
    }
    return 0;
}

int ewb_sym_eig(double *a, int64_t n, double *w, double *v) {
    const char *op = "sym_eig";
    if (!a || !w) return ewb_error("%s: matrix or eigenvalue buffer is NULL", op);
    if (n < 1 || n > 16384) return ewb_error("%s: size must be in [1, 16384], got %lld", op, (long long)n);
    if (check_symmetric(op, a, n, NULL)) return -1;
    double *e = malloc(sizeof(double) * (size_t)n);
    eigpair *ep = malloc(sizeof(eigpair) * (size_t)n);
    if (!e || !ep) { free(e); free(ep); return ewb_error("%s: out of memory for n = %lld", op, (long long)n); }
    /* a is symmetric, so it is its own transpose: use it as vt in place */
    tred2(a, w, e, n, v != NULL);
    int rc = tql2(a, w, e, n, v != NULL);
    if (rc == 0) {
        for (int64_t i = 0; i < n; i++) { ep[i].w = w[i]; ep[i].i = i; }
        qsort(ep, (size_t)n, sizeof *ep, cmp_eig);
        for (int64_t j = 0; j < n; j++) {
            w[j] = ep[j].w;
            if (v) for (int64_t k = 0; k < n; k++) v[k * n + j] = a[ep[j].i * n + k];
        }
    }
    free(e);
    free(ep);
    return rc;
}

/* ------------------------------------------------------------ Frechet distance */

/* (N, D) f32 embeddings: check and return a contiguous reference */
static ewb_tensor *embeddings(const char *op, ewb_tensor *x, const char *what) {
    if (ewb_check_f32(op, x)) return NULL;
    if (x->ndim != 2 || x->shape[0] < 1 || x->shape[1] < 1) {
        ewb_error("%s: %s must be (N, D) with N, D >= 1, got %s", op, what, ewb_s(x));
        return NULL;
    }
    if (ewb_has_nonfinite(x)) { ewb_error("%s: %s %s has NaN or Inf", op, what, ewb_s(x)); return NULL; }
    return ewb_contig_or_self(x);
}

int ewb_mean_cov(ewb_tensor *x, double *mean, double *cov) {
    const char *op = "mean_cov";
    if (!mean) return ewb_error("%s: mean is NULL", op);
    ewb_tensor *c = embeddings(op, x, "x");
    if (!c) return -1;
    int64_t n = c->shape[0], d = c->shape[1];
    if (cov && n < 2) { ewb_tensor_free(c); return ewb_error("%s: a covariance needs at least 2 rows, got %s", op, ewb_s(x)); }
    const float *p = ewb_f32(c);
    for (int64_t j = 0; j < d; j++) mean[j] = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) mean[j] += p[i * d + j];
    for (int64_t j = 0; j < d; j++) mean[j] /= (double)n;
    if (cov) {
        double *xt = malloc(sizeof(double) * (size_t)(n * d)); /* (D, N) centred, rows contiguous */
        if (!xt) { ewb_tensor_free(c); return ewb_error("%s: out of memory for %s", op, ewb_s(x)); }
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++) xt[j * n + i] = p[i * d + j] - mean[j];
        #pragma omp parallel for schedule(dynamic, 4) if (n * d * d > (1 << 20))
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = a; b < d; b++) {
                const double *u = xt + a * n, *v = xt + b * n;
                double s = 0;
                for (int64_t i = 0; i < n; i++) s += u[i] * v[i];
                cov[a * d + b] = cov[b * d + a] = s / (double)(n - 1);
            }
        free(xt);
    }
    ewb_tensor_free(c);
    return 0;
}

/* c (n, n) = a (n, n) b (n, n), row-major */
static void matmul_d(const double *a, const double *b, double *c, int64_t n) {
    #pragma omp parallel for if (n >= 64)
    for (int64_t i = 0; i < n; i++) {
        double *ci = c + i * n;
        for (int64_t j = 0; j < n; j++) ci[j] = 0;
        for (int64_t k = 0; k < n; k++) {
            double aik = a[i * n + k];
            const double *bk = b + k * n;
            for (int64_t j = 0; j < n; j++) ci[j] += aik * bk[j];
        }
    }
}

int ewb_frechet_distance(const double *mu1, const double *s1, const double *mu2, const double *s2,
                         int64_t d, double *out) {
    const char *op = "frechet_distance";
    if (!mu1 || !s1 || !mu2 || !s2 || !out) return ewb_error("%s: NULL argument", op);
    if (d < 1 || d > 8192) return ewb_error("%s: dimension must be in [1, 8192], got %lld", op, (long long)d);
    size_t dd = (size_t)(d * d);
    double *e = malloc(sizeof(double) * dd), *v = malloc(sizeof(double) * dd), *w = malloc(sizeof(double) * (size_t)d);
    double *root = malloc(sizeof(double) * dd), *tmp = malloc(sizeof(double) * dd);
    int rc = 0;
    if (!e || !v || !w || !root || !tmp) rc = ewb_error("%s: out of memory for d = %lld", op, (long long)d);
    double dist = 0, tr1 = 0, tr2 = 0, trsqrt = 0;
    if (rc == 0) {
        for (int64_t i = 0; i < d; i++) {
            dist += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
            tr1 += s1[i * d + i];
            tr2 += s2[i * d + i];
        }
        /* sqrt(s1) = V diag(sqrt(max(w, 0))) V^T */
        memcpy(e, s1, sizeof(double) * dd);
        if (ewb_sym_eig(e, d, w, v) < 0) rc = -1;
    }
    if (rc == 0) {
        for (int64_t i = 0; i < d; i++) w[i] = sqrt(w[i] > 0 ? w[i] : 0);
        #pragma omp parallel for if (d >= 64)
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < d; j++) {
                double s = 0;
                for (int64_t k = 0; k < d; k++) s += v[i * d + k] * w[k] * v[j * d + k];
                root[i * d + j] = s;
            }
        /* M = sqrt(s1) s2 sqrt(s1): symmetric PSD with the eigenvalues of s1 s2 */
        matmul_d(root, s2, tmp, d);
        matmul_d(tmp, root, e, d);
        for (int64_t i = 0; i < d; i++)
            for (int64_t j = 0; j < i; j++) e[i * d + j] = e[j * d + i] = 0.5 * (e[i * d + j] + e[j * d + i]);
        if (ewb_sym_eig(e, d, w, NULL) < 0) rc = -1;
    }
    if (rc == 0) {
        for (int64_t i = 0; i < d; i++) trsqrt += sqrt(w[i] > 0 ? w[i] : 0);
        *out = dist + tr1 + tr2 - 2 * trsqrt;
    }
    free(e); free(v); free(w); free(root); free(tmp);
    return rc;
}

int ewb_fid(ewb_tensor *a, ewb_tensor *b, double *out) {
    const char *op = "fid";
    if (!out) return ewb_error("%s: out is NULL", op);
    EWB_TRY(ewb_check_f32(op, a));
    EWB_TRY(ewb_check_f32(op, b));
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[1])
        return ewb_error("%s: need two sets of embeddings (N1, D) and (N2, D), got %s and %s", op, ewb_s(a), ewb_s(b));
    if (a->shape[0] < 2 || b->shape[0] < 2)
        return ewb_error("%s: each set needs at least 2 embeddings, got %s and %s", op, ewb_s(a), ewb_s(b));
    int64_t d = a->shape[1];
    double *m1 = malloc(sizeof(double) * (size_t)d), *m2 = malloc(sizeof(double) * (size_t)d);
    double *c1 = malloc(sizeof(double) * (size_t)(d * d)), *c2 = malloc(sizeof(double) * (size_t)(d * d));
    int rc = 0;
    if (!m1 || !m2 || !c1 || !c2) rc = ewb_error("%s: out of memory for D = %lld", op, (long long)d);
    if (rc == 0) rc = ewb_mean_cov(a, m1, c1);
    if (rc == 0) rc = ewb_mean_cov(b, m2, c2);
    if (rc == 0) rc = ewb_frechet_distance(m1, c1, m2, c2, d, out);
    free(m1); free(m2); free(c1); free(c2);
    return rc;
}

/* ------------------------------------------------------------ k-NN precision and recall */

/* k-th smallest (0-based) of v[0..n), reorders v */
static double kth_smallest(double *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) { double t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* squared row norms of x (n, d) f32, in double */
static double *row_norms2(const float *x, int64_t n, int64_t d) {
    double *r = malloc(sizeof(double) * (size_t)n);
    if (!r) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        r[i] = s;
    }
    return r;
}

/* squared distances between rows [r0, r0+nr) of a and every row of b:
   |a|^2 + |b|^2 - 2 a.b with the products from ewb_matmul (oneDNN, f32) in
   blocks; dist (nr, nb) doubles */
static int dist2_block(ewb_tensor *a, const double *na, int64_t r0, int64_t nr, ewb_tensor *bt, const double *nb,
                       double *dist) {
    ewb_tensor *ab = NULL, *g = NULL;
    if (ewb_narrow(a, 0, r0, nr, &ab)) return -1;
    int rc = ewb_matmul(ab, bt, &g);   /* (nr, D) @ (D, nb) */
    ewb_tensor_free(ab);
    if (rc) return -1;
    int64_t m = g->shape[1];
    const float *gp = ewb_f32(g);
    for (int64_t i = 0; i < nr; i++)
        for (int64_t j = 0; j < m; j++) {
            double d2 = na[r0 + i] + nb[j] - 2.0 * gp[i * m + j];
            dist[i * m + j] = d2 > 0 ? d2 : 0;
        }
    ewb_tensor_free(g);
    return 0;
}

enum { KNN_BLOCK = 512 };

/* radii[i] = squared distance from x_i to its k-th nearest other row of x */
static int knn_radii(ewb_tensor *x, ewb_tensor *xt, const double *nx, int k, double *radii) {
    int64_t n = x->shape[0];
    double *dist = malloc(sizeof(double) * (size_t)(KNN_BLOCK * n));
    if (!dist) return ewb_error("knn_precision_recall: out of memory");
    for (int64_t r0 = 0; r0 < n; r0 += KNN_BLOCK) {
        int64_t nr = n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK;
        if (dist2_block(x, nx, r0, nr, xt, nx, dist)) { free(dist); return -1; }
        #pragma omp parallel for if (nr * n > 100000)
        for (int64_t i = 0; i < nr; i++) {
            double *row = dist + i * n;
            row[r0 + i] = INFINITY; /* not its own neighbour */
            radii[r0 + i] = kth_smallest(row, n, k - 1);
        }
    }
    free(dist);
    return 0;
}

/* fraction of rows of q inside the k-NN balls of the rows of x */
static int knn_coverage(ewb_tensor *q, const double *nq, ewb_tensor *xt, const double *nx, const double *radii,
                        double *frac) {
    int64_t n = q->shape[0], m = xt->shape[1], inside = 0;
    double *dist = malloc(sizeof(double) * (size_t)(KNN_BLOCK * m));
    if (!dist) return ewb_error("knn_precision_recall: out of memory");
    for (int64_t r0 = 0; r0 < n; r0 += KNN_BLOCK) {
        int64_t nr = n - r0 < KNN_BLOCK ? n - r0 : KNN_BLOCK;
        if (dist2_block(q, nq, r0, nr, xt, nx, dist)) { free(dist); return -1; }
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < m; j++)
                if (dist[i * m + j] <= radii[j]) { inside++; break; }
    }
    free(dist);
    *frac = (double)inside / (double)n;
    return 0;
}

int ewb_knn_precision_recall(ewb_tensor *real, ewb_tensor *fake, int k, double *precision, double *recall) {
    const char *op = "knn_precision_recall";
    if (!precision || !recall) return ewb_error("%s: output is NULL", op);
    ewb_tensor *r = embeddings(op, real, "real"), *f = r ? embeddings(op, fake, "fake") : NULL;
    if (!r || !f) { ewb_tensor_free(r); return -1; }
    int rc = 0;
    if (r->shape[1] != f->shape[1])
        rc = ewb_error("%s: real %s and fake %s differ in embedding size", op, ewb_s(real), ewb_s(fake));
    else if (k < 1 || k >= r->shape[0] || k >= f->shape[0])
        rc = ewb_error("%s: k must be in [1, N - 1] for both sets, got k = %d with real %s and fake %s", op, k,
                       ewb_s(real), ewb_s(fake));
    ewb_tensor *rd = NULL, *fd = NULL, *rt = NULL, *ft = NULL;
    double *nr = NULL, *nf = NULL, *rr = NULL, *rf = NULL;
    if (rc == 0) {
        /* detached, so no autograd graph is recorded; transposes are views */
        rc = ewb_detach(r, &rd) || ewb_detach(f, &fd) || ewb_transpose(rd, 0, 1, &rt) || ewb_transpose(fd, 0, 1, &ft) ? -1 : 0;
    }
    if (rc == 0) {
        nr = row_norms2(ewb_f32(r), r->shape[0], r->shape[1]);
        nf = row_norms2(ewb_f32(f), f->shape[0], f->shape[1]);
        rr = malloc(sizeof(double) * (size_t)r->shape[0]);
        rf = malloc(sizeof(double) * (size_t)f->shape[0]);
        if (!nr || !nf || !rr || !rf) rc = ewb_error("%s: out of memory", op);
    }
    if (rc == 0) rc = knn_radii(rd, rt, nr, k, rr);
    if (rc == 0) rc = knn_radii(fd, ft, nf, k, rf);
    if (rc == 0) rc = knn_coverage(fd, nf, rt, nr, rr, precision);
    if (rc == 0) rc = knn_coverage(rd, nr, ft, nf, rf, recall);
    ewb_tensor_free(rd); ewb_tensor_free(fd); ewb_tensor_free(rt); ewb_tensor_free(ft);
    ewb_tensor_free(r); ewb_tensor_free(f);
    free(nr); free(nf); free(rr); free(rf);
    return rc;
}

/* ------------------------------------------------------------ CLIP score, Einthoven */

int ewb_clip_score(ewb_tensor *a, ewb_tensor *b, double w, double *out) {
    const char *op = "clip_score";
    if (!out) return ewb_error("%s: out is NULL", op);
    ewb_tensor *x = embeddings(op, a, "first set"), *y = x ? embeddings(op, b, "second set") : NULL;
    if (!x || !y) { ewb_tensor_free(x); return -1; }
    int rc = 0;
    if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
        rc = ewb_error("%s: need paired embeddings of one shape, got %s and %s", op, ewb_s(a), ewb_s(b));
    int64_t n = x->shape[0], d = x->shape[1];
    const float *p = ewb_f32(x), *q = ewb_f32(y);
    double total = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        double dot = 0, nx = 0, ny = 0;
        for (int64_t j = 0; j < d; j++) {
            dot += (double)p[i * d + j] * q[i * d + j];
            nx += (double)p[i * d + j] * p[i * d + j];
            ny += (double)q[i * d + j] * q[i * d + j];
        }
        if (nx == 0 || ny == 0) rc = ewb_error("%s: row %lld has a zero embedding (no cosine)", op, (long long)i + 1);
        double s = w * dot / sqrt(nx * ny);
        total += s > 0 ? s : 0;
    }
    if (rc == 0) *out = total / (double)n;
    ewb_tensor_free(x);
    ewb_tensor_free(y);
    return rc;
}

int ewb_einthoven_error(ewb_tensor *ecg, double *limb, double *augmented) {
    const char *op = "einthoven_error";
    if (!limb || !augmented) return ewb_error("%s: output is NULL", op);
    EWB_TRY(ewb_check_f32(op, ecg));
    if (ecg->ndim < 2 || ecg->shape[ecg->ndim - 2] != 12 || ecg->shape[ecg->ndim - 1] < 1)
        return ewb_error("%s: need (..., 12, T) leads I II III aVR aVL aVF V1..V6, got %s", op, ewb_s(ecg));
    ewb_tensor *c = ewb_contig_or_self(ecg);
    if (!c) return -1;
    int64_t t = c->shape[c->ndim - 1], recs = ewb_tensor_numel(c) / (12 * t);
    const float *p = ewb_f32(c);
    double e1 = 0, e2 = 0;
    for (int64_t r = 0; r < recs; r++) {
        const float *x = p + r * 12 * t;
        for (int64_t i = 0; i < t; i++) {
            e1 += fabs((double)x[i] + x[2 * t + i] - x[t + i]);
            e2 += fabs((double)x[3 * t + i] + x[4 * t + i] + x[5 * t + i]);
        }
    }
    *limb = e1 / (double)(recs * t);
    *augmented = e2 / (double)(recs * t);
    ewb_tensor_free(c);
    return 0;
}
