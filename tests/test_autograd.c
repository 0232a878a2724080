/* test_autograd.c: the tape: accumulation, diamonds, freeing the graph,
 * retain_graph, no-grad mode, detach, leaf rules, anomaly mode, and a long
 * chain released without recursion. */
#include "check.h"

static int f_diamond(ewb_tensor **in, ewb_tensor **out, void *ud) {
    /* x used twice: x @ xᵀ */
    (void)ud;
    ewb_tensor *xt;
    if (ewb_transpose(in[0], 0, 1, &xt)) return -1;
    int rc = ewb_matmul(in[0], xt, out);
    ewb_tensor_free(xt);
    return rc;
}

int main(void) {
    ewb_manual_seed(11);
    int64_t s[2] = {3, 4}, ws[2] = {4, 2}, one[1] = {1};
    ewb_tensor *x = T_req(2, s), *w = T(2, ws), *y, *g;
    /* diamond: gradient contributions from both uses add up */
    ewb_tensor *in[1] = {x};
    double e = gradcheck("diamond", f_diamond, 1, in, NULL, 1e-2, 1e-2);
    CHECK(e < 1e-2, "diamond gradcheck %g", e);

    /* non-leaf / freed graph */
    ewb_tensor_set_grad(x, NULL);
    OK(ewb_matmul(x, w, &y));
    CHECK(!ewb_tensor_is_leaf(y) && !strcmp(ewb_tensor_grad_fn(y), "matmul"), "grad_fn recorded");
    FAILS(ewb_backward(y, NULL, 0), "grad can be implicitly created only for scalar outputs, got f32[3,2]");
    FAILS(ewb_tensor_set_requires_grad(y, 0), "only be set on leaf tensors; this one comes from op 'matmul'");
    int64_t ys[2] = {3, 2};
    ewb_tensor *gy = T(2, ys);
    OK(ewb_backward(y, gy, 1)); /* retain */
    OK(ewb_backward(y, gy, 0)); /* second pass allowed, then freed */
    ewb_tensor_grad(x, &g);
    /* both passes accumulated: grad = 2 * gy @ wᵀ */
    ewb_tensor *wt, *ref = ewb_empty(EWB_DTYPE_F32, 2, s), *ref_mm;
    ewb_transpose(w, 0, 1, &wt);
    ewb_set_grad_enabled(0);
    ewb_matmul(gy, wt, &ref_mm);
    ewb_set_grad_enabled(1);
    ewb_copy_(ref, ref_mm);
    ewb_scale_(ref, 2.0);
    CHECK(max_rel_err(g, ref) < 1e-6, "two backward passes accumulate: %g", max_rel_err(g, ref));
    FAILS(ewb_backward(y, gy, 0), "backward through the graph a second time (op 'matmul')");
    ewb_tensor_free(g); ewb_tensor_free(y); ewb_tensor_free(wt); ewb_tensor_free(ref); ewb_tensor_free(ref_mm);

    /* no-grad mode records nothing; detach cuts the graph */
    ewb_set_grad_enabled(0);
    OK(ewb_matmul(x, w, &y));
    CHECK(ewb_tensor_is_leaf(y) && !ewb_tensor_requires_grad(y), "no_grad output is a plain leaf");
    ewb_set_grad_enabled(1);
    ewb_tensor_free(y);
    ewb_tensor *xd;
    OK(ewb_detach(x, &xd));
    CHECK(!ewb_tensor_requires_grad(xd) && ewb_tensor_shares_storage(xd, x), "detach shares storage, no grad");
    OK(ewb_matmul(xd, w, &y));
    CHECK(!ewb_tensor_requires_grad(y), "ops on detached tensors do not record");
    ewb_tensor_free(y); ewb_tensor_free(xd);

    /* only f32 may require grad */
    ewb_tensor *ii;
    ewb_tensor_new(&ii, EWB_DTYPE_I64, 1, one);
    FAILS(ewb_tensor_set_requires_grad(ii, 1), "only f32 tensors can require gradients, got i64[1]");
    ewb_tensor_free(ii);

    /* anomaly mode names the op that produced a NaN */
    ewb_tensor *bad = T(2, ws);
    int64_t at[2] = {1, 1};
    ewb_tensor_set(bad, at, NAN);
    ewb_set_anomaly(1);
    FAILS(ewb_matmul(x, bad, &y), "anomaly: op 'matmul' produced NaN or Inf");
    ewb_set_anomaly(0);
    OK(ewb_matmul(x, bad, &y)); /* without anomaly mode NaN passes through */
    ewb_tensor_free(y); ewb_tensor_free(bad);

    /* a 20000-op chain is built and released without overflowing the C stack */
    {
        ewb_tensor *cur;
        ewb_clone(x, &cur);
        for (int i = 0; i < 20000; i++) {
            ewb_tensor *nx;
            ewb_transpose(cur, 0, 1, &nx);
            ewb_tensor_free(cur);
            cur = nx;
        }
        ewb_tensor *c2 = T(2, s);
        ewb_tensor_set_grad(x, NULL);
        OK(ewb_backward(cur, c2, 0)); /* even number of transposes: identity */
        ewb_tensor_grad(x, &g);
        CHECK(g && max_rel_err(g, c2) < 1e-7, "gradient through a 20000-op chain");
        ewb_tensor_free(g); ewb_tensor_free(c2); ewb_tensor_free(cur);
    }
    /* dispose: memory released at once, later use is an error */
    {
        int64_t big[1] = {1 << 20};
        ewb_tensor *b = T(1, big), *o = NULL;
        int64_t before = ewb_mem_current();
        ewb_tensor_dispose(b);
        CHECK(before - ewb_mem_current() == 4 << 20, "dispose frees 4 MiB at once (freed %lld)", (long long)(before - ewb_mem_current()));
        FAILS(ewb_matmul(b, b, &o), "tensor was freed");
        ewb_tensor_free(b);
    }
    ewb_tensor_free(x); ewb_tensor_free(w); ewb_tensor_free(gy);
    CHECK(ewb_mem_current() == 0, "all memory released (%lld live)", (long long)ewb_mem_current());
    return check_report();
}
