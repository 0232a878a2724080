/* test_matmul.c: matmul and linear: oneDNN (and linear's small-M GEMV)
 * against the naive twin (forward
 * and both operand gradients, including strided/transposed and broadcast
 * operands), finite-difference gradients, and error messages. */
#include "check.h"
#include "../kernels/matmul.h"

static ewb_tensor *mm_via_ref(ewb_tensor *a, ewb_tensor *b, int nd, const int64_t *shape) {
    ewb_tensor *c = ewb_empty(EWB_DTYPE_F32, nd, shape);
    ewb_mm_ref(a, b, c, 0, NULL);
    return c;
}

static int f_matmul(ewb_tensor **in, ewb_tensor **out, void *ud) { (void)ud; return ewb_matmul(in[0], in[1], out); }
static int f_linear(ewb_tensor **in, ewb_tensor **out, void *ud) { (void)ud; return ewb_linear(in[0], in[1], in[2], out); }
/* b is used through a transpose view: exercises strided operands in backward */
static int f_matmul_bt(ewb_tensor **in, ewb_tensor **out, void *ud) {
    (void)ud;
    ewb_tensor *bt;
    if (ewb_transpose(in[1], -1, -2, &bt)) return -1;
    int rc = ewb_matmul(in[0], bt, out);
    ewb_tensor_free(bt);
    return rc;
}

