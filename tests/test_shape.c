/* test_shape.c: cat, stack, pad, gather, index_select, where, masked_fill
 * (kernels/shape.c). Forwards against naive loops over ewb_tensor_get;
 * every differentiable input against finite differences; repeated indices
 * accumulating; bad input returning errors that name the op. */
#include "check.h"

static double get(const ewb_tensor *t, const int64_t *idx) {
    double v = NAN;
    ewb_tensor_get(t, idx, &v);
    return v;
}
static ewb_tensor *ids(int dtype, int ndim, const int64_t *shape, const int64_t *v) {
    ewb_tensor *t = NULL;
    ewb_tensor_new(&t, dtype, ndim, shape);
    int64_t n = ewb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (dtype == EWB_DTYPE_I64) ((int64_t *)ewb_tensor_data(t))[i] = v[i];
        else if (dtype == EWB_DTYPE_I32) ((int32_t *)ewb_tensor_data(t))[i] = (int32_t)v[i];
        else ((uint8_t *)ewb_tensor_data(t))[i] = (uint8_t)v[i];
    }
    return t;
}
/* the coordinates of flat index i in shape */
static void unravel(int ndim, const int64_t *shape, int64_t i, int64_t *c) {
    for (int k = ndim - 1; k >= 0; k--) { c[k] = i % shape[k]; i /= shape[k]; }
}
static int same_shape(const ewb_tensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++) if (t->shape[i] != shape[i]) return 0;
    return 1;
}
static ewb_tensor *strided(int64_t r, int64_t c) { /* an (r, c) f32 view with swapped strides */
    int64_t s[2] = {c, r};
    ewb_tensor *base = T(2, s), *v = NULL;
    ewb_transpose(base, 0, 1, &v);
    ewb_tensor_free(base);
    return v;
}

/* ================================================================ cat / stack */
static int gc_cat(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_cat(*(int *)ud, in, 1, out); }
static int gc_cat6(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_cat(6, in, 0, out); }
static int gc_stack(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_stack(3, in, *(int *)ud, out); }

/* naive cat along d: walk the output, find which input holds each element */
static void check_cat(int n, ewb_tensor **ts, int d, const ewb_tensor *o, const char *what) {
    int64_t c[EWB_MAX_DIMS];
    double worst = 0;
    for (int64_t i = 0; i < ewb_tensor_numel(o); i++) {
        unravel(o->ndim, o->shape, i, c);
        double want = NAN, got = get(o, c);
        int64_t pos = c[d];
        for (int k = 0; k < n; k++) {
            if (pos < ts[k]->shape[d]) { c[d] = pos; want = get(ts[k], c); break; }
            pos -= ts[k]->shape[d];
        }
        if (!(fabs(got - want) <= worst)) worst = fabs(got - want);
    }
    CHECK(worst == 0, "%s: cat differs from the naive loop by %g", what, worst);
}

