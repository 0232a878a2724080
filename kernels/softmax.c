/* softmax.c: softmax and log_softmax over any dim, forward and backward, on
 * oneDNN 2.6's softmax_v2 primitive (algorithms softmax_accurate and
 * softmax_log) over the innermost dim, with oneDNN reorders moving the dim
 * there and back when it is not the last one; plus the naive twins of
 * softmax.h. The backward needs only the output y:
 *     softmax:      dx = y * (dy - Σ dy·y)
 *     log_softmax:  dx = dy - exp(y) * Σ dy
 * oneDNN computes it into a temporary that is added to the gradient. */
#include "softmax.h"
#include "dnnl.h"
#include <stdlib.h>
#include <string.h>

/* the problem as (outer, n, inner) around the softmax dim. oneDNN's fast
   softmax wants the axis innermost in memory; when inner > 1 the data is
   reordered to (outer, inner, n) and back (oneDNN's own code for other axes
   is its reference one, some 50x slower) */
typedef struct { int64_t is_log, outer, n, inner; } sm_geom;

static const char *sm_name(int is_log) { return is_log ? "log_softmax" : "softmax"; }

static int sm_setup(const char *op, ewb_tensor *x, int dim, int is_log, sm_geom *g) {
    EWB_TRY(ewb_check_f32(op, x));
    int nd = x->ndim ? x->ndim : 1, d = dim < 0 ? dim + nd : dim;
    if (d < 0 || d >= nd) return ewb_error("%s: dim %d out of range for %s", op, dim, ewb_s(x));
    g->is_log = is_log;
    g->outer = g->inner = 1;
    g->n = x->ndim ? x->shape[d] : 1;
    for (int i = 0; i < d; i++) g->outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++) g->inner *= x->shape[i];
    return 0;
}

static ewb_prim *finish_pd(const void *key, size_t keylen, const void *desc, ewb_prim *hint, const char *op) {
    dnnl_primitive_attr_t attr = ewb_attr_new(0);
    dnnl_primitive_desc_t pd;
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, desc, attr, ewb_dnnl_engine(), hint ? hint->pd : NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ewb_dnnl_check(s, op, "primitive descriptor")) return NULL;
    return ewb_prim_put(key, keylen, pd, op);
}

/* softmax over the last dim of a contiguous (outer·inner, n) */
static ewb_prim *sm_prim(const sm_geom *g, int backward) {
    const char *op = sm_name((int)g->is_log);
    ewb_key key = {.n = 0};
    ewb_key_str(&key, "softmax");
    ewb_key_int(&key, backward);
    ewb_key_add(&key, g, sizeof *g);
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (p) return p;
    ewb_prim *hint = NULL;
    if (backward && !(hint = sm_prim(g, 0))) return NULL;
    dnnl_memory_desc_t md;
    int64_t dims[2] = {g->outer * g->inner, g->n}, st[2] = {g->n, 1};
    if (ewb_dnnl_check(ewb_md_dims(&md, 2, dims, st), op, "data md")) return NULL;
    dnnl_alg_kind_t alg = g->is_log ? dnnl_softmax_log : dnnl_softmax_accurate;
    dnnl_softmax_v2_desc_t d;
    dnnl_status_t s = backward ? dnnl_softmax_v2_backward_desc_init(&d, alg, &md, &md, &md, 1)
                               : dnnl_softmax_v2_forward_desc_init(&d, dnnl_forward_training, alg, &md, &md, 1);
    if (ewb_dnnl_check(s, op, backward ? "backward descriptor" : "forward descriptor")) return NULL;
    return finish_pd(key.buf, key.n, &d, hint, op);
}

/* reorder (outer, n, inner) <-> (outer, inner, n), both contiguous;
   accumulate adds into the destination */
