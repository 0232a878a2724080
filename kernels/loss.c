/* loss.c: losses and vector similarities, forward and backward fused in C.
 *   cross_entropy      logits (N,C), integer target (N): stable log-softmax,
 *                      ignore_index, label smoothing, as torch.nn.functional
 *   bce_with_logits    max(x,0) - x·t + log1p(exp(-|x|)), same-shape target
 *   mse_loss, l1_loss  (a-b)², |a-b|; a and b broadcast
 *   cosine_similarity  along a dim; torch 1.13's eps: each squared norm is
 *                      clamped to eps² (gradients flow as if unclamped)
 *   normalize          x / max(||x||₂, eps) along a dim
 * Reductions: EWB_REDUCE_NONE keeps the per-element (per-row) losses, MEAN
 * and SUM give a 0-d tensor. Sums are accumulated in double.
 * Differences from torch, on purpose: a mean over zero elements (or over
 * rows that are all ignore_index) is 0 with a zero gradient, not NaN. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

static int check_reduction(const char *op, int r) {
    if (r != EWB_REDUCE_NONE && r != EWB_REDUCE_MEAN && r != EWB_REDUCE_SUM)
        return ewb_error("%s: reduction must be 0 (none), 1 (mean) or 2 (sum), got %d", op, r);
    return 0;
}

static ewb_tensor *scalar_out(double v) {
    int64_t none[1] = {0};
    ewb_tensor *t = ewb_empty(EWB_DTYPE_F32, 0, none);
    if (t) *ewb_f32(t) = (float)v;
    return t;
}

/* contiguous copy (or t itself) of t broadcast to (nd, shape) */
static ewb_tensor *bcast_contig(ewb_tensor *t, int nd, const int64_t *shape) {
    ewb_tensor *v = ewb_broadcast_view(t, nd, shape);
    if (!v) return NULL;
    ewb_tensor *c = ewb_contig_or_self(v);
    ewb_tensor_free(v);
    return c;
}

static int same_shape(const ewb_tensor *a, int nd, const int64_t *shape) {
    if (a->ndim != nd) return 0;
    for (int i = 0; i < nd; i++)
        if (a->shape[i] != shape[i]) return 0;
    return 1;
}

/* dst (an input's gradient slot) += g, where g has the broadcast shape */
static int add_reduced(ewb_tensor *dst, ewb_tensor *g) { return ewb_accumulate_reduced(dst, g, 1.0); }

/* ================= cross entropy ================= */
/* per row i: lse = log Σ_c exp(x_c); with ε = label_smoothing,
 *   loss_i = (1-ε)(lse - x_y) + ε/C · Σ_c (lse - x_c)
 *   d loss_i / d x_c = p_c - (1-ε)[c = y] - ε/C
 * rows with y == ignore_index give 0 and are not counted by the mean. */
typedef struct {
    int64_t N, C;
    double *lse;      /* (N) */
    int64_t *y;       /* (N) class or -1 for ignored */
} ce_ctx;

static int ce_backward(ewb_node *n) {
    ewb_tensor *gx = ewb_grad_slot(n, 0);
    if (!gx) return 0;
    ce_ctx *c = n->ctx;
    int64_t N = c->N, C = c->C, count = n->iarg[1];
    int reduction = (int)n->iarg[0];
    double eps = n->farg[0];
    const float *x = ewb_f32(n->saved[0]);  // (N, C)
    const float *g = ewb_f32(n->gout);      // (N) or ()
    float *dx = ewb_f32(gx);                // (N, C)
    #pragma omp parallel for if (N * C > 1 << 15)
    for (int64_t i = 0; i < N; i++) {
        if (c->y[i] < 0) continue;
        double gi = reduction == EWB_REDUCE_NONE ? g[i] : reduction == EWB_REDUCE_SUM ? g[0] : g[0] / (double)count;
        const float *xr = x + i * C;
        float *dr = dx + i * C;
        for (int64_t k = 0; k < C; k++) {
            double d = exp(xr[k] - c->lse[i]) - eps / C - (k == c->y[i] ? 1 - eps : 0);
            dr[k] += (float)(gi * d);
        }
    }
    return 0;
}

