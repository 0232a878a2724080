/* reduce.c: reductions of f32 tensors, forward and backward: sum, mean,
 * var, std over a set of dims; max, min (values and i64 indices), argmax and
 * logsumexp over one dim.
 *
 * Every reduction sees its input as a contiguous (O, R, I) array and reduces
 * the middle axis: O and I are the kept dims before and after the reduced
 * ones. That is the input itself when the reduced dims are adjacent (always
 * so for one dim); otherwise the kept dims are permuted to the front and the
 * input copied, giving (K, R, 1), and backwards map their gradient back
 * through the same permutation. Sums accumulate in double (8 independent
 * lanes per row, and fixed-size chunks summed in order for one long row), so
 * results do not depend on the thread count and a sum of 1e6 floats is exact
 * to float rounding. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

enum { PAR_MIN = 1 << 15, BIG_CHUNK = 1 << 15, COLS = 2048 };

/* ---------------- the (O, R, I) plan ---------------- */
typedef struct {
    int nd;                       /* input dims */
    int block;                    /* reduced dims are adjacent: layout is the input's own */
    int perm[EWB_MAX_DIMS];       /* when !block: kept dims, then reduced dims */
    int64_t O, R, I;
    int out_nd;
    int64_t out_shape[EWB_MAX_DIMS];
} rplan;

/* dims == NULL or ndims == 0: all dims. A 0-d input takes dim 0 or -1. */
static int plan_make(const char *op, const ewb_tensor *a, int ndims, const int *dims, int keepdim, rplan *p) {
    int nd = a->ndim, red[EWB_MAX_DIMS] = {0};
    memset(p, 0, sizeof *p);
    p->nd = nd;
    if (ndims < 0 || ndims > EWB_MAX_DIMS) return ewb_error("%s: %d dims given, at most %d", op, ndims, EWB_MAX_DIMS);
    if (!dims || ndims == 0) {
        for (int i = 0; i < nd; i++) red[i] = 1;
    } else {
        for (int k = 0; k < ndims; k++) {
            int range = nd ? nd : 1, d = dims[k] < 0 ? dims[k] + range : dims[k];
            if (d < 0 || d >= range) return ewb_error("%s: dim %d out of range for %s", op, dims[k], ewb_s(a));
            if (nd == 0) continue;
            if (red[d]) return ewb_error("%s: dim %d appears twice in the dims to reduce of %s", op, dims[k], ewb_s(a));
            red[d] = 1;
        }
    }
    int lo = nd, hi = -1, k = 0;
    for (int i = 0; i < nd; i++)
        if (red[i]) { if (lo == nd) lo = i; hi = i; }
    p->block = 1;
    for (int i = lo; i <= hi; i++) p->block &= red[i];
    p->O = p->R = p->I = 1;
    for (int i = 0; i < nd; i++) {
        if (red[i]) p->R *= a->shape[i];
        else if (p->block && i > hi) p->I *= a->shape[i];
        else p->O *= a->shape[i];
        if (!red[i]) p->perm[k++] = i;
    }
    for (int i = 0; i < nd; i++) if (red[i]) p->perm[k++] = i;
    for (int i = 0; i < nd; i++) {
        if (!red[i]) p->out_shape[p->out_nd++] = a->shape[i];
        else if (keepdim) p->out_shape[p->out_nd++] = 1;
    }
    return 0;
}

/* shape of t with the plan's permutation applied (a view, no copy) */
static ewb_tensor *permuted(const rplan *p, const ewb_tensor *t) {
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    for (int i = 0; i < p->nd; i++) {
        v->shape[i] = t->shape[p->perm[i]];
        v->stride[i] = t->stride[p->perm[i]];
    }
    return v;
}

/* the input as contiguous (O, R, I) data (new reference) */
static ewb_tensor *plan_input(const rplan *p, ewb_tensor *a) {
    if (p->block) return ewb_contig_or_self(a);
    ewb_tensor *v = permuted(p, a);
    if (!v) return NULL;
    ewb_tensor *c = ewb_contig_or_self(v);
    ewb_tensor_free(v);
    return c;
}