static void test_cat(void) {
    int64_t s1[2] = {2, 3}, s2[2] = {2, 1}, s3[2] = {2, 4};
    ewb_tensor *in[6] = {T_req(2, s1), T_req(2, s2), T_req(2, s3)}, *o = NULL;
    OK(ewb_cat(3, in, 1, &o));
    int64_t want[2] = {2, 8};
    CHECK(same_shape(o, 2, want), "cat shape %s", ewb_s(o));
    check_cat(3, in, 1, o, "cat dim 1");
    CHECK(o->grad_fn && strcmp(ewb_tensor_grad_fn(o), "cat") == 0, "cat records a node");
    ewb_tensor_free(o);
    OK(ewb_cat(3, in, -1, &o)); /* negative dim */
    check_cat(3, in, 1, o, "cat dim -1");
    ewb_tensor_free(o);
    int n3 = 3;
    double e = gradcheck("cat", gc_cat, 3, in, &n3, 1e-2, 1e-3);
    CHECK(e < 1e-3, "cat gradcheck %g", e);

    /* strided inputs along dim 0, one without grad */
    ewb_tensor *a = strided(2, 3), *b = T(2, s1), *ab[2] = {a, b};
    OK(ewb_cat(2, ab, 0, &o));
    check_cat(2, ab, 0, o, "cat strided");
    ewb_tensor_free(o);

    /* six inputs needing grads: more than a node holds, so cat builds a tree */
    int64_t s6[2] = {1, 3};
    ewb_tensor *six[6];
    for (int i = 0; i < 6; i++) { s6[0] = 1 + i % 2; six[i] = T_req(2, s6); }
    OK(ewb_cat(6, six, 0, &o));
    check_cat(6, six, 0, o, "cat of 6");
    ewb_tensor_free(o);
    e = gradcheck("cat6", gc_cat6, 6, six, NULL, 1e-2, 1e-3);
    CHECK(e < 1e-3, "cat of 6 gradcheck %g", e);

    /* integer tensors are concatenated too */
    int64_t si[1] = {2}, v1[2] = {5, 6}, v2[2] = {-7, 8};
    ewb_tensor *ia = ids(EWB_DTYPE_I64, 1, si, v1), *ib = ids(EWB_DTYPE_I64, 1, si, v2), *iab[2] = {ia, ib};
    OK(ewb_cat(2, iab, 0, &o));
    int64_t got[4] = {0};
    ewb_tensor_copy_to(o, got, sizeof got);
    CHECK(got[0] == 5 && got[1] == 6 && got[2] == -7 && got[3] == 8, "i64 cat %lld %lld %lld %lld", (long long)got[0],
          (long long)got[1], (long long)got[2], (long long)got[3]);
    ewb_tensor_free(o);

    /* errors */
    FAILS(ewb_cat(3, in, 0, &o), "cat: tensor 1");          /* (2,1) vs (2,3) outside dim 0 */
    FAILS(ewb_cat(0, in, 0, &o), "cat: needs at least one");
    FAILS(ewb_cat(3, in, 2, &o), "cat: dim 2 out of range");
    ewb_tensor *mixed[2] = {in[0], ia};
    FAILS(ewb_cat(2, mixed, 0, &o), "dtypes must match");
    int64_t s3d[3] = {2, 3, 1};
    ewb_tensor *c3 = T(3, s3d), *nd[2] = {in[0], c3};
    FAILS(ewb_cat(2, nd, 0, &o), "cat: tensor 1");

    for (int i = 0; i < 3; i++) ewb_tensor_free(in[i]);
    for (int i = 0; i < 6; i++) ewb_tensor_free(six[i]);
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(ia); ewb_tensor_free(ib); ewb_tensor_free(c3);
}

static void test_stack(void) {
    int64_t s[2] = {2, 3};
    ewb_tensor *in[3] = {T_req(2, s), T_req(2, s), T_req(2, s)}, *o = NULL;
    for (int d = -3; d <= 2; d++) {
        OK(ewb_stack(3, in, d, &o));
        int dd = d < 0 ? d + 3 : d;
        int64_t want[3], k = 0;
        for (int i = 0; i < 3; i++) want[i] = i == dd ? 3 : s[k++];
        CHECK(same_shape(o, 3, want), "stack dim %d shape %s", d, ewb_s(o));
        int64_t c[3], ci[2];
        double worst = 0;
        for (int64_t i = 0; i < ewb_tensor_numel(o); i++) {
            unravel(3, o->shape, i, c);
            for (int j = 0, m = 0; j < 3; j++) if (j != dd) ci[m++] = c[j];
            double diff = fabs(get(o, c) - get(in[c[dd]], ci));
            if (!(diff <= worst)) worst = diff;
        }
        CHECK(worst == 0, "stack dim %d differs from the naive loop by %g", d, worst);
        ewb_tensor_free(o);
    }
    for (int d = 0; d <= 2; d++) {
        double e = gradcheck("stack", gc_stack, 3, in, &d, 1e-2, 1e-3);
        CHECK(e < 1e-3, "stack dim %d gradcheck %g", d, e);
    }
    int64_t s2[2] = {3, 2};
    ewb_tensor *bad = T(2, s2), *b2[2] = {in[0], bad};
    FAILS(ewb_stack(2, b2, 0, &o), "stack: tensor 1");
    FAILS(ewb_stack(3, in, 3, &o), "stack: dim 3 out of range");
    FAILS(ewb_stack(0, in, 0, &o), "stack: needs at least one");
    ewb_tensor_free(bad);
    for (int i = 0; i < 3; i++) ewb_tensor_free(in[i]);
}

/* ================================================================ pad */
typedef struct { int npairs; int64_t pads[6]; double value; } pad_args;
static int gc_pad(ewb_tensor **in, ewb_tensor **out, void *ud) {
    pad_args *p = ud;
    return ewb_pad(in[0], p->npairs, p->pads, p->value, out);
}

