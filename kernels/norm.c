/* norm.c: layer, group and RMS normalisation, forward and backward.
 *
 * layer_norm runs on oneDNN's layer_normalization primitive over x viewed
 * as (N, C) rows, with the separate scale and shift flags of oneDNN 2.6 so
 * that weight and bias are each optional; the forward's mean and variance
 * are saved for the backward primitive. oneDNN 2.6 has no group or RMS
 * normalisation, so those are plain C loops (statistics in double).
 * ewb_layer_norm_ref (norm.h) is the naive twin used by tests.
 * At most LN_SMALL_ROWS rows (a decode step with the KV cache: batch x 1
 * token) skip oneDNN for a plain loop (statistics in double), whose cost is
 * a few hundred ns against several us of oneDNN's per-call overhead; it
 * saves the same mean and variance, so the backward is the same primitive.
 *
 * With x̂ = (x - mean) * rstd and ĝ = dy * w (per element), every backward
 * here is  dx = rstd * (ĝ - mean(ĝ) - x̂ * mean(ĝ x̂))  over the normalised
 * set (RMS norm has no mean term), dw = Σ dy x̂, db = Σ dy. */
#include "norm.h"
#include "dnnl.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* w and b of shape (C) or NULL */
static int check_affine(const char *op, const ewb_tensor *x, const ewb_tensor *w, const ewb_tensor *b, int64_t C) {
    if (w) {
        EWB_TRY(ewb_check_f32(op, w));
        if (w->ndim != 1 || w->shape[0] != C)
            return ewb_error("%s: weight %s does not match the %lld features of input %s", op, ewb_s(w), (long long)C, ewb_s(x));
    }
    if (b) {
        EWB_TRY(ewb_check_f32(op, b));
        if (b->ndim != 1 || b->shape[0] != C)
            return ewb_error("%s: bias %s does not match the %lld features of input %s", op, ewb_s(b), (long long)C, ewb_s(x));
    }
    return 0;
}

/* x (..., C) with C >= 1 */
static int check_last(const char *op, const ewb_tensor *x, const ewb_tensor *w, const ewb_tensor *b) {
    EWB_TRY(ewb_check_f32(op, x));
    if (x->ndim < 1 || x->shape[x->ndim - 1] < 1)
        return ewb_error("%s: input must be (..., C) with C >= 1, got %s", op, ewb_s(x));
    return check_affine(op, x, w, b, x->shape[x->ndim - 1]);
}

/* ================= layer_norm (oneDNN) ================= */
static ewb_prim *ln_prim(int64_t N, int64_t C, unsigned flags, float eps, int backward) {
    ewb_key key = {.n = 0};
    ewb_key_str(&key, "layer_norm");
    ewb_key_int(&key, backward);
    ewb_key_int(&key, N);
    ewb_key_int(&key, C);
    ewb_key_int(&key, flags);
    ewb_key_add(&key, &eps, sizeof eps);
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (p) return p;
    ewb_prim *hint = NULL;
    if (backward && !(hint = ln_prim(N, C, flags, eps, 0))) return NULL;
    dnnl_memory_desc_t md;
    int64_t dims[2] = {N, C}, st[2] = {C, 1};
    if (ewb_dnnl_check(ewb_md_dims(&md, 2, dims, st), "layer_norm", "data md")) return NULL;
    dnnl_layer_normalization_desc_t d;
    dnnl_status_t s;
    if (!backward) {
        s = dnnl_layer_normalization_forward_desc_init(&d, dnnl_forward_training, &md, NULL, eps, flags);
    } else {
        dnnl_prop_kind_t prop = flags & (dnnl_use_scale | dnnl_use_shift) ? dnnl_backward : dnnl_backward_data;
        s = dnnl_layer_normalization_backward_desc_init(&d, prop, &md, &md, NULL, eps, flags);
    }
    if (ewb_dnnl_check(s, "layer_norm", backward ? "backward descriptor" : "forward descriptor")) return NULL;
    dnnl_primitive_attr_t attr = ewb_attr_new(0);
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &d, attr, ewb_dnnl_engine(), hint ? hint->pd : NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ewb_dnnl_check(s, "layer_norm", "primitive descriptor")) return NULL;
    return ewb_prim_put(key.buf, key.n, pd, "layer_norm");
}