static ewb_prim *reorder_prim(const sm_geom *g, int back, int accumulate) {
    const char *op = sm_name((int)g->is_log);
    ewb_key key = {.n = 0};
    ewb_key_str(&key, "softmax_reorder");
    ewb_key_int(&key, back);
    ewb_key_int(&key, accumulate);
    ewb_key_add(&key, &g->outer, 3 * sizeof(int64_t));
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (p) return p;
    dnnl_memory_desc_t cmd, tmd;
    int64_t dims[3] = {g->outer, g->n, g->inner}, cs[3] = {g->n * g->inner, g->inner, 1}, ts[3] = {g->n * g->inner, 1, g->n};
    if (ewb_dnnl_check(ewb_md_dims(&cmd, 3, dims, cs), op, "reorder md")) return NULL;
    if (ewb_dnnl_check(ewb_md_dims(&tmd, 3, dims, ts), op, "reorder md")) return NULL;
    dnnl_primitive_attr_t attr = ewb_attr_new(accumulate);
    dnnl_primitive_desc_t pd;
    dnnl_engine_t e = ewb_dnnl_engine();
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&pd, back ? &tmd : &cmd, e, back ? &cmd : &tmd, e, attr);
    dnnl_primitive_attr_destroy(attr);
    if (ewb_dnnl_check(s, op, "reorder descriptor")) return NULL;
    return ewb_prim_put(key.buf, key.n, pd, op);
}

static int reorder(const sm_geom *g, int back, int accumulate, const ewb_tensor *from, ewb_tensor *to) {
    ewb_prim *p = reorder_prim(g, back, accumulate);
    int kinds[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    void *ptrs[2] = {ewb_tensor_data(from), ewb_tensor_data(to)};
    return p ? ewb_prim_exec(p, sm_name((int)g->is_log), 2, kinds, ptrs) : -1;
}

/* a fresh (outer, inner, n) buffer */
static ewb_tensor *axis_last(const sm_geom *g) {
    int64_t s[3] = {g->outer, g->inner, g->n};
    return ewb_empty(EWB_DTYPE_F32, 3, s);
}

/* saved[0] = y in (outer, inner, n) order; ctx = geom */
static int softmax_backward(ewb_node *n) {
    const sm_geom *g = n->ctx;
    const char *op = sm_name((int)g->is_log);
    ewb_tensor *yt = n->saved[0], *dy = n->gout, *gx = ewb_grad_slot(n, 0);
    if (!gx || ewb_tensor_numel(yt) == 0 || g->n == 1) return 0; /* constant output: zero gradient */
    int moved = g->inner > 1 && g->n > 1, rc = 0;
    ewb_tensor *dyt = moved ? axis_last(g) : dy, *dxt = moved ? axis_last(g) : ewb_empty_like(gx);
    if (!dyt || !dxt) rc = -1;
    if (rc == 0 && moved) rc = reorder(g, 0, 0, dy, dyt);
    if (rc == 0) {
        ewb_prim *p = sm_prim(g, 1);
        int kinds[3] = {DNNL_ARG_DST, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
        void *ptrs[3] = {ewb_tensor_data(yt), ewb_tensor_data(dyt), ewb_tensor_data(dxt)};
        rc = p ? ewb_prim_exec(p, op, 3, kinds, ptrs) : -1;
    }
    if (rc == 0) rc = moved ? reorder(g, 1, 1, dxt, gx) : ewb_add_(gx, dxt, 1.0);
    if (moved) ewb_tensor_free(dyt);
    ewb_tensor_free(dxt);
    return rc;
}

static int softmax_op(ewb_tensor *x, int dim, int is_log, ewb_tensor **out) {
    const char *op = sm_name(is_log);
    sm_geom g;
    EWB_TRY(sm_setup(op, x, dim, is_log, &g));
    int moved = g.inner > 1 && g.n > 1; /* with n = 1 both orders are the same memory */
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape), *xc = ewb_contig_or_self(x);
    ewb_tensor *xt = moved ? axis_last(&g) : NULL, *yt = moved ? axis_last(&g) : NULL; /* (outer, inner, n) */
    int rc = y && xc && (!moved || (xt && yt)) ? 0 : -1;
    if (rc == 0 && g.n == 1) {
        /* exactly 1 (or 0 for log): oneDNN's vectorised log would give 1.4e-6 */
        rc = ewb_fill_(y, is_log ? 0.0 : 1.0);
    } else if (rc == 0 && ewb_tensor_numel(x) > 0) {
        if (moved) rc = reorder(&g, 0, 0, xc, xt);
        ewb_prim *p = rc ? NULL : sm_prim(&g, 0);
        int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
        void *ptrs[2] = {ewb_tensor_data(moved ? xt : xc), ewb_tensor_data(moved ? yt : y)};
        rc = p ? ewb_prim_exec(p, op, 2, kinds, ptrs) : -1;
        if (rc == 0 && moved) rc = reorder(&g, 1, 0, yt, y);
    }
    ewb_node *n = rc || !y ? NULL : ewb_record(op, softmax_backward, 1, &x, y);
    if (n) {
        ewb_save(n, 0, moved ? yt : y);
        n->ctx = malloc(sizeof g);
        if (n->ctx) memcpy(n->ctx, &g, sizeof g);
        else rc = ewb_error("%s: out of memory", op);
    }
    ewb_tensor_free(xc);
    ewb_tensor_free(xt);
    ewb_tensor_free(yt);
    if (!y) return -1;
    return ewb_finish(op, y, rc, out);
}

int ewb_softmax(ewb_tensor *x, int dim, ewb_tensor **out) { return softmax_op(x, dim, 0, out); }
int ewb_log_softmax(ewb_tensor *x, int dim, ewb_tensor **out) { return softmax_op(x, dim, 1, out); }

/* ---------------- naive twins (tests only), on (outer, n, inner) ---------------- */
int ewb_softmax_ref(ewb_tensor *x, int dim, int is_log, ewb_tensor **out) {
    sm_geom g;
    EWB_TRY(sm_setup("softmax_ref", x, dim, is_log, &g));
    int64_t outer = g.outer, n = g.n, inner = g.inner;
    ewb_tensor *xc = ewb_contig_or_self(x), *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);
    if (!xc || !y) { ewb_tensor_free(xc); ewb_tensor_free(y); return -1; }
    const float *xp = ewb_f32(xc);
    float *yp = ewb_f32(y);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xr = xp + o * n * inner + i;
            float *yr = yp + o * n * inner + i;
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < n; k++) m = xr[k * inner] > m ? xr[k * inner] : m;
            for (int64_t k = 0; k < n; k++) s += exp(xr[k * inner] - m);
            for (int64_t k = 0; k < n; k++)
                yr[k * inner] = (float)(is_log ? xr[k * inner] - m - log(s) : exp(xr[k * inner] - m) / s);
        }
    ewb_tensor_free(xc);
    *out = y;
    return 0;
}