/* Backward helper: returns a zeroed or live (O, R, I) buffer to accumulate
   the input gradient into: ga itself when the layout is the input's own,
   else a temporary that plan_grad_done adds back through the permutation. */
static ewb_tensor *plan_grad_begin(const rplan *p, ewb_tensor *ga) {
    if (p->block) { ewb_tensor_retain(ga); return ga; }
    ewb_tensor *v = permuted(p, ga);
    if (!v) return NULL;
    ewb_tensor *t = ewb_zeros_like(v);
    ewb_tensor_free(v);
    return t;
}
static int plan_grad_done(const rplan *p, ewb_tensor *ga, ewb_tensor *buf) {
    int rc = 0;
    if (!p->block) {
        ewb_tensor *v = permuted(p, ga);
        rc = v ? ewb_add_(v, buf, 1.0) : -1;
        ewb_tensor_free(v);
    }
    ewb_tensor_free(buf);
    return rc;
}

static rplan *plan_copy(const rplan *p) {
    rplan *c = malloc(sizeof *c);
    if (c) *c = *p;
    return c;
}

/* ---------------- sums ---------------- */
/* 8 independent double lanes: vectorisable and accurate */
static double sum_lanes(const float *x, int64_t n) {
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    double s = 0;
    for (; i < n; i++) s += x[i];
    return s + ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* one long row: fixed chunks in parallel, their sums added in order */
static double sum_long(const float *x, int64_t n) {
    int64_t nc = (n + BIG_CHUNK - 1) / BIG_CHUNK;
    if (nc <= 1) return sum_lanes(x, n);
    double *part = malloc(sizeof(double) * (size_t)nc);
    if (!part) return sum_lanes(x, n);
    #pragma omp parallel for
    for (int64_t c = 0; c < nc; c++) {
        int64_t len = n - c * BIG_CHUNK < BIG_CHUNK ? n - c * BIG_CHUNK : BIG_CHUNK;
        part[c] = sum_lanes(x + c * BIG_CHUNK, len);
    }
    double s = 0;
    for (int64_t c = 0; c < nc; c++) s += part[c];
    free(part);
    return s;
}

/* out (O, I) = scale * sum over r of x (O, R, I) */
static void sum_ori(const float *x, int64_t O, int64_t R, int64_t I, double scale, float *out) {
    if (I == 1) {
        if (O == 1) { out[0] = (float)(sum_long(x, R) * scale); return; }
        #pragma omp parallel for if (O * R > PAR_MIN)
        for (int64_t o = 0; o < O; o++) out[o] = (float)(sum_lanes(x + o * R, R) * scale);
        return;
    }
    /* blocks of columns, wide enough that each thread reads long runs of a row */
    int64_t w = (I + ewb_num_threads() - 1) / ewb_num_threads();
    w = w < 256 ? 256 : w > COLS ? COLS : (w + 63) / 64 * 64;
    int64_t nb = (I + w - 1) / w;
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * nb; t++) { /* a block of up to w columns of one o */
        int64_t o = t / nb, i0 = t % nb * w, len = I - i0 < w ? I - i0 : w;
        double acc[COLS];
        for (int64_t i = 0; i < len; i++) acc[i] = 0;
        for (int64_t r = 0; r < R; r++) {
            const float *row = x + (o * R + r) * I + i0;
            #pragma omp simd
            for (int64_t i = 0; i < len; i++) acc[i] += row[i];
        }
        for (int64_t i = 0; i < len; i++) out[o * I + i0 + i] = (float)(acc[i] * scale);
    }
}

/* dst (O, R, I) += scale * g (O, I) broadcast over r */
static void expand_acc(float *dst, const float *g, int64_t O, int64_t R, int64_t I, float scale) {
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * R; t++) {
        int64_t o = t / R;
        float *d = dst + t * I;
        const float *gp = g + o * I;
        #pragma omp simd
        for (int64_t i = 0; i < I; i++) d[i] += scale * gp[i];
    }
}