/* saved: 0 x (N·C contiguous), 1 w or NULL, 2 mean (N), 3 variance (N), 4 b or NULL;
   iarg[0] flags, farg[0] eps */
static int layer_norm_backward(ewb_node *n) {
    ewb_tensor *x = n->saved[0], *w = n->saved[1], *mean = n->saved[2], *var = n->saved[3], *b = n->saved[4];
    ewb_tensor *dy = n->gout;
    ewb_tensor *gx = ewb_grad_slot(n, 0), *gw = ewb_grad_slot(n, 1), *gb = ewb_grad_slot(n, 2);
    unsigned flags = (unsigned)n->iarg[0];
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    if (N == 0 || (!gx && !gw && !gb)) return 0;
    ewb_tensor *tx = ewb_empty_like(x);                                                /* (..., C) */
    ewb_tensor *tw = flags & dnnl_use_scale ? ewb_empty(EWB_DTYPE_F32, 1, &C) : NULL; /* (C) */
    ewb_tensor *tb = flags & dnnl_use_shift ? ewb_empty(EWB_DTYPE_F32, 1, &C) : NULL; /* (C) */
    int rc = -1;
    ewb_prim *p = tx && (tw || !(flags & dnnl_use_scale)) && (tb || !(flags & dnnl_use_shift))
                      ? ln_prim(N, C, flags, (float)n->farg[0], 1) : NULL;
    if (p) {
        int kinds[9] = {DNNL_ARG_SRC, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        void *ptrs[9] = {ewb_tensor_data(x), ewb_tensor_data(mean), ewb_tensor_data(var), ewb_tensor_data(dy),
                         ewb_tensor_data(tx)};
        int k = 5;
        if (tw) {
            kinds[k] = DNNL_ARG_SCALE; ptrs[k++] = ewb_tensor_data(w);
            kinds[k] = DNNL_ARG_DIFF_SCALE; ptrs[k++] = ewb_tensor_data(tw);
        }
        if (tb) { /* oneDNN wants the shift as an input here too, although dx does not depend on it */
            kinds[k] = DNNL_ARG_SHIFT; ptrs[k++] = ewb_tensor_data(b);
            kinds[k] = DNNL_ARG_DIFF_SHIFT; ptrs[k++] = ewb_tensor_data(tb);
        }
        rc = ewb_prim_exec(p, "layer_norm", k, kinds, ptrs);
    }
    if (rc == 0 && gx) rc = ewb_add_(gx, tx, 1.0);
    if (rc == 0 && gw) rc = ewb_add_(gw, tw, 1.0);
    if (rc == 0 && gb) rc = ewb_add_(gb, tb, 1.0);
    ewb_tensor_free(tx);
    ewb_tensor_free(tw);
    ewb_tensor_free(tb);
    return rc;
}

enum { LN_SMALL_ROWS = 4 };

/* the small-N forward: y (N, C) = (x - mean) * rstd * w + b row by row;
   mean and var (N) as oneDNN's forward_training gives them */
static void ln_rows(const float *x, const float *w, const float *b, float *y, float *mean, float *var, int64_t N,
                    int64_t C, double eps) {
    for (int64_t r = 0; r < N; r++) {
        const float *xr = x + r * C;   // (C)
        float *yr = y + r * C;         // (C)
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += xr[c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        v /= (double)C;
        float mf = (float)m, rs = (float)(1.0 / sqrt(v + eps));
        for (int64_t c = 0; c < C; c++) {
            float h = (xr[c] - mf) * rs;
            yr[c] = (w ? h * w[c] : h) + (b ? b[c] : 0.0f);
        }
        mean[r] = mf;
        var[r] = (float)v;
    }
}

int ewb_layer_norm(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **out) {
    EWB_TRY(check_last("layer_norm", x, w, b));
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    unsigned flags = (w ? dnnl_use_scale : 0) | (b ? dnnl_use_shift : 0);
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);          /* (..., C) */
    ewb_tensor *mean = ewb_empty(EWB_DTYPE_F32, 1, &N), *var = ewb_empty(EWB_DTYPE_F32, 1, &N); /* (N) */
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = w ? ewb_contig_or_self(w) : NULL, *bc = b ? ewb_contig_or_self(b) : NULL;
    int rc = y && mean && var && xc && (wc || !w) && (bc || !b) ? 0 : -1;
    if (rc == 0 && N > 0 && N <= LN_SMALL_ROWS) {
        ln_rows(ewb_f32(xc), wc ? ewb_f32(wc) : NULL, bc ? ewb_f32(bc) : NULL, ewb_f32(y), ewb_f32(mean), ewb_f32(var),
                N, C, (double)(float)eps);
    } else if (rc == 0 && N > 0) {
        ewb_prim *p = ln_prim(N, C, flags, (float)eps, 0);
        int kinds[6] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_MEAN, DNNL_ARG_VARIANCE};
        void *ptrs[6] = {ewb_tensor_data(xc), ewb_tensor_data(y), ewb_tensor_data(mean), ewb_tensor_data(var)};
        int k = 4;
        if (wc) { kinds[k] = DNNL_ARG_SCALE; ptrs[k++] = ewb_tensor_data(wc); }
        if (bc) { kinds[k] = DNNL_ARG_SHIFT; ptrs[k++] = ewb_tensor_data(bc); }
        rc = p ? ewb_prim_exec(p, "layer_norm", k, kinds, ptrs) : -1;
    }
    ewb_tensor *ins[3] = {x, w, b};
    ewb_node *n = rc || !y ? NULL : ewb_record("layer_norm", layer_norm_backward, 3, ins, y);
    if (n) {
        ewb_save(n, 0, xc);
        ewb_save(n, 1, wc);
        ewb_save(n, 2, mean);
        ewb_save(n, 3, var);
        ewb_save(n, 4, bc);
        n->iarg[0] = flags;
        n->farg[0] = eps;
    }
    ewb_tensor_free(mean);
    ewb_tensor_free(var);
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    ewb_tensor_free(bc);
    if (!y) return -1;
    return ewb_finish("layer_norm", y, rc, out);
}

