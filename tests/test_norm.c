/* test_norm.c: layer_norm, group_norm and rms_norm (kernels/norm.c).
 * layer_norm (oneDNN) is checked against its naive twin (kernels/norm.h),
 * forward and every gradient, with and without weight/bias and on a strided
 * input. group_norm is checked against layer_norm over the reshaped groups
 * (an independent path) plus the affine part computed here; rms_norm
 * against loops written here. Every differentiable input is gradchecked,
 * and bad arguments must fail with a clear message. */
#include "check.h"
#include "../kernels/norm.h"

static double grad_err(ewb_tensor *t, ewb_tensor *ref) {
    ewb_tensor *g = NULL;
    ewb_tensor_grad(t, &g);
    if (!g) return INFINITY;
    double e = max_rel_err(g, ref);
    ewb_tensor_free(g);
    return e;
}

/* a new leaf with t's values (t contiguous) */
static ewb_tensor *leaf_copy(ewb_tensor *t, int req) {
    ewb_tensor *c = NULL;
    ewb_tensor_from_data(&c, EWB_DTYPE_F32, t->ndim, t->shape, ewb_f32(t));
    if (req) ewb_tensor_set_requires_grad(c, 1);
    return c;
}

static void free_all(ewb_tensor **ts, int n) { for (int i = 0; i < n; i++) ewb_tensor_free(ts[i]); }

/* ---------------- layer_norm vs naive twin ---------------- */
static void layer_norm_vs_ref(const char *name, int ndim, const int64_t *shape, int use_w, int use_b, int strided) {
    int64_t C = shape[ndim - 1], cs[1] = {C};
    ewb_tensor *x, *xbase = NULL;
    if (strided) { /* x = a (..., C, A) tensor with its last two dims swapped */
        int64_t bs[EWB_MAX_DIMS];
        memcpy(bs, shape, sizeof(int64_t) * ndim);
        bs[ndim - 1] = shape[ndim - 2];
        bs[ndim - 2] = C;
        xbase = T_req(ndim, bs);
        OK(ewb_transpose(xbase, ndim - 2, ndim - 1, &x));
    } else {
        x = T_req(ndim, shape);
    }
    ewb_tensor *w = use_w ? T_req(1, cs) : NULL, *b = use_b ? T_req(1, cs) : NULL, *y = NULL, *yr = NULL;
    OK(ewb_layer_norm(x, w, b, 1e-5, &y));
    OK(ewb_layer_norm_ref(x, w, b, 1e-5, &yr));
    double e = y && yr ? max_rel_err(y, yr) : INFINITY;
    CHECK(e < 1e-5, "%s: forward error %g vs naive twin", name, e);
    if (y) {
        ewb_tensor *dy = T(y->ndim, y->shape);
        ewb_tensor *dx = ewb_zeros_like(x), *dw = w ? ewb_zeros_like(w) : NULL, *db = b ? ewb_zeros_like(b) : NULL;
        OK(ewb_backward(y, dy, 0));
        OK(ewb_layer_norm_ref_backward(x, w, dy, 1e-5, dx, dw, db));
        if (!strided) {
            e = grad_err(x, dx);
        } else {
            ewb_tensor *g = NULL, *gt = NULL;
            ewb_tensor_grad(xbase, &g);
            if (g) OK(ewb_transpose(g, ndim - 2, ndim - 1, &gt));
            e = gt ? max_rel_err(gt, dx) : INFINITY;
            ewb_tensor_free(g);
            ewb_tensor_free(gt);
        }
        CHECK(e < 1e-5, "%s: dx error %g vs naive twin", name, e);
        if (w) { e = grad_err(w, dw); CHECK(e < 1e-5, "%s: dw error %g vs naive twin", name, e); }
        if (b) { e = grad_err(b, db); CHECK(e < 1e-5, "%s: db error %g vs naive twin", name, e); }
        ewb_tensor *ts[] = {dy, dx, dw, db};
        free_all(ts, 4);
    }
    ewb_tensor *ts[] = {x, xbase, w, b, y, yr};
    free_all(ts, 6);
}

/* ---------------- gradchecks ---------------- */
static int gc_layer_norm(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_layer_norm(in[0], in[1], in[2], 1e-5, out); }
static int gc_group_norm(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_group_norm(in[0], *(int *)ud, in[1], in[2], 1e-5, out); }
static int gc_rms_norm(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_rms_norm(in[0], in[1], 1e-6, out); }

static void grad_checks(void) {
    int64_t xs[2] = {3, 6}, cs[1] = {6}, gs[3] = {2, 4, 5}, gcs[1] = {4};
    ewb_tensor *in[3] = {T_req(2, xs), T_req(1, cs), T_req(1, cs)};
    double e = gradcheck("layer_norm", gc_layer_norm, 3, in, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-2, "layer_norm gradcheck error %g", e);
    ewb_tensor_free(in[2]);
    in[2] = NULL;
    e = gradcheck("layer_norm (weight only)", gc_layer_norm, 3, in, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-2, "layer_norm (weight only) gradcheck error %g", e);
    e = gradcheck("rms_norm", gc_rms_norm, 2, in, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-2, "rms_norm gradcheck error %g", e);
    free_all(in, 3);
    int groups = 2;
    ewb_tensor *gin[3] = {T_req(3, gs), T_req(1, gcs), T_req(1, gcs)};
    e = gradcheck("group_norm", gc_group_norm, 3, gin, &groups, 1e-2, 1e-2);
    CHECK(e < 1e-2, "group_norm gradcheck error %g", e);
    free_all(gin, 3);
}

