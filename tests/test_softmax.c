/* test_softmax.c: softmax and log_softmax (kernels/softmax.c) against the
 * naive twins of kernels/softmax.h over every dim of several shapes,
 * forward and gradient; strided input; large logits (stability); a value
 * worked out by hand; finite-difference gradchecks; bad arguments. */
#include "check.h"
#include "../kernels/softmax.h"

static int run(ewb_tensor *x, int dim, int is_log, ewb_tensor **y) {
    return is_log ? ewb_log_softmax(x, dim, y) : ewb_softmax(x, dim, y);
}

/* x_in: the input (a leaf, or a view of the leaf `grad_of`) */
static void compare(const char *name, ewb_tensor *x, ewb_tensor *leaf, int dim, int is_log) {
    ewb_tensor *y = NULL, *yr = NULL;
    OK(run(x, dim, is_log, &y));
    OK(ewb_softmax_ref(x, dim, is_log, &yr));
    double e = y && yr ? max_rel_err(y, yr) : INFINITY;
    CHECK(e < 1e-5, "%s dim %d: forward error %g vs naive twin", name, dim, e);
    if (y && yr) {
        ewb_tensor *dy = T(y->ndim, y->shape), *dx = ewb_zeros_like(x), *g = NULL;
        OK(ewb_backward(y, dy, 0));
        OK(ewb_softmax_ref_backward(yr, dy, dim, is_log, dx));
        ewb_tensor_grad(leaf, &g);
        if (g && leaf != x) { /* leaf is (…) transposed: compare through the same transpose */
            ewb_tensor *gt = NULL;
            OK(ewb_transpose(g, 0, 1, &gt));
            ewb_tensor_free(g);
            g = gt;
        }
        e = g ? max_rel_err(g, dx) : INFINITY;
        CHECK(e < 1e-5, "%s dim %d: gradient error %g vs naive twin", name, dim, e);
        ewb_tensor_set_grad(leaf, NULL);
        ewb_tensor_free(g);
        ewb_tensor_free(dy);
        ewb_tensor_free(dx);
    }
    ewb_tensor_free(y);
    ewb_tensor_free(yr);
}

static void all_dims(const char *name, int ndim, const int64_t *shape, double scale) {
    ewb_tensor *x = T(ndim, shape);
    ewb_scale_(x, scale);
    ewb_tensor_set_requires_grad(x, 1);
    for (int is_log = 0; is_log < 2; is_log++)
        for (int d = -1; d < ndim; d++) compare(is_log ? "log_softmax" : name, x, x, d, is_log);
    ewb_tensor_free(x);
}

static int gc_softmax(ewb_tensor **in, ewb_tensor **out, void *ud) {
    int *a = ud;
    return run(in[0], a[0], a[1], out);
}

int main(void) {
    ewb_manual_seed(11);
    int64_t s1[2] = {4, 10}, s2[3] = {3, 5, 7}, s3[4] = {2, 3, 1, 4}, s4[2] = {8, 1000};
    all_dims("softmax (4,10)", 2, s1, 1.0);
    all_dims("softmax (3,5,7)", 3, s2, 1.0);
    all_dims("softmax (2,3,1,4)", 4, s3, 1.0);
    all_dims("softmax (8,1000)", 2, s4, 1.0);
    all_dims("softmax large logits", 3, s2, 300.0);

    /* strided: x = transpose of a (5, 3, 7) leaf */
    int64_t sb[3] = {5, 3, 7};
    ewb_tensor *base = T_req(3, sb);
    for (int is_log = 0; is_log < 2; is_log++)
        for (int d = 0; d < 3; d++) {
            ewb_tensor *x = NULL;
            OK(ewb_transpose(base, 0, 1, &x));
            if (x) compare(is_log ? "log_softmax strided" : "softmax strided", x, base, d, is_log);
            ewb_tensor_free(x);
        }
    ewb_tensor_free(base);

    /* by hand: softmax([0, ln 3]) = [1/4, 3/4]; log_softmax of it = log of those */
    float v[2] = {0, (float)log(3.0)};
    int64_t two = 2;
    ewb_tensor *h = NULL, *y = NULL;
    ewb_tensor_from_data(&h, EWB_DTYPE_F32, 1, &two, v);
    OK(ewb_softmax(h, 0, &y));
    if (y) CHECK(fabs(ewb_f32(y)[0] - 0.25) < 1e-6 && fabs(ewb_f32(y)[1] - 0.75) < 1e-6, "softmax([0, ln 3]) = [%g, %g]", ewb_f32(y)[0], ewb_f32(y)[1]);
    ewb_tensor_free(y);
    y = NULL;
    OK(ewb_log_softmax(h, -1, &y));
    /* oneDNN's vectorised log is good to a few ulp: about 2e-6 here */
    if (y) CHECK(fabs(ewb_f32(y)[0] - log(0.25)) < 1e-5 && fabs(ewb_f32(y)[1] - log(0.75)) < 1e-5, "log_softmax([0, ln 3]) = [%g, %g]", ewb_f32(y)[0], ewb_f32(y)[1]);
    ewb_tensor_free(y);
    y = NULL;
    /* 0-d: softmax of one element is 1 */
    ewb_tensor *s0 = NULL;
    ewb_full(&s0, EWB_DTYPE_F32, 0, NULL, 2.5);
    OK(ewb_softmax(s0, 0, &y));
    if (y) CHECK(y->ndim == 0 && ewb_f32(y)[0] == 1.0f, "softmax of a 0-d tensor = %g", ewb_f32(y)[0]);
    ewb_tensor_free(y);
    y = NULL;

    /* finite differences */
    int64_t gs[3] = {2, 3, 4};
    for (int is_log = 0; is_log < 2; is_log++)
        for (int d = 0; d < 3; d++) {
            ewb_tensor *in[1] = {T_req(3, gs)};
            int a[2] = {d, is_log};
            double e = gradcheck(is_log ? "log_softmax" : "softmax", gc_softmax, 1, in, a, 1e-2, 1e-2);
            CHECK(e < 1e-2, "%s dim %d: gradcheck error %g", is_log ? "log_softmax" : "softmax", d, e);
            ewb_tensor_free(in[0]);
        }

    /* bad arguments */
    ewb_tensor *xi = NULL;
    ewb_tensor_new(&xi, EWB_DTYPE_I64, 2, s1);
    FAILS(ewb_softmax(h, 1, &y), "softmax: dim 1 out of range for f32[2]");
    FAILS(ewb_log_softmax(h, -2, &y), "log_softmax: dim -2 out of range");
    FAILS(ewb_softmax(xi, 0, &y), "expected an f32");
    FAILS(ewb_log_softmax(NULL, 0, &y), "nil");
    CHECK(y == NULL, "no output on failure");
    ewb_tensor_free(xi);
    ewb_tensor_free(h);
    ewb_tensor_free(s0);
    return check_report();
}