static int sum_backward(ewb_node *n) { /* ctx = plan, farg[0] = scale */
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (!ga) return 0;
    const rplan *p = n->ctx;
    ewb_tensor *buf = plan_grad_begin(p, ga);
    if (!buf) return -1;
    expand_acc(ewb_f32(buf), ewb_f32(n->gout), p->O, p->R, p->I, (float)n->farg[0]);
    return plan_grad_done(p, ga, buf);
}

static int sum_mean(const char *name, int mean, ewb_tensor *a, int ndims, const int *dims, int keepdim, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32(name, a));
    rplan p;
    EWB_TRY(plan_make(name, a, ndims, dims, keepdim, &p));
    ewb_tensor *x = plan_input(&p, a), *o = ewb_empty(EWB_DTYPE_F32, p.out_nd, p.out_shape);
    if (!x || !o) { ewb_tensor_free(x); ewb_tensor_free(o); return -1; }
    double scale = !mean ? 1.0 : p.R ? 1.0 / (double)p.R : NAN;
    sum_ori(ewb_f32(x), p.O, p.R, p.I, scale, ewb_f32(o));
    ewb_tensor_free(x);
    ewb_node *n = ewb_record(name, sum_backward, 1, &a, o);
    if (n) {
        n->ctx = plan_copy(&p);
        n->farg[0] = scale;
        if (!n->ctx) return ewb_finish(name, o, ewb_error("%s: out of memory", name), out);
    }
    return ewb_finish(name, o, 0, out);
}

int ewb_sum(ewb_tensor *a, int ndims, const int *dims, int keepdim, ewb_tensor **out) {
    return sum_mean("sum", 0, a, ndims, dims, keepdim, out);
}
int ewb_mean(ewb_tensor *a, int ndims, const int *dims, int keepdim, ewb_tensor **out) {
    return sum_mean("mean", 1, a, ndims, dims, keepdim, out);
}

/* ---------------- var, std ---------------- */
/* mean (O, I) and var (O, I) of x (O, R, I), two passes in double */
static void var_ori(const float *x, int64_t O, int64_t R, int64_t I, double denom, float *mean, float *var) {
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * I; t++) {
        int64_t o = t / I, i = t % I;
        const float *p = x + o * R * I + i;
        double s = 0, ss = 0;
        for (int64_t r = 0; r < R; r++) s += p[r * I];
        double m = s / (double)R;
        for (int64_t r = 0; r < R; r++) { double d = p[r * I] - m; ss += d * d; }
        mean[t] = (float)m;
        var[t] = (float)(ss / denom);
    }
}

/* saved: 0 = x as (O, R, I), 1 = mean (O, I), 2 = result (O, I); iarg[0] = is_std; farg[0] = denom */
static int var_backward(ewb_node *n) {
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (!ga) return 0;
    const rplan *p = n->ctx;
    int is_std = (int)n->iarg[0];
    double denom = n->farg[0];
    ewb_tensor *buf = plan_grad_begin(p, ga);
    if (!buf) return -1;
    const float *x = ewb_f32(n->saved[0]), *mean = ewb_f32(n->saved[1]), *res = ewb_f32(n->saved[2]), *g = ewb_f32(n->gout);
    float *d = ewb_f32(buf);
    int64_t O = p->O, R = p->R, I = p->I;
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * R; t++) {
        int64_t o = t / R;
        for (int64_t i = 0; i < I; i++) {
            int64_t k = o * I + i;
            /* d var / dx = 2 (x - mean) / denom; d std = d var / (2 std), 0 where std = 0 (as torch) */
            double gv = is_std ? (res[k] == 0 ? 0.0 : g[k] / (2.0 * res[k])) : g[k];
            d[t * I + i] += (float)(gv * 2.0 * (x[t * I + i] - mean[k]) / denom);
        }
    }
    return plan_grad_done(p, ga, buf);
}