/* ---- naive twin: double-precision loops, statistics recomputed ---- */
static double *row_stats(const float *x, int64_t N, int64_t C, double eps) { /* (N, 2): mean, rstd */
    double *st = malloc(sizeof *st * (size_t)(2 * N + 1));
    if (!st) return NULL;
    for (int64_t r = 0; r < N; r++) {
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) m += x[r * C + c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) v += (x[r * C + c] - m) * (x[r * C + c] - m);
        st[2 * r] = m;
        st[2 * r + 1] = 1.0 / sqrt(v / (double)C + eps);
    }
    return st;
}

int ewb_layer_norm_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **out) {
    EWB_TRY(check_last("layer_norm_ref", x, w, b));
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    ewb_tensor *xc = ewb_contig_or_self(x), *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);
    double *st = xc ? row_stats(ewb_f32(xc), N, C, eps) : NULL;
    if (!st || !y) { ewb_tensor_free(xc); ewb_tensor_free(y); free(st); return ewb_error("layer_norm_ref: out of memory"); }
    const float *xp = ewb_f32(xc);
    float *yp = ewb_f32(y);
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < C; c++) {
            double v = (xp[r * C + c] - st[2 * r]) * st[2 * r + 1], wv = 1, bv = 0;
            if (w) ewb_tensor_get(w, &c, &wv);
            if (b) ewb_tensor_get(b, &c, &bv);
            yp[r * C + c] = (float)(v * wv + bv);
        }
    free(st);
    ewb_tensor_free(xc);
    *out = y;
    return 0;
}