int ewb_cross_entropy(ewb_tensor *logits, ewb_tensor *target, int64_t ignore_index, double label_smoothing,
                      int reduction, ewb_tensor **out) {
    const char *op = "cross_entropy";
    EWB_TRY(ewb_check_f32(op, logits));
    EWB_TRY(ewb_check_alive(op, target));
    EWB_TRY(check_reduction(op, reduction));
    if (logits->ndim != 2) return ewb_error("%s: logits must be (N, C), got %s", op, ewb_s(logits));
    if (target->dtype != EWB_DTYPE_I64 && target->dtype != EWB_DTYPE_I32)
        return ewb_error("%s: target must hold class ids as i64 or i32, got %s", op, ewb_s(target));
    if (target->ndim != 1 || target->shape[0] != logits->shape[0])
        return ewb_error("%s: target %s does not match logits %s (expects (N) = (%lld))", op, ewb_s(target),
                         ewb_s(logits), (long long)logits->shape[0]);
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
        return ewb_error("%s: label_smoothing must be in [0, 1], got %g", op, label_smoothing);
    int64_t N = logits->shape[0], C = logits->shape[1];
    if (C == 0 && N > 0) return ewb_error("%s: logits %s have no classes", op, ewb_s(logits));

    /* one block, as the node frees its ctx with a single free() */
    ce_ctx *c = malloc(sizeof *c + (sizeof(double) + sizeof(int64_t)) * (size_t)N);
    if (!c) return ewb_error("%s: out of memory", op);
    c->lse = (double *)(c + 1);
    c->y = (int64_t *)(c->lse + N);
    c->N = N; c->C = C;
    int rc = 0;
    int64_t count = 0;
    for (int64_t i = 0; i < N; i++) { /* targets, checked */
        int64_t y = target->dtype == EWB_DTYPE_I64 ? ((const int64_t *)ewb_tensor_data(target))[i * target->stride[0]]
                                                   : ((const int32_t *)ewb_tensor_data(target))[i * target->stride[0]];
        if (y == ignore_index) { c->y[i] = -1; continue; }
        if (y < 0 || y >= C) {
            rc = ewb_error("%s: target %lld at row %lld is out of range for %lld classes (logits %s, ignore_index %lld)",
                           op, (long long)y, (long long)i, (long long)C, ewb_s(logits), (long long)ignore_index);
            break;
        }
        c->y[i] = y;
        count++;
    }
    ewb_tensor *x = rc ? NULL : ewb_contig_or_self(logits);  // (N, C)
    int64_t nshape[1] = {N};
    ewb_tensor *rows = x ? ewb_empty(EWB_DTYPE_F32, 1, nshape) : NULL;  // (N) per-row losses
    if (!rows) {
        ewb_tensor_free(x);
        free(c);
        return -1;
    }
    const float *xp = ewb_f32(x);
    float *lp = ewb_f32(rows);
    double eps = label_smoothing, total = 0;
    #pragma omp parallel for reduction(+ : total) if (N * C > 1 << 15)
    for (int64_t i = 0; i < N; i++) {
        const float *xr = xp + i * C;
        double m = xr[0], s = 0, sx = 0;
        for (int64_t k = 1; k < C; k++) if (xr[k] > m) m = xr[k];
        for (int64_t k = 0; k < C; k++) { s += exp(xr[k] - m); sx += xr[k]; }
        double lse = m + log(s);
        c->lse[i] = lse;
        if (c->y[i] < 0) { lp[i] = 0; continue; }
        /* the smoothing term only when asked: with a -inf logit (a masked
         * class) it is 0 · inf = NaN */
        double l = (1 - eps) * (lse - xr[c->y[i]]);
        if (eps > 0) l += eps / C * (C * lse - sx);
        lp[i] = (float)l;
        total += l;
    }
    ewb_tensor *res = rows;
    if (reduction != EWB_REDUCE_NONE) {
        res = scalar_out(reduction == EWB_REDUCE_SUM ? total : count ? total / count : 0);
        ewb_tensor_free(rows);
        if (!res) { ewb_tensor_free(x); free(c); return -1; }
    }
    ewb_tensor *ins[1] = {logits};
    ewb_node *n = ewb_record(op, ce_backward, 1, ins, res);
    if (n) {
        ewb_save(n, 0, x);
        n->ctx = c;
        n->iarg[0] = reduction;
        n->iarg[1] = count;
        n->farg[0] = eps;
    } else {
        free(c);
    }
    ewb_tensor_free(x);
    return ewb_finish(op, res, 0, out);
}