/* ---------------- group_norm vs layer_norm over the groups ---------------- */
static void group_norm_vs_layer_norm(int64_t B, int64_t C, int64_t S, int G, int affine) {
    int64_t xs[3] = {B, C, S}, cs[1] = {C}, flat[2] = {B * G, C / G * S};
    ewb_tensor *xa = T_req(3, xs), *xb = leaf_copy(xa, 1), *w = affine ? T_req(1, cs) : NULL, *b = affine ? T_req(1, cs) : NULL;
    ewb_tensor *y = NULL, *xv = NULL, *yl = NULL;
    OK(ewb_group_norm(xa, G, w, b, 1e-5, &y));
    OK(ewb_view(xb, 2, flat, &xv));
    OK(ewb_layer_norm(xv, NULL, NULL, 1e-5, &yl)); /* (B·G, C/G·S): plain normalised values */
    if (!y || !yl) { ewb_tensor *ts[] = {xa, xb, w, b, y, xv, yl}; free_all(ts, 7); return; }
    ewb_tensor *dy = T(3, xs), *want = ewb_empty_like(y), *dyl = ewb_empty_like(yl);
    ewb_tensor *dw = affine ? ewb_zeros_like(w) : NULL, *db = affine ? ewb_zeros_like(b) : NULL;
    const float *pl = ewb_f32(yl), *pd = ewb_f32(dy);
    for (int64_t bb = 0; bb < B; bb++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (bb * C + c) * S + s;
                float wc = affine ? ewb_f32(w)[c] : 1, bc = affine ? ewb_f32(b)[c] : 0;
                ewb_f32(want)[i] = pl[i] * wc + bc;
                ewb_f32(dyl)[i] = pd[i] * wc;
                if (affine) { ewb_f32(dw)[c] += pd[i] * pl[i]; ewb_f32(db)[c] += pd[i]; }
            }
    double e = max_rel_err(y, want);
    CHECK(e < 1e-5, "group_norm(B %lld, C %lld, S %lld, G %d): forward error %g vs layer_norm", (long long)B,
          (long long)C, (long long)S, G, e);
    OK(ewb_backward(y, dy, 0));
    OK(ewb_backward(yl, dyl, 0));
    ewb_tensor *gb = NULL;
    ewb_tensor_grad(xb, &gb);
    e = gb ? grad_err(xa, gb) : INFINITY;
    CHECK(e < 1e-5, "group_norm(G %d): dx error %g vs layer_norm", G, e);
    if (affine) {
        e = grad_err(w, dw);
        CHECK(e < 1e-5, "group_norm(G %d): dw error %g", G, e);
        e = grad_err(b, db);
        CHECK(e < 1e-5, "group_norm(G %d): db error %g", G, e);
    }
    ewb_tensor *ts[] = {xa, xb, w, b, y, xv, yl, dy, want, dyl, dw, db, gb};
    free_all(ts, 13);
}

/* ---------------- rms_norm vs loops ---------------- */
static void rms_norm_vs_loops(int64_t N, int64_t C, int use_w) {
    int64_t xs[2] = {N, C}, cs[1] = {C};
    ewb_tensor *x = T_req(2, xs), *w = use_w ? T_req(1, cs) : NULL, *y = NULL;
    OK(ewb_rms_norm(x, w, 1e-6, &y));
    if (!y) { ewb_tensor_free(x); ewb_tensor_free(w); return; }
    ewb_tensor *dy = T(2, xs), *want = ewb_empty_like(x), *dx = ewb_empty_like(x), *dw = use_w ? ewb_zeros_like(w) : NULL;
    const float *xp = ewb_f32(x), *gp = ewb_f32(dy);
    for (int64_t r = 0; r < N; r++) {
        double ms = 0, dot = 0;
        for (int64_t c = 0; c < C; c++) ms += (double)xp[r * C + c] * xp[r * C + c] / C;
        double rs = 1 / sqrt(ms + 1e-6);
        /* d/dx_j of x_c·rs·w_c = rs·w_c·δcj - x_c·w_c·rs³·x_j/C */
        for (int64_t c = 0; c < C; c++) dot += gp[r * C + c] * (w ? ewb_f32(w)[c] : 1) * xp[r * C + c];
        for (int64_t c = 0; c < C; c++) {
            double wc = w ? ewb_f32(w)[c] : 1;
            ewb_f32(want)[r * C + c] = (float)(xp[r * C + c] * rs * wc);
            ewb_f32(dx)[r * C + c] = (float)(rs * gp[r * C + c] * wc - rs * rs * rs * xp[r * C + c] * dot / C);
            if (w) ewb_f32(dw)[c] += (float)(gp[r * C + c] * xp[r * C + c] * rs);
        }
    }
    double e = max_rel_err(y, want);
    CHECK(e < 1e-5, "rms_norm(%lld, %lld): forward error %g", (long long)N, (long long)C, e);
    OK(ewb_backward(y, dy, 0));
    e = grad_err(x, dx);
    CHECK(e < 1e-5, "rms_norm(%lld, %lld): dx error %g", (long long)N, (long long)C, e);
    if (w) { e = grad_err(w, dw); CHECK(e < 1e-5, "rms_norm: dw error %g", e); }
    ewb_tensor *ts[] = {x, w, y, dy, want, dx, dw};
    free_all(ts, 7);
}