int ewb_layer_norm_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, double eps, ewb_tensor *dx,
                                ewb_tensor *dw, ewb_tensor *db) {
    EWB_TRY(check_last("layer_norm_ref", x, w, NULL));
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    ewb_tensor *xc = ewb_contig_or_self(x), *dyc = ewb_contig_or_self(dy);
    ewb_tensor *tx = ewb_zeros_like(x);
    double *st = xc ? row_stats(ewb_f32(xc), N, C, eps) : NULL;
    double *sw = calloc((size_t)C, sizeof *sw), *sb = calloc((size_t)C, sizeof *sb), *g = calloc((size_t)C, sizeof *g);
    int rc = xc && dyc && tx && st && sw && sb && g ? 0 : ewb_error("layer_norm_ref: out of memory");
    for (int64_t r = 0; rc == 0 && r < N; r++) {
        const float *xr = ewb_f32(xc) + r * C, *dr = ewb_f32(dyc) + r * C;
        double m1 = 0, m2 = 0;
        for (int64_t c = 0; c < C; c++) {
            double wv = 1, xh = (xr[c] - st[2 * r]) * st[2 * r + 1];
            if (w) ewb_tensor_get(w, &c, &wv);
            g[c] = dr[c] * wv;
            m1 += g[c];
            m2 += g[c] * xh;
            sw[c] += dr[c] * xh;
            sb[c] += dr[c];
        }
        m1 /= (double)C;
        m2 /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double xh = (xr[c] - st[2 * r]) * st[2 * r + 1];
            ewb_f32(tx)[r * C + c] = (float)(st[2 * r + 1] * (g[c] - m1 - xh * m2));
        }
    }
    if (rc == 0 && dx) rc = ewb_add_(dx, tx, 1.0);
    for (int64_t c = 0; rc == 0 && c < C; c++) {
        if (dw) ewb_f32(dw)[c] += (float)sw[c];
        if (db) ewb_f32(db)[c] += (float)sb[c];
    }
    free(st); free(sw); free(sb); free(g);
    ewb_tensor_free(xc); ewb_tensor_free(dyc); ewb_tensor_free(tx);
    return rc;
}