/* ================= pointwise losses: bce_with_logits, mse, l1 ================= */
enum { PW_BCE, PW_MSE, PW_L1 };
static const char *const PW_NAME[] = {"bce_with_logits", "mse_loss", "l1_loss"};

static inline double sigmoid(double x) {
    if (x >= 0) return 1 / (1 + exp(-x));
    double e = exp(x);
    return e / (1 + e);
}

/* loss of one element and its partial derivatives */
static inline double pw_eval(int kind, double a, double b, double *da, double *db) {
    switch (kind) {
    case PW_BCE: /* a = logit, b = target */
        *da = sigmoid(a) - b;
        *db = -a;
        return (a > 0 ? a : 0) - a * b + log1p(exp(-fabs(a)));
    case PW_MSE:
        *da = 2 * (a - b);
        *db = -*da;
        return (a - b) * (a - b);
    default: {
        double d = a - b, s = d > 0 ? 1 : d < 0 ? -1 : 0;
        *da = s;
        *db = -s;
        return fabs(d);
    }
    }
}

static int pw_backward(ewb_node *n) {
    int kind = (int)n->iarg[0], reduction = (int)n->iarg[1];
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    ewb_tensor *a = n->saved[0], *b = n->saved[1]; /* contiguous, broadcast shape */
    int64_t cnt = ewb_tensor_numel(a);
    ewb_tensor *ta = NULL, *tb = NULL; /* full-shape buffers when an input was broadcast */
    if (ga && !same_shape(ga, a->ndim, a->shape) && !(ta = ewb_zeros_like(a))) return -1;
    if (gb && !same_shape(gb, a->ndim, a->shape) && !(tb = ewb_zeros_like(a))) { ewb_tensor_free(ta); return -1; }
    float *pa = ga ? ewb_f32(ta ? ta : ga) : NULL, *pb = gb ? ewb_f32(tb ? tb : gb) : NULL;
    const float *x = ewb_f32(a), *y = ewb_f32(b), *g = ewb_f32(n->gout);
    double gs = reduction == EWB_REDUCE_SUM ? g[0] : reduction == EWB_REDUCE_MEAN && cnt ? g[0] / (double)cnt : 0;
    #pragma omp parallel for if (cnt > 1 << 16)
    for (int64_t i = 0; i < cnt; i++) {
        double da, db, gi = reduction == EWB_REDUCE_NONE ? g[i] : gs;
        pw_eval(kind, x[i], y[i], &da, &db);
        if (pa) pa[i] += (float)(gi * da);
        if (pb) pb[i] += (float)(gi * db);
    }
    int rc = 0;
    if (ta) rc = add_reduced(ga, ta);
    if (tb && rc == 0) rc = add_reduced(gb, tb);
    ewb_tensor_free(ta);
    ewb_tensor_free(tb);
    return rc;
}