static void bad_inputs(void) {
    int64_t xs[3] = {2, 6, 5}, c5[1] = {5}, c4[1] = {4}, c6[1] = {6}, m2[2] = {5, 5};
    ewb_tensor *x = T(3, xs), *w5 = T(1, c5), *w4 = T(1, c4), *w6 = T(1, c6), *m = T(2, m2), *xi = NULL, *s = NULL, *y = NULL;
    ewb_tensor_new(&xi, EWB_DTYPE_I32, 3, xs);
    ewb_tensor_new(&s, EWB_DTYPE_F32, 0, xs);
    FAILS(ewb_layer_norm(x, w4, NULL, 1e-5, &y), "weight f32[4] does not match the 5 features");
    FAILS(ewb_layer_norm(x, w5, w4, 1e-5, &y), "bias f32[4] does not match");
    FAILS(ewb_layer_norm(x, m, NULL, 1e-5, &y), "weight f32[5,5]");
    FAILS(ewb_layer_norm(xi, NULL, NULL, 1e-5, &y), "expected an f32");
    FAILS(ewb_layer_norm(s, NULL, NULL, 1e-5, &y), "(..., C)");
    FAILS(ewb_layer_norm(NULL, NULL, NULL, 1e-5, &y), "nil");
    FAILS(ewb_rms_norm(x, w6, 1e-6, &y), "weight f32[6] does not match");
    FAILS(ewb_rms_norm(xi, NULL, 1e-6, &y), "expected an f32");
    FAILS(ewb_group_norm(x, 4, NULL, NULL, 1e-5, &y), "groups 4 does not divide the 6 channels");
    FAILS(ewb_group_norm(x, 0, NULL, NULL, 1e-5, &y), "groups 0");
    FAILS(ewb_group_norm(x, 3, w5, NULL, 1e-5, &y), "weight f32[5] does not match the 6");
    FAILS(ewb_group_norm(w5, 1, NULL, NULL, 1e-5, &y), "(B, C, ...)");
    FAILS(ewb_group_norm(xi, 1, NULL, NULL, 1e-5, &y), "expected an f32");
    CHECK(y == NULL, "no output on failure");
    ewb_tensor *ts[] = {x, w5, w4, w6, m, xi, s};
    free_all(ts, 7);
}

int main(void) {
    ewb_manual_seed(3);
    int64_t s1[2] = {5, 16}, s2[3] = {4, 7, 33}, s3[3] = {2, 3, 768}, s4[2] = {3, 1};
    layer_norm_vs_ref("layer_norm w,b", 2, s1, 1, 1, 0);
    layer_norm_vs_ref("layer_norm 3-d w,b", 3, s2, 1, 1, 0);
    layer_norm_vs_ref("layer_norm w", 3, s2, 1, 0, 0);
    layer_norm_vs_ref("layer_norm b", 3, s2, 0, 1, 0);
    layer_norm_vs_ref("layer_norm plain", 3, s2, 0, 0, 0);
    layer_norm_vs_ref("layer_norm 768", 3, s3, 1, 1, 0);
    layer_norm_vs_ref("layer_norm strided x", 3, s2, 1, 1, 1);
    layer_norm_vs_ref("layer_norm C = 1", 2, s4, 1, 1, 0);
    /* at most 4 rows take norm.c's plain loop instead of oneDNN */
    int64_t s5[3] = {1, 1, 384}, s6[2] = {4, 33}, s7[3] = {2, 1, 64};
    layer_norm_vs_ref("layer_norm 1 row", 3, s5, 1, 1, 0);
    layer_norm_vs_ref("layer_norm 4 rows strided x", 2, s6, 1, 1, 1);
    layer_norm_vs_ref("layer_norm 2 rows w", 3, s7, 1, 0, 0);
    layer_norm_vs_ref("layer_norm 2 rows b", 3, s7, 0, 1, 0);
    layer_norm_vs_ref("layer_norm 2 rows plain", 3, s7, 0, 0, 0);
    group_norm_vs_layer_norm(2, 6, 10, 3, 1);
    group_norm_vs_layer_norm(3, 8, 7, 1, 0);  /* one group: layer norm over (C, S) */
    group_norm_vs_layer_norm(2, 4, 9, 4, 1);  /* instance norm */
    group_norm_vs_layer_norm(2, 32, 128, 8, 1);
    rms_norm_vs_loops(4, 16, 1);
    rms_norm_vs_loops(3, 40, 0);
    grad_checks();
    bad_inputs();
    return check_report();
}