static void check_pad(ewb_tensor *x, pad_args *p, const char *what) {
    ewb_tensor *o = NULL;
    OK(ewb_pad(x, p->npairs, p->pads, p->value, &o));
    if (!o) return;
    int nd = x->ndim;
    int64_t lo[EWB_MAX_DIMS] = {0}, want[EWB_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int k = nd - 1 - i;
        int64_t plo = k < p->npairs ? p->pads[2 * k] : 0, phi = k < p->npairs ? p->pads[2 * k + 1] : 0;
        lo[i] = plo;
        want[i] = x->shape[i] + plo + phi;
    }
    CHECK(same_shape(o, nd, want), "%s: shape %s", what, ewb_s(o));
    int64_t c[EWB_MAX_DIMS], ci[EWB_MAX_DIMS];
    double worst = 0;
    for (int64_t i = 0; i < ewb_tensor_numel(o); i++) {
        unravel(nd, o->shape, i, c);
        int inside = 1;
        for (int k = 0; k < nd; k++) {
            ci[k] = c[k] - lo[k];
            inside &= ci[k] >= 0 && ci[k] < x->shape[k];
        }
        double w = inside ? get(x, ci) : p->value, diff = fabs(get(o, c) - w);
        if (!(diff <= worst)) worst = diff;
    }
    CHECK(worst == 0, "%s: differs from the naive loop by %g", what, worst);
    ewb_tensor_free(o);
}

static void test_pad(void) {
    int64_t s[3] = {2, 3, 4};
    ewb_tensor *x = T_req(3, s), *o = NULL;
    pad_args grow = {2, {1, 2, 0, 1}, 7.5};
    pad_args crop = {3, {-1, 2, 1, -2, 0, 0}, -1};
    pad_args last = {1, {3, 0}, 0};
    pad_args none = {0, {0}, 0};
    pad_args gone = {1, {-5, 2}, 3}; /* crops more than the dim: only padding is left */
    check_pad(x, &grow, "pad grow");
    check_pad(x, &crop, "pad crop");
    check_pad(x, &last, "pad last dim");
    check_pad(x, &none, "pad nothing");
    check_pad(x, &gone, "pad crop all");
    ewb_tensor *v = strided(3, 5);
    check_pad(v, &last, "pad strided");
    pad_args *all[4] = {&grow, &crop, &last, &gone};
    for (int i = 0; i < 4; i++) {
        double e = gradcheck("pad", gc_pad, 1, &x, all[i], 1e-2, 1e-3);
        CHECK(e < 1e-3, "pad case %d gradcheck %g", i, e);
    }
    /* integer pad keeps the dtype */
    int64_t si[1] = {2}, vv[2] = {4, 5};
    ewb_tensor *ii = ids(EWB_DTYPE_I32, 1, si, vv);
    OK(ewb_pad(ii, 1, (int64_t[]){1, 1}, -9, &o));
    int32_t got[4] = {0};
    ewb_tensor_copy_to(o, got, sizeof got);
    CHECK(o->dtype == EWB_DTYPE_I32 && got[0] == -9 && got[1] == 4 && got[2] == 5 && got[3] == -9, "i32 pad");
    ewb_tensor_free(o);

    FAILS(ewb_pad(x, 4, (int64_t[]){0, 0, 0, 0, 0, 0, 0, 0}, 0, &o), "pad: 4 (lo, hi) pairs");
    FAILS(ewb_pad(x, 1, (int64_t[]){-3, -2}, 0, &o), "negative");
    ewb_tensor_free(x); ewb_tensor_free(v); ewb_tensor_free(ii);
}

/* ================================================================ gather */
typedef struct { int dim; ewb_tensor *index; } idx_args;
static int gc_gather(ewb_tensor **in, ewb_tensor **out, void *ud) {
    idx_args *a = ud;
    return ewb_gather(in[0], a->dim, a->index, out);
}
static int gc_index_select(ewb_tensor **in, ewb_tensor **out, void *ud) {
    idx_args *a = ud;
    return ewb_index_select(in[0], a->dim, a->index, out);
}