static int pointwise_loss(int kind, ewb_tensor *a, ewb_tensor *b, int reduction, ewb_tensor **out) {
    const char *op = PW_NAME[kind];
    EWB_TRY(ewb_check_f32(op, a));
    EWB_TRY(ewb_check_f32(op, b));
    EWB_TRY(check_reduction(op, reduction));
    int nd;
    int64_t shape[EWB_MAX_DIMS];
    if (kind == PW_BCE) {
        if (!same_shape(b, a->ndim, a->shape))
            return ewb_error("%s: target %s must have the shape of the input %s", op, ewb_s(b), ewb_s(a));
        nd = a->ndim;
        memcpy(shape, a->shape, sizeof shape);
    } else {
        EWB_TRY(ewb_broadcast_shape(op, a, b, &nd, shape));
    }
    ewb_tensor *ac = bcast_contig(a, nd, shape), *bc = ac ? bcast_contig(b, nd, shape) : NULL;
    ewb_tensor *full = bc ? ewb_empty(EWB_DTYPE_F32, nd, shape) : NULL;
    if (!full) { ewb_tensor_free(ac); ewb_tensor_free(bc); return -1; }
    int64_t cnt = ewb_tensor_numel(full);
    const float *x = ewb_f32(ac), *y = ewb_f32(bc);
    float *lp = ewb_f32(full);
    double total = 0;
    #pragma omp parallel for reduction(+ : total) if (cnt > 1 << 16)
    for (int64_t i = 0; i < cnt; i++) {
        double da, db, l = pw_eval(kind, x[i], y[i], &da, &db);
        lp[i] = (float)l;
        total += l;
    }
    ewb_tensor *res = full;
    if (reduction != EWB_REDUCE_NONE) {
        res = scalar_out(reduction == EWB_REDUCE_SUM ? total : cnt ? total / cnt : 0);
        ewb_tensor_free(full);
    }
    int rc = res ? 0 : -1;
    ewb_tensor *ins[2] = {a, b};
    ewb_node *n = rc ? NULL : ewb_record(op, pw_backward, 2, ins, res);
    if (n) {
        ewb_save(n, 0, ac);
        ewb_save(n, 1, bc);
        n->iarg[0] = kind;
        n->iarg[1] = reduction;
    }
    ewb_tensor_free(ac);
    ewb_tensor_free(bc);
    return ewb_finish(op, res, rc, out);
}

int ewb_bce_with_logits(ewb_tensor *x, ewb_tensor *target, int reduction, ewb_tensor **out) {
    return pointwise_loss(PW_BCE, x, target, reduction, out);
}
int ewb_mse_loss(ewb_tensor *a, ewb_tensor *b, int reduction, ewb_tensor **out) {
    return pointwise_loss(PW_MSE, a, b, reduction, out);
}
int ewb_l1_loss(ewb_tensor *a, ewb_tensor *b, int reduction, ewb_tensor **out) {
    return pointwise_loss(PW_L1, a, b, reduction, out);
}

/* ================= along-a-dim ops: cosine_similarity, normalize ================= */
/* a contiguous tensor seen as (outer, L, inner) around dim */
typedef struct { int64_t outer, L, inner; } span3;
static span3 split_at(const int64_t *shape, int nd, int dim) {
    span3 s = {1, shape[dim], 1};
    for (int i = 0; i < dim; i++) s.outer *= shape[i];
    for (int i = dim + 1; i < nd; i++) s.inner *= shape[i];
    return s;
}

static int norm_dim(const char *op, int nd, int dim, const char *shp, int *out) {
    int d = dim < 0 ? dim + nd : dim;
    if (d < 0 || d >= nd) return ewb_error("%s: dim %d out of range for %s", op, dim, shp);
    *out = d;
    return 0;
}

/* cosine: n1 = max(Σa², eps²), n2 = max(Σb², eps²), D = sqrt(n1·n2),
 *   y = Σab / D;  dy/da = b/D - y·a/n1;  dy/db = a/D - y·b/n2 */
/* x·y and the squared norms (each clamped to eps², as torch 1.13) of one
   row of length s.L starting at base with stride s.inner */