/* ================= group_norm (plain C) ================= */
/* saved: 0 x (B,C,S) contiguous, 1 w or NULL; iarg[0] groups; ctx: (B·G, 2) doubles mean, rstd */
static int group_norm_backward(ewb_node *n) {
    ewb_tensor *x = n->saved[0], *w = n->saved[1];
    ewb_tensor *gx = ewb_grad_slot(n, 0), *gw = ewb_grad_slot(n, 1), *gb = ewb_grad_slot(n, 2);
    const double *st = n->ctx;
    if (ewb_tensor_numel(x) == 0) return 0;
    int64_t G = n->iarg[0], B = x->shape[0], C = x->shape[1], S = ewb_tensor_numel(x) / (B * C), cg = C / G;
    const float *xp = ewb_f32(x), *dyp = ewb_f32(n->gout), *wp = w ? ewb_f32(w) : NULL;
    int big = ewb_tensor_numel(x) > ewb_parallel_threshold();
    if (gx) {
        float *gp = ewb_f32(gx);
        #pragma omp parallel for if (big)
        for (int64_t bg = 0; bg < B * G; bg++) {
            int64_t base = bg * cg * S, c0 = bg % G * cg;
            double mean = st[2 * bg], rstd = st[2 * bg + 1], m1 = 0, m2 = 0, M = (double)(cg * S);
            for (int64_t c = 0; c < cg; c++)
                for (int64_t s = 0; s < S; s++) {
                    int64_t i = base + c * S + s;
                    double g = dyp[i] * (wp ? wp[c0 + c] : 1.0);
                    m1 += g;
                    m2 += g * (xp[i] - mean) * rstd;
                }
            m1 /= M;
            m2 /= M;
            for (int64_t c = 0; c < cg; c++)
                for (int64_t s = 0; s < S; s++) {
                    int64_t i = base + c * S + s;
                    double g = dyp[i] * (wp ? wp[c0 + c] : 1.0);
                    gp[i] += (float)(rstd * (g - m1 - (xp[i] - mean) * rstd * m2));
                }
        }
    }
    if (gw || gb) {
        float *gwp = gw ? ewb_f32(gw) : NULL, *gbp = gb ? ewb_f32(gb) : NULL;
        #pragma omp parallel for if (big)
        for (int64_t c = 0; c < C; c++) {
            double sw = 0, sb = 0;
            for (int64_t b = 0; b < B; b++) {
                int64_t bg = b * G + c / cg;
                for (int64_t s = 0; s < S; s++) {
                    int64_t i = (b * C + c) * S + s;
                    sw += dyp[i] * (xp[i] - st[2 * bg]) * st[2 * bg + 1];
                    sb += dyp[i];
                }
            }
            if (gwp) gwp[c] += (float)sw;
            if (gbp) gbp[c] += (float)sb;
        }
    }
    return 0;
}

int ewb_group_norm(ewb_tensor *x, int groups, ewb_tensor *w, ewb_tensor *b, double eps, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("group_norm", x));
    if (x->ndim < 2) return ewb_error("group_norm: input must be (B, C, ...), got %s", ewb_s(x));
    int64_t B = x->shape[0], C = x->shape[1], G = groups;
    if (G < 1 || C % G)
        return ewb_error("group_norm: groups %d does not divide the %lld channels of %s", groups, (long long)C, ewb_s(x));
    EWB_TRY(check_affine("group_norm", x, w, b, C));
    int64_t S = B > 0 && C > 0 ? ewb_tensor_numel(x) / (B * C) : 0, cg = C / G;
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape); /* (B, C, ...) */
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = w ? ewb_contig_or_self(w) : NULL, *bc = b ? ewb_contig_or_self(b) : NULL;
    double *st = malloc(sizeof *st * (size_t)(2 * B * G + 1)); /* (B·G, 2): mean, rstd */
    if (!y || !xc || (w && !wc) || (b && !bc) || !st) {
        ewb_tensor_free(y); ewb_tensor_free(xc); ewb_tensor_free(wc); ewb_tensor_free(bc); free(st);
        return ewb_error("group_norm: out of memory for %s", ewb_s(x));
    }
    const float *xp = ewb_f32(xc), *wp = wc ? ewb_f32(wc) : NULL, *bp = bc ? ewb_f32(bc) : NULL;
    float *yp = ewb_f32(y);
    #pragma omp parallel for if (ewb_tensor_numel(x) > ewb_parallel_threshold())
    for (int64_t bg = 0; bg < B * G; bg++) {
        int64_t base = bg * cg * S, c0 = bg % G * cg, M = cg * S;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < M; i++) mean += xp[base + i];
        mean = M ? mean / (double)M : 0;
        for (int64_t i = 0; i < M; i++) var += (xp[base + i] - mean) * (xp[base + i] - mean);
        double rstd = 1.0 / sqrt((M ? var / (double)M : 0) + eps);
        st[2 * bg] = mean;
        st[2 * bg + 1] = rstd;
        for (int64_t c = 0; c < cg; c++) {
            double sc = wp ? wp[c0 + c] : 1.0, sh = bp ? bp[c0 + c] : 0.0;
            for (int64_t s = 0; s < S; s++) {
                int64_t i = base + c * S + s;
                yp[i] = (float)((xp[i] - mean) * rstd * sc + sh);
            }
        }
    }
    ewb_tensor *ins[3] = {x, w, b};
    ewb_node *n = ewb_record("group_norm", group_norm_backward, 3, ins, y);
    if (n) {
        ewb_save(n, 0, xc);
        ewb_save(n, 1, wc);
        n->iarg[0] = G;
        n->ctx = st;
    } else {
        free(st);
    }
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    ewb_tensor_free(bc);
    return ewb_finish("group_norm", y, 0, out);
}

