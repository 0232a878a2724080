/* test_views.c: views share storage and never copy; their metadata matches
 * hand-computed strides; gradients through every view op match finite
 * differences; bad arguments give clear errors. */
#include "check.h"

static int f_chain(ewb_tensor **in, ewb_tensor **out, void *ud) {
    /* permute -> narrow -> select -> unsqueeze -> expand -> reshape: a mix of
       strided views, ending in a copy (reshape of a non-viewable layout) */
    (void)ud;
    ewb_tensor *a, *b, *c, *d, *e;
    int perm[3] = {2, 0, 1};
    int64_t ex[3] = {3, 2, 3}, rs[1] = {-1};
    if (ewb_permute(in[0], perm, &a)) return -1;          /* (4,2,3) */
    ewb_narrow(a, 0, 1, 2, &b);                            /* (2,2,3) */
    ewb_select(b, 1, 1, &c);                               /* (2,3) */
    ewb_unsqueeze(c, 0, &d);                               /* (1,2,3) */
    ewb_expand(d, 3, ex, &e);                              /* (3,2,3), stride 0 */
    int rc = ewb_reshape(e, 1, rs, out);                   /* (18) */
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c); ewb_tensor_free(d); ewb_tensor_free(e);
    return rc;
}
static int f_slice(ewb_tensor **in, ewb_tensor **out, void *ud) {
    (void)ud;
    ewb_tensor *t;
    if (ewb_transpose(in[0], 0, 1, &t)) return -1;
    int rc = ewb_slice(t, 1, 1, 6, 2, out); /* every other element */
    ewb_tensor_free(t);
    return rc;
}

int main(void) {
    ewb_manual_seed(3);
    int64_t s[3] = {2, 3, 4};
    ewb_tensor *x = T(3, s), *v;
    /* transpose: a stride swap over the same storage */
    OK(ewb_transpose(x, 0, 2, &v));
    CHECK(v->shape[0] == 4 && v->shape[2] == 2 && v->stride[0] == 1 && v->stride[2] == 12, "transpose strides");
    CHECK(ewb_tensor_shares_storage(x, v) && !ewb_tensor_is_contiguous(v), "transpose shares storage");
    double a, b;
    int64_t i1[3] = {3, 1, 0}, i2[3] = {0, 1, 3};
    ewb_tensor_get(v, i1, &a);
    ewb_tensor_get(x, i2, &b);
    CHECK(a == b, "transposed element");
    /* view of a non-contiguous tensor that cannot be viewed -> clear error; reshape copies */
    int64_t flat[1] = {24};
    ewb_tensor *o = NULL;
    FAILS(ewb_view(v, 1, flat, &o), "use reshape");
    OK(ewb_reshape(v, 1, flat, &o));
    CHECK(o && !ewb_tensor_shares_storage(o, x), "reshape of a transposed tensor copies");
    ewb_tensor_free(o);
    /* view that merges contiguous dims does not copy */
    int64_t m[2] = {6, 4};
    OK(ewb_view(x, 2, m, &o));
    CHECK(o && ewb_tensor_shares_storage(o, x) && o->stride[0] == 4, "view merges dims");
    ewb_tensor_free(o);
    /* -1 inference and bad shapes */
    int64_t inf[2] = {-1, 8}, bad[2] = {5, 5}, two[2] = {-1, -1};
    OK(ewb_view(x, 2, inf, &o));
    CHECK(o && o->shape[0] == 3, "-1 inferred as 3");
    ewb_tensor_free(o);
    FAILS(ewb_view(x, 2, bad, &o), "shape [5,5] is invalid for f32[2,3,4] (24 elements)");
    FAILS(ewb_view(x, 2, two, &o), "only one dimension can be -1");
    /* narrow, slice, select bounds */
    FAILS(ewb_narrow(x, 1, 2, 2, &o), "narrow: start 2 + length 2 exceeds dim 1 of f32[2,3,4]");
    FAILS(ewb_select(x, 0, 2, &o), "select: index 2 out of range for dim 0 of f32[2,3,4]");
    FAILS(ewb_transpose(x, 0, 3, &o), "transpose: dim 3 out of range for f32[2,3,4]");
    int perm_bad[3] = {0, 0, 1};
    FAILS(ewb_permute(x, perm_bad, &o), "not a permutation");
    int64_t ex_bad[3] = {2, 5, 4};
    FAILS(ewb_expand(x, 3, ex_bad, &o), "only size-1 dims expand");
    OK(ewb_select(x, 0, -1, &o)); /* negative index counts from the end */
    CHECK(o && o->offset == 12 && o->ndim == 2, "select(-1) offset %lld", o ? (long long)o->offset : -1LL);
    ewb_tensor_free(o);
    /* unsqueeze at the end and squeeze back */
    OK(ewb_unsqueeze(x, 3, &o));
    CHECK(o && o->ndim == 4 && o->shape[3] == 1, "unsqueeze at end");
    ewb_tensor *q;
    OK(ewb_squeeze(o, -1, &q));
    CHECK(q && q->ndim == 3, "squeeze");
    ewb_tensor_free(o);
    FAILS(ewb_squeeze(x, 0, &o), "squeeze: dim 0 of f32[2,3,4] has size 2, not 1");
    ewb_tensor_free(q);
    /* gradients through chains of views, including expand (sums) */
    int64_t cs[3] = {2, 3, 4};
    ewb_tensor *in[1] = {T_req(3, cs)};
    double e = gradcheck("view chain", f_chain, 1, in, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-3, "view chain gradcheck %g", e);
    ewb_tensor_free(in[0]);
    int64_t ss[2] = {7, 3};
    ewb_tensor *in2[1] = {T_req(2, ss)};
    e = gradcheck("strided slice", f_slice, 1, in2, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-3, "slice gradcheck %g", e);
    ewb_tensor_free(in2[0]);
    /* view of a narrowed (non-contiguous) tensor: the chunk of dims 1..2
       has base stride 6, so (2,3,2) strides (18,6,1) view as (2,3,1,2)
       with strides (18,6,2,1) */
    {
        int64_t s6[3] = {2, 3, 6}, s4[4] = {2, 3, 1, 2};
        ewb_tensor *y = T(3, s6), *n, *w;
        OK(ewb_narrow(y, 2, 0, 2, &n));
        OK(ewb_view(n, 4, s4, &w));
        CHECK(w->stride[0] == 18 && w->stride[1] == 6 && w->stride[2] == 2 && w->stride[3] == 1,
              "view of a narrowed tensor: strides %lld,%lld,%lld,%lld", (long long)w->stride[0],
              (long long)w->stride[1], (long long)w->stride[2], (long long)w->stride[3]);
        int64_t iw[4] = {1, 2, 0, 1}, iy[3] = {1, 2, 1};
        double vw = 0, vy = 1;
        OK(ewb_tensor_get(w, iw, &vw));
        OK(ewb_tensor_get(y, iy, &vy));
        CHECK(vw == vy, "view of a narrowed tensor reads %g, expected %g", vw, vy);
        ewb_tensor_free(w); ewb_tensor_free(n); ewb_tensor_free(y);
    }
    ewb_tensor_free(v);
    ewb_tensor_free(x);
    CHECK(ewb_mem_current() == 0, "all memory released (%lld live)", (long long)ewb_mem_current());
    return check_report();
}