static void cos_row(const float *x, const float *y, int64_t base, span3 s, double eps2, double *w, double *n1, double *n2) {
    double a = 0, b = 0, c = 0;
    for (int64_t l = 0; l < s.L; l++) {
        double u = x[base + l * s.inner], v = y[base + l * s.inner];
        a += u * v; b += u * u; c += v * v;
    }
    *w = a;
    *n1 = b > eps2 ? b : eps2;
    *n2 = c > eps2 ? c : eps2;
}

static int cos_backward(ewb_node *n) {
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    ewb_tensor *a = n->saved[0], *b = n->saved[1]; /* contiguous, broadcast shape */
    int dim = (int)n->iarg[0];
    double eps2 = n->farg[0] * n->farg[0];
    span3 s = split_at(a->shape, a->ndim, dim);
    ewb_tensor *ta = NULL, *tb = NULL;
    if (ga && !same_shape(ga, a->ndim, a->shape) && !(ta = ewb_zeros_like(a))) return -1;
    if (gb && !same_shape(gb, a->ndim, a->shape) && !(tb = ewb_zeros_like(a))) { ewb_tensor_free(ta); return -1; }
    float *pa = ga ? ewb_f32(ta ? ta : ga) : NULL, *pb = gb ? ewb_f32(tb ? tb : gb) : NULL;
    const float *x = ewb_f32(a), *y = ewb_f32(b), *g = ewb_f32(n->gout); // g (outer, inner)
    int64_t rows = s.outer * s.inner;
    #pragma omp parallel for if (rows * s.L > 1 << 15)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = (r / s.inner) * s.L * s.inner + r % s.inner;
        double w, n1, n2;
        cos_row(x, y, base, s, eps2, &w, &n1, &n2);
        double D = sqrt(n1 * n2), out = w / D, gr = g[r];
        for (int64_t l = 0; l < s.L; l++) {
            int64_t k = base + l * s.inner;
            if (pa) pa[k] += (float)(gr * (y[k] / D - out * x[k] / n1));
            if (pb) pb[k] += (float)(gr * (x[k] / D - out * y[k] / n2));
        }
    }
    int rc = 0;
    if (ta) rc = add_reduced(ga, ta);
    if (tb && rc == 0) rc = add_reduced(gb, tb);
    ewb_tensor_free(ta);
    ewb_tensor_free(tb);
    return rc;
}

int ewb_cosine_similarity(ewb_tensor *a, ewb_tensor *b, int dim, double eps, ewb_tensor **out) {
    const char *op = "cosine_similarity";
    EWB_TRY(ewb_check_f32(op, a));
    EWB_TRY(ewb_check_f32(op, b));
    if (!(eps >= 0)) return ewb_error("%s: eps must be >= 0, got %g", op, eps);
    int nd, d;
    int64_t shape[EWB_MAX_DIMS];
    EWB_TRY(ewb_broadcast_shape(op, a, b, &nd, shape));
    EWB_TRY(norm_dim(op, nd, dim, ewb_s(a), &d));
    ewb_tensor *ac = bcast_contig(a, nd, shape), *bc = ac ? bcast_contig(b, nd, shape) : NULL;
    int64_t oshape[EWB_MAX_DIMS];
    for (int i = 0, j = 0; i < nd; i++) if (i != d) oshape[j++] = shape[i];
    ewb_tensor *res = bc ? ewb_empty(EWB_DTYPE_F32, nd - 1, oshape) : NULL; // shape without dim
    if (!res) { ewb_tensor_free(ac); ewb_tensor_free(bc); return -1; }
    span3 s = split_at(shape, nd, d);
    const float *x = ewb_f32(ac), *y = ewb_f32(bc);
    float *o = ewb_f32(res);
    double eps2 = eps * eps;
    int64_t rows = s.outer * s.inner;
    #pragma omp parallel for if (rows * s.L > 1 << 15)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = (r / s.inner) * s.L * s.inner + r % s.inner;
        double w, n1, n2;
        cos_row(x, y, base, s, eps2, &w, &n1, &n2);
        o[r] = (float)(w / sqrt(n1 * n2));
    }
    ewb_tensor *ins[2] = {a, b};
    ewb_node *n = ewb_record(op, cos_backward, 2, ins, res);
    if (n) {
        ewb_save(n, 0, ac);
        ewb_save(n, 1, bc);
        n->iarg[0] = d;
        n->farg[0] = eps;
    }
    ewb_tensor_free(ac);
    ewb_tensor_free(bc);
    return ewb_finish(op, res, 0, out);
}