int ewb_softmax_ref_backward(ewb_tensor *y, ewb_tensor *dy, int dim, int is_log, ewb_tensor *dx) {
    sm_geom g;
    EWB_TRY(sm_setup("softmax_ref", y, dim, is_log, &g));
    int64_t outer = g.outer, n = g.n, inner = g.inner;
    ewb_tensor *yc = ewb_contig_or_self(y), *dyc = ewb_contig_or_self(dy), *t = ewb_empty_like(y);
    int rc = yc && dyc && t ? 0 : -1;
    for (int64_t o = 0; rc == 0 && o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * n * inner + i;
            const float *yr = ewb_f32(yc) + base, *gr = ewb_f32(dyc) + base;
            float *tr = ewb_f32(t) + base;
            double s = 0;
            for (int64_t k = 0; k < n; k++) s += is_log ? gr[k * inner] : (double)gr[k * inner] * yr[k * inner];
            for (int64_t k = 0; k < n; k++)
                tr[k * inner] = (float)(is_log ? gr[k * inner] - exp(yr[k * inner]) * s : yr[k * inner] * (gr[k * inner] - s));
        }
    if (rc == 0) rc = ewb_add_(dx, t, 1.0);
    ewb_tensor_free(yc);
    ewb_tensor_free(dyc);
    ewb_tensor_free(t);
    return rc;
}