int main(void) {
    ewb_manual_seed(7);
    /* forward: plain, batched with broadcast, transposed operand */
    {
        int64_t as[3] = {3, 5, 7}, bs[2] = {7, 4}, cs[3] = {3, 5, 4};
        ewb_tensor *a = T(3, as), *b = T(2, bs), *c, *r;
        OK(ewb_matmul(a, b, &c));
        r = mm_via_ref(a, b, 3, cs);
        CHECK(max_rel_err(c, r) < 1e-5, "broadcast matmul vs naive: %g", max_rel_err(c, r));
        ewb_tensor_free(c); ewb_tensor_free(r);
        /* transposed view of a (no copy) */
        int64_t ats[3] = {3, 7, 5};
        ewb_tensor *at0 = T(3, ats), *at;
        OK(ewb_transpose(at0, 1, 2, &at));
        CHECK(!ewb_tensor_is_contiguous(at) && ewb_tensor_shares_storage(at, at0), "transpose is a view");
        OK(ewb_matmul(at, b, &c));
        r = mm_via_ref(at, b, 3, cs);
        CHECK(max_rel_err(c, r) < 1e-5, "transposed-operand matmul vs naive: %g", max_rel_err(c, r));
        ewb_tensor_free(c); ewb_tensor_free(r); ewb_tensor_free(at); ewb_tensor_free(at0);
        ewb_tensor_free(a); ewb_tensor_free(b);
    }
    /* a larger product (JIT kernels, not the small-shape path) */
    {
        int64_t as[2] = {96, 130}, bs[2] = {130, 70}, cs[2] = {96, 70};
        ewb_tensor *a = T(2, as), *b = T(2, bs), *c, *r;
        OK(ewb_matmul(a, b, &c));
        r = mm_via_ref(a, b, 2, cs);
        CHECK(max_rel_err(c, r) < 1e-5, "96x130x70 vs naive: %g", max_rel_err(c, r));
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c); ewb_tensor_free(r);
    }
    /* 4-d batch broadcast on both sides, (2,1,4,3) @ (1,3,3,5) */
    {
        int64_t as[4] = {2, 1, 4, 3}, bs[4] = {1, 3, 3, 5}, cs[4] = {2, 3, 4, 5};
        ewb_tensor *a = T(4, as), *b = T(4, bs), *c, *r;
        OK(ewb_matmul(a, b, &c));
        r = mm_via_ref(a, b, 4, cs);
        CHECK(c && c->shape[0] == 2 && c->shape[1] == 3, "broadcast batch shape");
        CHECK(max_rel_err(c, r) < 1e-5, "4-d broadcast vs naive: %g", max_rel_err(c, r));
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c); ewb_tensor_free(r);
    }
    /* accumulate flag: c += a@b */
    {
        int64_t as[2] = {4, 6}, bs[2] = {6, 3}, cs[2] = {4, 3};
        ewb_tensor *a = T(2, as), *b = T(2, bs), *c1 = T(2, cs), *c2;
        ewb_clone(c1, &c2);
        OK(ewb_mm_raw(a, b, c1, 1, NULL));
        ewb_mm_ref(a, b, c2, 1, NULL);
        CHECK(max_rel_err(c1, c2) < 1e-5, "accumulating matmul: %g", max_rel_err(c1, c2));
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c1); ewb_tensor_free(c2);
    }
    /* gradients by finite differences */
    {
        int64_t as[3] = {2, 3, 4}, bs[2] = {4, 5};
        ewb_tensor *in[2] = {T_req(3, as), T_req(2, bs)};
        double e = gradcheck("matmul broadcast", f_matmul, 2, in, NULL, 1e-2, 1e-2);
        CHECK(e < 1e-2, "matmul gradcheck err %g", e);
        ewb_tensor_free(in[0]); ewb_tensor_free(in[1]);
        int64_t a2[3] = {2, 3, 4}, b2[3] = {2, 5, 4};
        ewb_tensor *in2[2] = {T_req(3, a2), T_req(3, b2)};
        e = gradcheck("matmul a @ b^T", f_matmul_bt, 2, in2, NULL, 1e-2, 1e-2);
        CHECK(e < 1e-2, "transposed matmul gradcheck err %g", e);
        ewb_tensor_free(in2[0]); ewb_tensor_free(in2[1]);
        int64_t v1[1] = {4}, m1[2] = {4, 3};
        ewb_tensor *in3[2] = {T_req(1, v1), T_req(2, m1)};
        e = gradcheck("vector @ matrix", f_matmul, 2, in3, NULL, 1e-2, 1e-2);
        CHECK(e < 1e-2, "vector matmul gradcheck err %g", e);
        ewb_tensor *vm;
        OK(ewb_matmul(in3[0], in3[1], &vm));
        CHECK(vm && vm->ndim == 1 && vm->shape[0] == 3, "vector @ matrix is 1-d");
        ewb_tensor_free(vm); ewb_tensor_free(in3[0]); ewb_tensor_free(in3[1]);
    }
    {
        int64_t xs[3] = {2, 3, 5}, ws[2] = {4, 5}, bs[1] = {4};
        ewb_tensor *in[3] = {T_req(3, xs), T_req(2, ws), T_req(1, bs)};
        double e = gradcheck("linear", f_linear, 3, in, NULL, 1e-2, 1e-2);
        CHECK(e < 1e-2, "linear gradcheck err %g", e);
        /* forward equals x @ w^T + b computed naively */
        ewb_tensor *y, *wt, *r;
        OK(ewb_linear(in[0], in[1], in[2], &y));
        ewb_transpose(in[1], 0, 1, &wt);
        int64_t ys[3] = {2, 3, 4};
        r = ewb_empty(EWB_DTYPE_F32, 3, ys);
        ewb_mm_ref(in[0], wt, r, 0, in[2]);
        CHECK(max_rel_err(y, r) < 1e-5, "linear vs naive: %g", max_rel_err(y, r));
        ewb_tensor_free(y); ewb_tensor_free(wt); ewb_tensor_free(r);
        for (int i = 0; i < 3; i++) ewb_tensor_free(in[i]);
    }
    /* linear with M <= 4 rows takes ewb_gemv_rows (no oneDNN): against the
       naive twin for M = 1..5 (5 is oneDNN again), N not a multiple of 4,
       with and without bias; a 3-d input; a large (threaded) one; a gradcheck */
    for (int64_t M = 1; M <= 5; M++) {
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            int64_t xs[3] = {1, M, 37}, ws[2] = {10, 37}, bs[1] = {10}, ys[3] = {1, M, 10};
            ewb_tensor *x = T(3, xs), *w = T(2, ws), *b = with_bias ? T(1, bs) : NULL, *y, *wt, *r;
            OK(ewb_linear(x, w, b, &y));
            ewb_transpose(w, 0, 1, &wt);
            r = ewb_empty(EWB_DTYPE_F32, 3, ys);
            ewb_mm_ref(x, wt, r, 0, b);
            CHECK(max_rel_err(y, r) < 1e-5, "linear M=%lld bias %d vs naive: %g", (long long)M, with_bias, max_rel_err(y, r));
            ewb_tensor_free(x); ewb_tensor_free(w); ewb_tensor_free(b); ewb_tensor_free(y); ewb_tensor_free(wt); ewb_tensor_free(r);
        }
    }
    {
        int64_t xs[2] = {2, 384}, ws[2] = {1538, 384}, bs[1] = {1538}, ys[2] = {2, 1538};
        ewb_tensor *x = T(2, xs), *w = T(2, ws), *b = T(1, bs), *y, *wt, *r;
        OK(ewb_linear(x, w, b, &y));
        ewb_transpose(w, 0, 1, &wt);
        r = ewb_empty(EWB_DTYPE_F32, 2, ys);
        ewb_mm_ref(x, wt, r, 0, b);
        CHECK(max_rel_err(y, r) < 1e-5, "linear 2 x 384 @ 1538 x 384 vs naive: %g", max_rel_err(y, r));
        ewb_tensor_free(x); ewb_tensor_free(w); ewb_tensor_free(b); ewb_tensor_free(y); ewb_tensor_free(wt); ewb_tensor_free(r);
        int64_t x1[2] = {1, 5}, w1[2] = {6, 5}, b1[1] = {6};
        ewb_tensor *in[3] = {T_req(2, x1), T_req(2, w1), T_req(1, b1)};
        double e = gradcheck("linear M=1", f_linear, 3, in, NULL, 1e-2, 1e-2);
        CHECK(e < 1e-2, "linear M=1 gradcheck err %g", e);
        for (int i = 0; i < 3; i++) ewb_tensor_free(in[i]);
    }
    /* backward of the oneDNN path against the naive twin on a bigger case */
    {
        int64_t as[2] = {64, 48}, bs[2] = {48, 40}, cs[2] = {64, 40};
        ewb_tensor *a = T_req(2, as), *b = T_req(2, bs), *c, *g = T(2, cs);
        OK(ewb_matmul(a, b, &c));
        OK(ewb_backward(c, g, 0));
        ewb_tensor *ga, *gb, *bt, *at, *ra = ewb_empty(EWB_DTYPE_F32, 2, as), *rb = ewb_empty(EWB_DTYPE_F32, 2, bs);
        ewb_tensor_grad(a, &ga);
        ewb_tensor_grad(b, &gb);
        ewb_transpose(b, 0, 1, &bt);
        ewb_transpose(a, 0, 1, &at);
        ewb_mm_ref(g, bt, ra, 0, NULL);
        ewb_mm_ref(at, g, rb, 0, NULL);
        CHECK(max_rel_err(ga, ra) < 1e-5, "dA vs naive %g", max_rel_err(ga, ra));
        CHECK(max_rel_err(gb, rb) < 1e-5, "dB vs naive %g", max_rel_err(gb, rb));
        /* backward accumulates */
        ewb_tensor *c2;
        OK(ewb_matmul(a, b, &c2));
        OK(ewb_backward(c2, g, 0));
        ewb_tensor *ga2;
        ewb_tensor_grad(a, &ga2);
        ewb_scale_(ra, 2.0);
        CHECK(max_rel_err(ga2, ra) < 1e-5, "second backward accumulates %g", max_rel_err(ga2, ra));
        ewb_tensor *list[] = {a, b, c, g, ga, gb, bt, at, ra, rb, c2, ga2};
        for (size_t i = 0; i < sizeof list / sizeof *list; i++) ewb_tensor_free(list[i]);
    }
    /* errors */
    {
        int64_t as[2] = {2, 3}, bs[2] = {4, 5}, ws[2] = {5, 4}, i3[1] = {3};
        ewb_tensor *a = T(2, as), *b = T(2, bs), *w = T(2, ws), *o = NULL, *ii;
        FAILS(ewb_matmul(a, b, &o), "matmul: inner dims differ: f32[2,3] @ f32[4,5]");
        FAILS(ewb_linear(a, w, NULL, &o), "linear: input f32[2,3] does not match weight f32[5,4]");
        ewb_tensor_new(&ii, EWB_DTYPE_I64, 1, i3);
        FAILS(ewb_matmul(ii, a, &o), "expected an f32 tensor, got i64[3]");
        int64_t b3[3] = {2, 3, 3}, c3[3] = {3, 3, 4};
        ewb_tensor *x = T(3, b3), *y = T(3, c3);
        FAILS(ewb_matmul(x, y, &o), "batch dims");
        ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(w); ewb_tensor_free(ii); ewb_tensor_free(x); ewb_tensor_free(y);
    }
    CHECK(ewb_mem_current() == 0, "all tensor memory released, %lld bytes live", (long long)ewb_mem_current());
    return check_report();
}