/* normalize: ν = ||x||, c = max(ν, eps), y = x / c.
 *   ν >= eps: dx = g/ν - x·(g·x)/ν³;  ν < eps: dx = g/eps (as torch's clamp_min) */
static int normalize_backward(ewb_node *n) {
    ewb_tensor *gx = ewb_grad_slot(n, 0);
    if (!gx) return 0;
    ewb_tensor *a = n->saved[0];
    int dim = (int)n->iarg[0];
    double eps = n->farg[0];
    span3 s = split_at(a->shape, a->ndim, dim);
    const float *x = ewb_f32(a), *g = ewb_f32(n->gout);
    float *dx = ewb_f32(gx);
    int64_t rows = s.outer * s.inner;
    #pragma omp parallel for if (rows * s.L > 1 << 15)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = (r / s.inner) * s.L * s.inner + r % s.inner;
        double nn = 0, gx_dot = 0;
        for (int64_t l = 0; l < s.L; l++) {
            double u = x[base + l * s.inner];
            nn += u * u;
            gx_dot += u * g[base + l * s.inner];
        }
        double nu = sqrt(nn);
        int through = nu >= eps && nu > 0;
        double c = through ? nu : eps, k = through ? gx_dot / (nu * nu * nu) : 0;
        for (int64_t l = 0; l < s.L; l++) {
            int64_t i = base + l * s.inner;
            dx[i] += (float)(g[i] / c - x[i] * k);
        }
    }
    return 0;
}

int ewb_normalize(ewb_tensor *a, int dim, double eps, ewb_tensor **out) {
    const char *op = "normalize";
    EWB_TRY(ewb_check_f32(op, a));
    if (!(eps >= 0)) return ewb_error("%s: eps must be >= 0, got %g", op, eps);
    int d;
    EWB_TRY(norm_dim(op, a->ndim, dim, ewb_s(a), &d));
    ewb_tensor *ac = ewb_contig_or_self(a);
    ewb_tensor *res = ac ? ewb_empty_like(ac) : NULL;
    if (!res) { ewb_tensor_free(ac); return -1; }
    span3 s = split_at(a->shape, a->ndim, d);
    const float *x = ewb_f32(ac);
    float *y = ewb_f32(res);
    int64_t rows = s.outer * s.inner;
    #pragma omp parallel for if (rows * s.L > 1 << 15)
    for (int64_t r = 0; r < rows; r++) {
        int64_t base = (r / s.inner) * s.L * s.inner + r % s.inner;
        double nn = 0;
        for (int64_t l = 0; l < s.L; l++) nn += (double)x[base + l * s.inner] * x[base + l * s.inner];
        double nu = sqrt(nn), c = nu > eps ? nu : eps;
        for (int64_t l = 0; l < s.L; l++) y[base + l * s.inner] = (float)(x[base + l * s.inner] / c);
    }
    ewb_tensor *ins[1] = {a};
    ewb_node *n = ewb_record(op, normalize_backward, 1, ins, res);
    if (n) {
        ewb_save(n, 0, ac);
        n->iarg[0] = d;
        n->farg[0] = eps;
    }
    ewb_tensor_free(ac);
    return ewb_finish(op, res, 0, out);
}
