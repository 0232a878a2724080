/* check.h: the C test harness. CHECK counts failures without stopping;
 * OK(call) fails with ewb_last_error() when a call returns non-zero;
 * gradcheck() compares autograd against central finite differences;
 * max_rel_err() is the normalised error used against naive reference twins.
 * A test's main() ends with `return check_report();`. */
#ifndef ECGWB_CHECK_H
#define ECGWB_CHECK_H
#include "../core/internal.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        check_count++;                                                            \
        if (!(cond)) {                                                            \
            check_failures++;                                                     \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

#define OK(call) CHECK((call) == 0, "%s -> %s", #call, ewb_last_error())
/* the call must fail, and its message must contain `needle` */
#define FAILS(call, needle)                                                                         \
    do {                                                                                           \
        ewb_clear_error();                                                                         \
        int rc_ = (call);                                                                          \
        CHECK(rc_ != 0 && strstr(ewb_last_error(), needle), "%s should fail with '%s', got rc=%d '%s'", \
              #call, needle, rc_, ewb_last_error());                                               \
    } while (0)

static inline int check_report(void) {
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

static inline ewb_tensor *T(int ndim, const int64_t *shape) { /* N(0,1) f32 */
    ewb_tensor *t = NULL;
    if (ewb_randn(&t, ndim, shape)) { fprintf(stderr, "randn: %s\n", ewb_last_error()); exit(2); }
    return t;
}
static inline ewb_tensor *T_req(int ndim, const int64_t *shape) {
    ewb_tensor *t = T(ndim, shape);
    ewb_tensor_set_requires_grad(t, 1);
    return t;
}

/* max |a-b| / (max|b| + 1e-6) over all elements: normalised error */
static inline double max_rel_err(const ewb_tensor *a, const ewb_tensor *b) {
    int64_t n = ewb_tensor_numel(a);
    if (n != ewb_tensor_numel(b)) return INFINITY;
    float *pa = malloc(sizeof(float) * (n ? n : 1)), *pb = malloc(sizeof(float) * (n ? n : 1));
    ewb_tensor_copy_to(a, pa, n * 4);
    ewb_tensor_copy_to(b, pb, n * 4);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)pa[i] - pb[i]);
        if (!(d <= num)) num = d; /* NaN propagates */
        if (fabs(pb[i]) > den) den = fabs(pb[i]);
    }
    free(pa);
    free(pb);
    return num / (den + 1e-6);
}

/* gradcheck: fn(inputs) -> output. The scalar checked is L = sum(out * R)
   with a fixed random R, evaluated in double. Every input that requires grad
   is perturbed element by element (central differences, step eps). Returns
   the worst |analytic - numeric| / (|numeric| + atol) over all elements. */
typedef int (*gc_fn)(ewb_tensor **in, ewb_tensor **out, void *ud);

static inline double gc_loss(ewb_tensor *out, const float *r) {
    int64_t n = ewb_tensor_numel(out);
    float *p = malloc(sizeof(float) * (n ? n : 1));
    ewb_tensor_copy_to(out, p, n * 4);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)p[i] * r[i];
    free(p);
    return s;
}

static inline double gradcheck(const char *name, gc_fn fn, int nin, ewb_tensor **in, void *ud, double eps, double atol) {
    ewb_tensor *out = NULL;
    if (fn(in, &out, ud)) { fprintf(stderr, "gradcheck %s: forward failed: %s\n", name, ewb_last_error()); return INFINITY; }
    int64_t no = ewb_tensor_numel(out);
    float *r = malloc(sizeof(float) * (no ? no : 1));
    ewb_tensor *rt = T(out->ndim, out->shape);
    ewb_tensor_copy_to(rt, r, no * 4);
    for (int i = 0; i < nin; i++) if (in[i] && in[i]->requires_grad) ewb_tensor_set_grad(in[i], NULL);
    if (ewb_backward(out, rt, 0)) { fprintf(stderr, "gradcheck %s: backward failed: %s\n", name, ewb_last_error()); return INFINITY; }
    ewb_tensor_free(out);
    double worst = 0;
    ewb_set_grad_enabled(0);
    for (int i = 0; i < nin; i++) {
        if (!in[i] || !in[i]->requires_grad) continue;
        ewb_tensor *g = NULL;
        ewb_tensor_grad(in[i], &g);
        if (!g) { fprintf(stderr, "gradcheck %s: input %d got no gradient\n", name, i); worst = INFINITY; continue; }
        float *gp = ewb_f32(g);
        float *x = ewb_f32(in[i]); /* inputs are contiguous */
        for (int64_t k = 0; k < ewb_tensor_numel(in[i]); k++) {
            float x0 = x[k];
            x[k] = x0 + (float)eps;
            ewb_tensor *o1 = NULL, *o2 = NULL;
            fn(in, &o1, ud);
            double l1 = gc_loss(o1, r);
            x[k] = x0 - (float)eps;
            fn(in, &o2, ud);
            double l2 = gc_loss(o2, r);
            x[k] = x0;
            ewb_tensor_free(o1);
            ewb_tensor_free(o2);
            double num = (l1 - l2) / (2 * eps), err = fabs(num - gp[k]) / (fabs(num) + atol);
            if (!(err <= worst)) {
                worst = err;
                if (err > 1) fprintf(stderr, "gradcheck %s: input %d elem %lld analytic %g numeric %g\n", name, i, (long long)k, gp[k], num);
            }
        }
        ewb_tensor_free(g);
    }
    ewb_set_grad_enabled(1);
    ewb_tensor_free(rt);
    free(r);
    return worst;
}

#endif