static int var_std(const char *name, int is_std, ewb_tensor *a, int ndims, const int *dims, int correction,
                   int keepdim, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32(name, a));
    if (correction < 0) return ewb_error("%s: correction must be >= 0, got %d", name, correction);
    rplan p;
    EWB_TRY(plan_make(name, a, ndims, dims, keepdim, &p));
    ewb_tensor *x = plan_input(&p, a), *o = ewb_empty(EWB_DTYPE_F32, p.out_nd, p.out_shape);
    int64_t oi = p.O * p.I;
    ewb_tensor *mean = ewb_empty(EWB_DTYPE_F32, 1, &oi);
    if (!x || !o || !mean) { ewb_tensor_free(x); ewb_tensor_free(o); ewb_tensor_free(mean); return -1; }
    /* as torch: R - correction <= 0 gives inf or NaN */
    double denom = p.R - correction > 0 ? (double)(p.R - correction) : 0.0;
    float *po = ewb_f32(o);
    var_ori(ewb_f32(x), p.O, p.R, p.I, denom, ewb_f32(mean), po);
    if (is_std)
        for (int64_t k = 0; k < oi; k++) po[k] = sqrtf(po[k]);
    ewb_node *n = ewb_record(name, var_backward, 1, &a, o);
    int rc = 0;
    if (n) {
        ewb_save(n, 0, x);
        ewb_save(n, 1, mean);
        ewb_save(n, 2, o);
        n->iarg[0] = is_std;
        n->farg[0] = denom;
        n->ctx = plan_copy(&p);
        if (!n->ctx) rc = ewb_error("%s: out of memory", name);
    }
    ewb_tensor_free(x);
    ewb_tensor_free(mean);
    return ewb_finish(name, o, rc, out);
}

int ewb_var(ewb_tensor *a, int ndims, const int *dims, int correction, int keepdim, ewb_tensor **out) {
    return var_std("var", 0, a, ndims, dims, correction, keepdim, out);
}
int ewb_std(ewb_tensor *a, int ndims, const int *dims, int correction, int keepdim, ewb_tensor **out) {
    return var_std("std", 1, a, ndims, dims, correction, keepdim, out);
}

/* ---------------- max, min, argmax over one dim ---------------- */
/* values (O, I) and indices (O, I) of x (O, R, I); NaN wins, then the first extreme */
static void argext_ori(const float *x, int64_t O, int64_t R, int64_t I, int is_min, float *val, int64_t *idx) {
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * I; t++) {
        int64_t o = t / I, i = t % I;
        const float *p = x + o * R * I + i;
        float best = p[0];
        int64_t bi = 0;
        for (int64_t r = 1; r < R && best == best; r++) {
            float v = p[r * I];
            if (v != v || (is_min ? v < best : v > best)) { best = v; bi = r; }
        }
        if (val) val[t] = best;
        idx[t] = bi;
    }
}

static int max_backward(ewb_node *n) { /* saved[0] = indices (O, I); ctx = plan */
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (!ga) return 0;
    const rplan *p = n->ctx;
    const int64_t *idx = ewb_tensor_data(n->saved[0]);
    const float *g = ewb_f32(n->gout);
    float *d = ewb_f32(ga); /* one dim: always the input's own layout */
    int64_t O = p->O, R = p->R, I = p->I;
    for (int64_t t = 0; t < O * I; t++) {
        int64_t o = t / I, i = t % I;
        d[(o * R + idx[t]) * I + i] += g[t];
    }
    return 0;
}

static int one_dim_plan(const char *op, ewb_tensor *a, int dim, int keepdim, rplan *p) {
    EWB_TRY(ewb_check_f32(op, a));
    EWB_TRY(plan_make(op, a, 1, &dim, keepdim, p));
    if (p->R == 0) return ewb_error("%s: cannot reduce over dim %d of size 0 of %s", op, dim, ewb_s(a));
    return 0;
}

static int max_min(const char *name, int is_min, ewb_tensor *a, int dim, int keepdim, ewb_tensor **values,
                   ewb_tensor **indices) {
    rplan p;
    EWB_TRY(one_dim_plan(name, a, dim, keepdim, &p));
    ewb_tensor *x = plan_input(&p, a), *v = ewb_empty(EWB_DTYPE_F32, p.out_nd, p.out_shape),
               *ix = ewb_empty(EWB_DTYPE_I64, p.out_nd, p.out_shape);
    if (!x || !v || !ix) { ewb_tensor_free(x); ewb_tensor_free(v); ewb_tensor_free(ix); return -1; }
    argext_ori(ewb_f32(x), p.O, p.R, p.I, is_min, ewb_f32(v), ewb_tensor_data(ix));
    ewb_tensor_free(x);
    ewb_node *n = ewb_record(name, max_backward, 1, &a, v);
    int rc = 0;
    if (n) {
        ewb_save(n, 0, ix);
        n->ctx = plan_copy(&p);
        if (!n->ctx) rc = ewb_error("%s: out of memory", name);
    }
    if (ewb_finish(name, v, rc, values) != 0) { ewb_tensor_free(ix); return -1; }
    *indices = ix;
    return 0;
}