static void check_gather(ewb_tensor *x, int d, ewb_tensor *index, const char *what) {
    ewb_tensor *o = NULL;
    OK(ewb_gather(x, d, index, &o));
    if (!o) return;
    if (d < 0) d += x->ndim;
    CHECK(same_shape(o, index->ndim, index->shape), "%s: shape %s", what, ewb_s(o));
    int64_t c[EWB_MAX_DIMS];
    double worst = 0;
    for (int64_t i = 0; i < ewb_tensor_numel(o); i++) {
        unravel(o->ndim, o->shape, i, c);
        double got = get(o, c);
        c[d] = (int64_t)get(index, c);
        double diff = fabs(got - get(x, c));
        if (!(diff <= worst)) worst = diff;
    }
    CHECK(worst == 0, "%s: differs from the naive loop by %g", what, worst);
    ewb_tensor_free(o);
}

static void test_gather(void) {
    int64_t s[2] = {3, 4};
    ewb_tensor *x = T_req(2, s), *o = NULL;
    int64_t si1[2] = {3, 5}, v1[15] = {0, 3, 3, 1, 2, 1, 1, 1, 0, 3, 2, 0, 3, 3, 3};
    ewb_tensor *i1 = ids(EWB_DTYPE_I64, 2, si1, v1);           /* dim 1, repeated ids */
    int64_t si0[2] = {2, 3}, v0[6] = {2, 0, 2, 2, 1, 2};
    ewb_tensor *i0 = ids(EWB_DTYPE_I32, 2, si0, v0);           /* dim 0, smaller than x in dim 1 */
    check_gather(x, 1, i1, "gather dim 1 i64");
    check_gather(x, 0, i0, "gather dim 0 i32");
    check_gather(x, -2, i0, "gather dim -2");
    ewb_tensor *v = strided(3, 4);
    check_gather(v, 1, i1, "gather strided");
    ewb_tensor *i1t = NULL; /* strided index */
    int64_t sT[2] = {5, 3}, vT[15];
    for (int i = 0; i < 15; i++) vT[i] = v1[(i % 3) * 5 + i / 3];
    ewb_tensor *i1base = ids(EWB_DTYPE_I64, 2, sT, vT);
    ewb_transpose(i1base, 0, 1, &i1t);
    check_gather(x, 1, i1t, "gather strided index");

    idx_args a1 = {1, i1}, a0 = {0, i0};
    double e = gradcheck("gather1", gc_gather, 1, &x, &a1, 1e-2, 1e-3);
    CHECK(e < 1e-3, "gather dim 1 gradcheck %g", e);
    e = gradcheck("gather0", gc_gather, 1, &x, &a0, 1e-2, 1e-3);
    CHECK(e < 1e-3, "gather dim 0 gradcheck %g", e);

    /* repeated ids accumulate: row 2 of i1 reads x[2][3] three times */
    ewb_tensor_set_grad(x, NULL);
    OK(ewb_gather(x, 1, i1, &o));
    ewb_tensor *ones = NULL;
    ewb_full(&ones, EWB_DTYPE_F32, 2, si1, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor *g = NULL;
    ewb_tensor_grad(x, &g);
    CHECK(g && get(g, (int64_t[]){2, 3}) == 3 && get(g, (int64_t[]){2, 1}) == 0 && get(g, (int64_t[]){1, 1}) == 3,
          "gather counts: %g %g %g", g ? get(g, (int64_t[]){2, 3}) : -1, g ? get(g, (int64_t[]){2, 1}) : -1,
          g ? get(g, (int64_t[]){1, 1}) : -1);
    ewb_tensor_free(g); ewb_tensor_free(o); ewb_tensor_free(ones);

    /* errors */
    int64_t bad_v[2] = {0, 4}, neg_v[2] = {-1, 0}, sb[2] = {1, 2};
    ewb_tensor *ib = ids(EWB_DTYPE_I64, 2, sb, bad_v), *in = ids(EWB_DTYPE_I64, 2, sb, neg_v);
    FAILS(ewb_gather(x, 1, ib, &o), "gather: index 4 is out of range for dim 1 (size 4)");
    FAILS(ewb_gather(x, 1, in, &o), "gather: index -1 is out of range");
    ewb_tensor *fi = T(2, sb);
    FAILS(ewb_gather(x, 1, fi, &o), "gather: index must be an i64 or i32 tensor");
    int64_t s1d[1] = {2};
    ewb_tensor *i1d = ids(EWB_DTYPE_I64, 1, s1d, bad_v);
    FAILS(ewb_gather(x, 0, i1d, &o), "as many dims");
    int64_t sbig[2] = {4, 1}, vbig[4] = {0};
    ewb_tensor *ibig = ids(EWB_DTYPE_I64, 2, sbig, vbig);
    FAILS(ewb_gather(x, 1, ibig, &o), "larger than the input");
    FAILS(ewb_gather(x, 2, i1, &o), "gather: dim 2 out of range");

    ewb_tensor_free(x); ewb_tensor_free(i1); ewb_tensor_free(i0); ewb_tensor_free(v); ewb_tensor_free(i1t);
    ewb_tensor_free(i1base); ewb_tensor_free(ib); ewb_tensor_free(in); ewb_tensor_free(fi); ewb_tensor_free(i1d);
    ewb_tensor_free(ibig);
}

/* ================================================================ index_select */
static void check_index_select(ewb_tensor *x, int d, ewb_tensor *index, const char *what) {
    ewb_tensor *o = NULL;
    OK(ewb_index_select(x, d, index, &o));
    if (!o) return;
    int dd = d < 0 ? d + x->ndim : d;
    int64_t want[EWB_MAX_DIMS];
    memcpy(want, x->shape, sizeof want);
    want[dd] = ewb_tensor_numel(index);
    CHECK(same_shape(o, x->ndim, want), "%s: shape %s", what, ewb_s(o));
    int64_t c[EWB_MAX_DIMS];
    double worst = 0;
    for (int64_t i = 0; i < ewb_tensor_numel(o); i++) {
        unravel(o->ndim, o->shape, i, c);
        double got = get(o, c);
        c[dd] = (int64_t)get(index, &c[dd]);
        double diff = fabs(got - get(x, c));
        if (!(diff <= worst)) worst = diff;
    }
    CHECK(worst == 0, "%s: differs from the naive loop by %g", what, worst);
    ewb_tensor_free(o);
}

static void test_index_select(void) {
    int64_t s[3] = {3, 4, 3};
    ewb_tensor *x = T_req(3, s), *o = NULL;
    int64_t sk[1] = {5}, v[5] = {2, 0, 2, 1, 2};
    ewb_tensor *i64 = ids(EWB_DTYPE_I64, 1, sk, v), *i32 = ids(EWB_DTYPE_I32, 1, sk, v);
    for (int d = 0; d < 3; d++) {
        char what[64];
        snprintf(what, sizeof what, "index_select dim %d", d);
        check_index_select(x, d, d == 1 ? i32 : i64, what);
        idx_args a = {d, d == 1 ? i32 : i64};
        double e = gradcheck(what, gc_index_select, 1, &x, &a, 1e-2, 1e-3);
        CHECK(e < 1e-3, "%s gradcheck %g", what, e);
    }
    check_index_select(x, -1, i64, "index_select dim -1");
    ewb_tensor *sv = strided(3, 4);
    check_index_select(sv, 0, i32, "index_select strided");
    check_index_select(sv, 1, i32, "index_select strided dim 1");

    /* repeated indices accumulate: d/dx sum(index_select(x, 0, [1,1,1,0])) */
    int64_t s2[2] = {3, 2}, sr[1] = {4}, vr[4] = {1, 1, 1, 0};
    ewb_tensor *y = T_req(2, s2), *ir = ids(EWB_DTYPE_I64, 1, sr, vr), *ones = NULL, *g = NULL;
    OK(ewb_index_select(y, 0, ir, &o));
    ewb_full(&ones, EWB_DTYPE_F32, 2, (int64_t[]){4, 2}, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(y, &g);
    float gv[6] = {0};
    if (g) ewb_tensor_copy_to(g, gv, sizeof gv);
    CHECK(gv[0] == 1 && gv[1] == 1 && gv[2] == 3 && gv[3] == 3 && gv[4] == 0 && gv[5] == 0,
          "index_select repeated grads %g %g %g %g %g %g", gv[0], gv[1], gv[2], gv[3], gv[4], gv[5]);
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(g);

    /* large enough for the parallel path */
    int64_t sl[2] = {40000, 3}, sli[1] = {3}, vli[3] = {2, 2, 0};
    ewb_tensor *xl = T_req(2, sl), *il = ids(EWB_DTYPE_I64, 1, sli, vli);
    OK(ewb_index_select(xl, 1, il, &o));
    OK(ewb_full(&ones, EWB_DTYPE_F32, 2, (int64_t[]){40000, 3}, 1.0));
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(xl, &g);
    int bad = 0;
    for (int64_t r = 0; g && r < 40000; r++)
        bad += get(g, (int64_t[]){r, 0}) != 1 || get(g, (int64_t[]){r, 1}) != 0 || get(g, (int64_t[]){r, 2}) != 2;
    CHECK(g && bad == 0, "index_select large backward: %d wrong rows", bad);
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(g);

    /* errors */
    int64_t vb[2] = {0, 3}, s2i[1] = {2};
    ewb_tensor *ib = ids(EWB_DTYPE_I64, 1, s2i, vb);
    FAILS(ewb_index_select(x, 0, ib, &o), "index_select: index 3 is out of range for dim 0 (size 3)");
    vb[1] = -2;
    ewb_tensor *ineg = ids(EWB_DTYPE_I32, 1, s2i, vb);
    FAILS(ewb_index_select(x, 0, ineg, &o), "index -2 is out of range");
    ewb_tensor *fi = T(1, s2i);
    FAILS(ewb_index_select(x, 0, fi, &o), "index_select: index must be an i64 or i32");
    ewb_tensor *i2 = ids(EWB_DTYPE_I64, 2, (int64_t[]){1, 2}, (int64_t[]){0, 0});
    FAILS(ewb_index_select(x, 0, i2, &o), "index must be 1-D");
    FAILS(ewb_index_select(x, 3, i64, &o), "index_select: dim 3 out of range");

    ewb_tensor_free(x); ewb_tensor_free(i64); ewb_tensor_free(i32); ewb_tensor_free(sv); ewb_tensor_free(y);
    ewb_tensor_free(ir); ewb_tensor_free(xl); ewb_tensor_free(il); ewb_tensor_free(ib); ewb_tensor_free(ineg);
    ewb_tensor_free(fi); ewb_tensor_free(i2);
}

/* ================================================================ where, masked_fill */
static int gc_where(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_where(ud, in[0], in[1], out); }
static int gc_masked_fill(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_masked_fill(in[0], ud, -3.0, out); }

static void test_where(void) {
    int64_t sc[2] = {3, 1}, sa[2] = {1, 4}, sb[2] = {3, 4}, vc[3] = {1, 0, 1};
    ewb_tensor *cond = ids(EWB_DTYPE_BOOL, 2, sc, vc), *in[2] = {T_req(2, sa), T_req(2, sb)}, *o = NULL;
    OK(ewb_where(cond, in[0], in[1], &o));
    CHECK(o && same_shape(o, 2, sb), "where shape %s", ewb_s(o));
    double worst = 0;
    for (int64_t i = 0; o && i < 3; i++)
        for (int64_t j = 0; j < 4; j++) {
            double w = vc[i] ? get(in[0], (int64_t[]){0, j}) : get(in[1], (int64_t[]){i, j});
            double diff = fabs(get(o, (int64_t[]){i, j}) - w);
            if (!(diff <= worst)) worst = diff;
        }
    CHECK(worst == 0, "where differs from the naive loop by %g", worst);
    ewb_tensor_free(o);
    double e = gradcheck("where", gc_where, 2, in, cond, 1e-2, 1e-3);
    CHECK(e < 1e-3, "where gradcheck %g", e);
    /* the gradient of a (broadcast over rows) sums the rows where cond is 1 */
    ewb_tensor_set_grad(in[0], NULL);
    ewb_tensor_set_grad(in[1], NULL);
    OK(ewb_where(cond, in[0], in[1], &o));
    ewb_tensor *ones = NULL, *ga = NULL, *gb = NULL;
    ewb_full(&ones, EWB_DTYPE_F32, 2, sb, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(in[0], &ga);
    ewb_tensor_grad(in[1], &gb);
    CHECK(ga && gb && get(ga, (int64_t[]){0, 2}) == 2 && get(gb, (int64_t[]){1, 2}) == 1 && get(gb, (int64_t[]){0, 2}) == 0,
          "where grads by count");
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(ga); ewb_tensor_free(gb);

    /* a scalar 0-d b */
    ewb_tensor *zero = NULL;
    ewb_full(&zero, EWB_DTYPE_F32, 0, NULL, 0.25);
    OK(ewb_where(cond, in[1], zero, &o));
    CHECK(o && get(o, (int64_t[]){1, 3}) == 0.25f && get(o, (int64_t[]){2, 3}) == get(in[1], (int64_t[]){2, 3}), "where scalar");
    ewb_tensor_free(o);

    ewb_tensor *fc = T(2, sc), *ii = ids(EWB_DTYPE_I64, 2, sb, (int64_t[12]){0}), *b5 = T(2, (int64_t[]){3, 5});
    FAILS(ewb_where(fc, in[0], in[1], &o), "where: cond must be a bool tensor");
    FAILS(ewb_where(cond, in[0], ii, &o), "where: a f32[1,4] and b i64[3,4] must have the same dtype");
    FAILS(ewb_where(cond, in[0], b5, &o), "do not broadcast");
    ewb_tensor *c4 = ids(EWB_DTYPE_BOOL, 1, (int64_t[]){2}, (int64_t[]){1, 0});
    FAILS(ewb_where(c4, in[0], in[1], &o), "where: cond bool[2]");
    ewb_tensor_free(cond); ewb_tensor_free(in[0]); ewb_tensor_free(in[1]); ewb_tensor_free(zero);
    ewb_tensor_free(fc); ewb_tensor_free(ii); ewb_tensor_free(b5); ewb_tensor_free(c4);
}

static void test_masked_fill(void) {
    int64_t s[2] = {3, 4}, sm[1] = {4}, vm[4] = {0, 1, 1, 0};
    ewb_tensor *x = T_req(2, s), *mask = ids(EWB_DTYPE_BOOL, 1, sm, vm), *o = NULL;
    OK(ewb_masked_fill(x, mask, -3.0, &o));
    double worst = 0;
    for (int64_t i = 0; o && i < 3; i++)
        for (int64_t j = 0; j < 4; j++) {
            double w = vm[j] ? -3.0 : get(x, (int64_t[]){i, j}), diff = fabs(get(o, (int64_t[]){i, j}) - w);
            if (!(diff <= worst)) worst = diff;
        }
    CHECK(o && same_shape(o, 2, s) && worst == 0, "masked_fill differs from the naive loop by %g", worst);
    ewb_tensor_free(o);
    double e = gradcheck("masked_fill", gc_masked_fill, 1, &x, mask, 1e-2, 1e-3);
    CHECK(e < 1e-3, "masked_fill gradcheck %g", e);
    ewb_tensor_set_grad(x, NULL);
    OK(ewb_masked_fill(x, mask, -3.0, &o));
    ewb_tensor *ones = NULL, *g = NULL;
    ewb_full(&ones, EWB_DTYPE_F32, 2, s, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(x, &g);
    int bad = 0;
    for (int64_t i = 0; g && i < 3; i++)
        for (int64_t j = 0; j < 4; j++) bad += get(g, (int64_t[]){i, j}) != (vm[j] ? 0.0 : 1.0);
    CHECK(g && bad == 0, "masked_fill gradient is zero exactly where filled (%d wrong)", bad);
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(g);

    /* strided input, full-shape mask; bool input filled with 1 */
    ewb_tensor *v = strided(3, 4), *m2 = ids(EWB_DTYPE_BOOL, 2, s, (int64_t[12]){1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1});
    OK(ewb_masked_fill(v, m2, 9, &o));
    CHECK(o && get(o, (int64_t[]){1, 1}) == 9 && get(o, (int64_t[]){1, 2}) == get(v, (int64_t[]){1, 2}), "masked_fill strided");
    ewb_tensor_free(o);

    ewb_tensor *fm = T(1, sm), *m3 = ids(EWB_DTYPE_BOOL, 1, (int64_t[]){3}, (int64_t[]){1, 1, 1});
    FAILS(ewb_masked_fill(x, fm, 0, &o), "masked_fill: mask must be a bool tensor, got f32[4]");
    FAILS(ewb_masked_fill(x, m3, 0, &o), "masked_fill: mask bool[3] does not broadcast to the input f32[3,4]");
    ewb_tensor_free(x); ewb_tensor_free(mask); ewb_tensor_free(v); ewb_tensor_free(m2); ewb_tensor_free(fm);
    ewb_tensor_free(m3);
}

int main(void) {
    ewb_manual_seed(7);
    test_cat();
    test_stack();
    test_pad();
    test_gather();
    test_index_select();
    test_where();
    test_masked_fill();
    return check_report();
}