/* ================= rms_norm (plain C) ================= */
/* saved: 0 x (N, C) contiguous, 1 w or NULL; ctx: (N) doubles rstd */
static int rms_norm_backward(ewb_node *n) {
    ewb_tensor *x = n->saved[0], *w = n->saved[1];
    ewb_tensor *gx = ewb_grad_slot(n, 0), *gw = ewb_grad_slot(n, 1);
    const double *rs = n->ctx;
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    const float *xp = ewb_f32(x), *dyp = ewb_f32(n->gout), *wp = w ? ewb_f32(w) : NULL;
    int big = ewb_tensor_numel(x) > ewb_parallel_threshold();
    if (gx) {
        float *gp = ewb_f32(gx);
        #pragma omp parallel for if (big)
        for (int64_t r = 0; r < N; r++) {
            const float *xr = xp + r * C, *dr = dyp + r * C;
            double m = 0;
            for (int64_t c = 0; c < C; c++) m += dr[c] * (wp ? wp[c] : 1.0) * xr[c] * rs[r];
            m /= (double)C;
            for (int64_t c = 0; c < C; c++)
                gp[r * C + c] += (float)(rs[r] * (dr[c] * (wp ? wp[c] : 1.0) - xr[c] * rs[r] * m));
        }
    }
    if (gw) {
        float *gwp = ewb_f32(gw);
        #pragma omp parallel for if (big)
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t r = 0; r < N; r++) s += dyp[r * C + c] * xp[r * C + c] * rs[r];
            gwp[c] += (float)s;
        }
    }
    return 0;
}

int ewb_rms_norm(ewb_tensor *x, ewb_tensor *w, double eps, ewb_tensor **out) {
    EWB_TRY(check_last("rms_norm", x, w, NULL));
    int64_t C = x->shape[x->ndim - 1], N = ewb_tensor_numel(x) / C;
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape); /* (..., C) */
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = w ? ewb_contig_or_self(w) : NULL;
    double *rs = malloc(sizeof *rs * (size_t)(N + 1)); /* (N) */
    if (!y || !xc || (w && !wc) || !rs) {
        ewb_tensor_free(y); ewb_tensor_free(xc); ewb_tensor_free(wc); free(rs);
        return ewb_error("rms_norm: out of memory for %s", ewb_s(x));
    }
    const float *xp = ewb_f32(xc), *wp = wc ? ewb_f32(wc) : NULL;
    float *yp = ewb_f32(y);
    #pragma omp parallel for if (ewb_tensor_numel(x) > ewb_parallel_threshold())
    for (int64_t r = 0; r < N; r++) {
        double ms = 0;
        for (int64_t c = 0; c < C; c++) ms += (double)xp[r * C + c] * xp[r * C + c];
        rs[r] = 1.0 / sqrt(ms / (double)C + eps);
        for (int64_t c = 0; c < C; c++) yp[r * C + c] = (float)(xp[r * C + c] * rs[r] * (wp ? wp[c] : 1.0));
    }
    ewb_tensor *ins[2] = {x, w};
    ewb_node *n = ewb_record("rms_norm", rms_norm_backward, 2, ins, y);
    if (n) {
        ewb_save(n, 0, xc);
        ewb_save(n, 1, wc);
        n->ctx = rs;
    } else {
        free(rs);
    }
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    return ewb_finish("rms_norm", y, 0, out);
}