int ewb_max(ewb_tensor *a, int dim, int keepdim, ewb_tensor **values, ewb_tensor **indices) {
    return max_min("max", 0, a, dim, keepdim, values, indices);
}
int ewb_min(ewb_tensor *a, int dim, int keepdim, ewb_tensor **values, ewb_tensor **indices) {
    return max_min("min", 1, a, dim, keepdim, values, indices);
}

int ewb_argmax(ewb_tensor *a, int dim, int keepdim, ewb_tensor **out) {
    rplan p;
    EWB_TRY(one_dim_plan("argmax", a, dim, keepdim, &p));
    ewb_tensor *x = plan_input(&p, a), *ix = ewb_empty(EWB_DTYPE_I64, p.out_nd, p.out_shape);
    if (!x || !ix) { ewb_tensor_free(x); ewb_tensor_free(ix); return -1; }
    argext_ori(ewb_f32(x), p.O, p.R, p.I, 0, NULL, ewb_tensor_data(ix));
    ewb_tensor_free(x);
    return ewb_finish("argmax", ix, 0, out);
}

/* ---------------- logsumexp over one dim ---------------- */
/* out (O, I) = m + log sum_r exp(x - m), m the max (taken as 0 when infinite, as torch) */
static void lse_ori(const float *x, int64_t O, int64_t R, int64_t I, float *out) {
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * I; t++) {
        int64_t o = t / I, i = t % I;
        const float *p = x + o * R * I + i;
        float m = -INFINITY;
        for (int64_t r = 0; r < R; r++) if (p[r * I] > m) m = p[r * I];
        if (isinf(m)) m = 0;
        double s = 0;
        for (int64_t r = 0; r < R; r++) s += exp((double)p[r * I] - m);
        out[t] = (float)(log(s) + m);
    }
}

static int lse_backward(ewb_node *n) { /* saved: 0 = x (O, R, I), 1 = result (O, I); ctx = plan */
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (!ga) return 0;
    const rplan *p = n->ctx;
    const float *x = ewb_f32(n->saved[0]), *res = ewb_f32(n->saved[1]), *g = ewb_f32(n->gout);
    float *d = ewb_f32(ga);
    int64_t O = p->O, R = p->R, I = p->I;
    #pragma omp parallel for if (O * R * I > PAR_MIN)
    for (int64_t t = 0; t < O * R; t++) {
        int64_t o = t / R;
        for (int64_t i = 0; i < I; i++) d[t * I + i] += g[o * I + i] * expf(x[t * I + i] - res[o * I + i]);
    }
    return 0;
}

int ewb_logsumexp(ewb_tensor *a, int dim, int keepdim, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("logsumexp", a));
    rplan p;
    EWB_TRY(plan_make("logsumexp", a, 1, &dim, keepdim, &p));
    ewb_tensor *x = plan_input(&p, a), *o = ewb_empty(EWB_DTYPE_F32, p.out_nd, p.out_shape);
    if (!x || !o) { ewb_tensor_free(x); ewb_tensor_free(o); return -1; }
    lse_ori(ewb_f32(x), p.O, p.R, p.I, ewb_f32(o));
    ewb_node *n = ewb_record("logsumexp", lse_backward, 1, &a, o);
    int rc = 0;
    if (n) {
        ewb_save(n, 0, x);
        ewb_save(n, 1, o);
        n->ctx = plan_copy(&p);
        if (!n->ctx) rc = ewb_error("logsumexp: out of memory");
    }
    ewb_tensor_free(x);
    return ewb_finish("logsumexp", o, rc, out);
}
