/* test_reduce.c: kernels/reduce.c. Sum/mean/var/std over every subset of
 * dims of a 3-d tensor (adjacent and non-adjacent, keepdim or not, strided
 * input) against naive double loops; accuracy of a 1e6-element sum against a
 * long double reference; max/min/argmax values, indices, ties and NaN;
 * logsumexp stability; gradients against finite differences; errors; and
 * timings of the fast paths. */
#include "check.h"
#include <time.h>

static ewb_tensor *from(int nd, const int64_t *shape, const float *v) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, v)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* naive: reduce t (any strides) over the dims in mask; kind 0 sum, 1 mean,
   2 var (correction c), 3 std. Result in keepdim layout (row-major). */
static void naive(const ewb_tensor *t, int mask, int kind, int c, double *out, int64_t *nout) {
    int nd = t->ndim;
    int64_t kshape[EWB_MAX_DIMS], n = ewb_tensor_numel(t), R = 1;
    for (int d = 0; d < nd; d++) {
        kshape[d] = (mask >> d & 1) ? 1 : t->shape[d];
        if (mask >> d & 1) R *= t->shape[d];
    }
    int64_t no = ewb_shape_numel(nd, kshape);
    double *s = calloc(no, sizeof(double)), *ss = calloc(no, sizeof(double));
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < n; i++) {
            int64_t idx[EWB_MAX_DIMS], r = i, o = 0;
            for (int d = nd - 1; d >= 0; d--) { idx[d] = r % t->shape[d]; r /= t->shape[d]; }
            for (int d = 0; d < nd; d++) o = o * kshape[d] + ((mask >> d & 1) ? 0 : idx[d]);
            double v;
            ewb_tensor_get(t, idx, &v);
            if (pass == 0) s[o] += v;
            else { double dv = v - s[o] / R; ss[o] += dv * dv; }
        }
    for (int64_t o = 0; o < no; o++) {
        if (kind == 0) out[o] = s[o];
        else if (kind == 1) out[o] = s[o] / R;
        else if (kind == 2) out[o] = ss[o] / (R - c);
        else out[o] = sqrt(ss[o] / (R - c));
    }
    *nout = no;
    free(s);
    free(ss);
}

static int call_red(int kind, ewb_tensor *a, int nd, const int *dims, int c, int keepdim, ewb_tensor **out) {
    switch (kind) {
    case 0: return ewb_sum(a, nd, dims, keepdim, out);
    case 1: return ewb_mean(a, nd, dims, keepdim, out);
    case 2: return ewb_var(a, nd, dims, c, keepdim, out);
    default: return ewb_std(a, nd, dims, c, keepdim, out);
    }
}
static const char *RED_NAME[4] = {"sum", "mean", "var", "std"};

/* every subset of dims of (2,3,4), keepdim both ways, contiguous and strided */
static void test_subsets(void) {
    int64_t s[3] = {2, 3, 4}, sp[3] = {4, 2, 3};
    ewb_tensor *x = T(3, s), *base = T(3, sp), *xs = NULL;
    int perm[3] = {1, 2, 0};
    OK(ewb_permute(base, perm, &xs)); /* a (2,3,4) view with strides (3,1,6) */
    ewb_tensor *inputs[2] = {x, xs};
    for (int which = 0; which < 2; which++)
        for (int kind = 0; kind < 4; kind++)
            for (int mask = 0; mask < 8; mask++)
                for (int keep = 0; keep < 2; keep++) {
                    ewb_tensor *a = inputs[which], *y = NULL;
                    int dims[3], nd = 0;
                    for (int d = 0; d < 3; d++) if (mask >> d & 1) dims[nd++] = d - (d == 2 ? 3 : 0); /* -1 for dim 2 */
                    if (mask == 0) nd = 0; /* all dims */
                    int full = mask == 0 ? 7 : mask, c = kind >= 2 ? (mask & 1) : 0;
                    OK(call_red(kind, a, nd, dims, c, keep, &y));
                    if (!y) continue;
                    double want[64];
                    int64_t nw;
                    naive(a, full, kind, c, want, &nw);
                    int want_nd = keep ? 3 : 3 - __builtin_popcount(full);
                    CHECK(y->ndim == want_nd && ewb_tensor_numel(y) == nw, "%s mask %d keep %d: shape %s", RED_NAME[kind], mask, keep, ewb_s(y));
                    if (keep)
                        for (int d = 0; d < 3; d++)
                            CHECK(y->shape[d] == ((full >> d & 1) ? 1 : s[d]), "%s keepdim shape %s", RED_NAME[kind], ewb_s(y));
                    double worst = 0;
                    for (int64_t i = 0; i < nw && i < ewb_tensor_numel(y); i++) {
                        double e = fabs(ewb_f32(y)[i] - want[i]) / (fabs(want[i]) + 1e-6);
                        if (!(e <= worst)) worst = e;
                    }
                    CHECK(worst < 1e-6, "%s over mask %d keep %d %s input: rel error %g", RED_NAME[kind], mask, keep,
                          which ? "strided" : "contiguous", worst);
                    ewb_tensor_free(y);
                }
    ewb_tensor_free(x); ewb_tensor_free(base); ewb_tensor_free(xs);
}

/* a 1e6-element sum against a long double reference; float accumulation is
   off by ~1e-4 here */
static void test_accuracy(void) {
    int64_t n = 1000000, s[1] = {n}, s2[2] = {2, n / 2}, s3[2] = {n / 1000, 1000};
    ewb_tensor *x = NULL;
    OK(ewb_rand(&x, 1, s));
    float *p = ewb_f32(x);
    for (int64_t i = 0; i < n; i++) p[i] += 0.1f;
    long double ref = 0;
    float naive_f = 0;
    for (int64_t i = 0; i < n; i++) { ref += p[i]; naive_f += p[i]; }
    ewb_tensor *y = NULL;
    OK(ewb_sum(x, 0, NULL, 0, &y));
    double e = fabs((double)(ewb_f32(y)[0] - ref) / (double)ref);
    CHECK(e < 1e-6, "sum of 1e6: rel error %g (float loop: %g)", e, fabs((double)(naive_f - ref) / (double)ref));
    ewb_tensor_free(y);
    OK(ewb_mean(x, 0, NULL, 0, &y));
    e = fabs((double)(ewb_f32(y)[0] - ref / n) / (double)(ref / n));
    CHECK(e < 1e-6, "mean of 1e6: rel error %g", e);
    ewb_tensor_free(y);
    /* rows of 5e5 (last dim) and columns of 1000 rows (dim 0) */
    ewb_tensor *x2 = NULL, *x3 = NULL;
    OK(ewb_view(x, 2, s2, &x2));
    OK(ewb_view(x, 2, s3, &x3));
    int last = -1, first = 0;
    OK(ewb_sum(x2, 1, &last, 0, &y));
    for (int r = 0; r < 2 && y; r++) {
        long double rr = 0;
        for (int64_t i = 0; i < n / 2; i++) rr += p[r * (n / 2) + i];
        e = fabs((double)(ewb_f32(y)[r] - rr) / (double)rr);
        CHECK(e < 1e-6, "sum of row %d (5e5): rel error %g", r, e);
    }
    ewb_tensor_free(y);
    OK(ewb_sum(x3, 1, &first, 0, &y));
    double worst = 0;
    for (int64_t col = 0; col < 1000 && y; col++) {
        long double rr = 0;
        for (int64_t r = 0; r < n / 1000; r++) rr += p[r * 1000 + col];
        e = fabs((double)(ewb_f32(y)[col] - rr) / (double)rr);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-6, "column sums: rel error %g", worst);
    ewb_tensor_free(y);
    /* var of data with a large offset: two-pass stays accurate */
    int64_t sv[1] = {100000};
    ewb_tensor *v = NULL;
    OK(ewb_randn(&v, 1, sv));
    float *pv = ewb_f32(v);
    for (int64_t i = 0; i < sv[0]; i++) pv[i] = 1000.0f + pv[i];
    long double m = 0, q = 0;
    for (int64_t i = 0; i < sv[0]; i++) m += pv[i];
    m /= sv[0];
    for (int64_t i = 0; i < sv[0]; i++) q += (pv[i] - m) * (pv[i] - m);
    OK(ewb_var(v, 0, NULL, 1, 0, &y));
    e = fabs((double)(ewb_f32(y)[0] - q / (sv[0] - 1)) / (double)(q / (sv[0] - 1)));
    CHECK(e < 1e-5, "var with offset 1000: rel error %g", e);
    ewb_tensor_free(y);
    ewb_tensor_free(v); ewb_tensor_free(x2); ewb_tensor_free(x3); ewb_tensor_free(x);
}

static void test_max_min(void) {
    /* (2,4): ties resolve to the first index; NaN wins */
    float v[8] = {1, 5, 5, -2, 3, NAN, 7, -9};
    int64_t s[2] = {2, 4};
    ewb_tensor *x = from(2, s, v), *val = NULL, *idx = NULL, *am = NULL;
    OK(ewb_max(x, 1, 0, &val, &idx));
    if (val) {
        const int64_t *pi = ewb_tensor_data(idx);
        CHECK(idx->dtype == EWB_DTYPE_I64 && val->ndim == 1 && val->shape[0] == 2, "max shapes %s %s", ewb_s(val), ewb_s(idx));
        CHECK(ewb_f32(val)[0] == 5 && pi[0] == 1, "max row 0: %g at %lld", ewb_f32(val)[0], (long long)pi[0]);
        CHECK(isnan(ewb_f32(val)[1]) && pi[1] == 1, "max row 1 is NaN at 1: %g at %lld", ewb_f32(val)[1], (long long)pi[1]);
        ewb_tensor_free(val); ewb_tensor_free(idx);
    }
    OK(ewb_min(x, -1, 1, &val, &idx));
    if (val) {
        const int64_t *pi = ewb_tensor_data(idx);
        CHECK(val->ndim == 2 && val->shape[1] == 1, "min keepdim shape %s", ewb_s(val));
        CHECK(ewb_f32(val)[0] == -2 && pi[0] == 3 && isnan(ewb_f32(val)[1]) && pi[1] == 1, "min values/indices");
        ewb_tensor_free(val); ewb_tensor_free(idx);
    }
    OK(ewb_max(x, 0, 0, &val, &idx));
    if (val) {
        const int64_t *pi = ewb_tensor_data(idx);
        const float *pv = ewb_f32(val);
        CHECK(pv[0] == 3 && pi[0] == 1 && isnan(pv[1]) && pi[1] == 1, "max over dim 0 (cols 0,1: NaN wins)");
        CHECK(pv[2] == 7 && pi[2] == 1 && pv[3] == -2 && pi[3] == 0, "max over dim 0 (cols 2,3)");
        ewb_tensor_free(val); ewb_tensor_free(idx);
    }
    OK(ewb_argmax(x, 1, 0, &am));
    if (am) {
        const int64_t *pa = ewb_tensor_data(am);
        CHECK(am->dtype == EWB_DTYPE_I64 && pa[0] == 1 && pa[1] == 1, "argmax");
        ewb_tensor_free(am);
    }
    /* a larger case against a naive loop, over the middle dim */
    int64_t s3[3] = {5, 7, 6};
    ewb_tensor *y = T(3, s3);
    OK(ewb_max(y, 1, 0, &val, &idx));
    OK(ewb_argmax(y, -2, 1, &am));
    int bad = 0;
    for (int a = 0; a < 5 && val && am; a++)
        for (int c = 0; c < 6; c++) {
            double best = -INFINITY;
            int64_t bi = -1;
            for (int b = 0; b < 7; b++) {
                int64_t ix[3] = {a, b, c};
                double w;
                ewb_tensor_get(y, ix, &w);
                if (w > best) { best = w; bi = b; }
            }
            bad += ewb_f32(val)[a * 6 + c] != (float)best || ((int64_t *)ewb_tensor_data(idx))[a * 6 + c] != bi ||
                   ((int64_t *)ewb_tensor_data(am))[a * 6 + c] != bi;
        }
    CHECK(bad == 0, "max over the middle dim: %d wrong", bad);
    CHECK(am && am->ndim == 3 && am->shape[1] == 1, "argmax keepdim shape");
    ewb_tensor_free(val); ewb_tensor_free(idx); ewb_tensor_free(am); ewb_tensor_free(y);
    /* the gradient goes to the (first) argmax position only */
    float tv[4] = {2, 7, 7, 1};
    int64_t s4[1] = {4};
    ewb_tensor *t = from(1, s4, tv), *g = NULL;
    ewb_tensor_set_requires_grad(t, 1);
    OK(ewb_max(t, 0, 0, &val, &idx));
    OK(ewb_backward(val, NULL, 0));
    ewb_tensor_grad(t, &g);
    CHECK(g && ewb_f32(g)[0] == 0 && ewb_f32(g)[1] == 1 && ewb_f32(g)[2] == 0 && ewb_f32(g)[3] == 0, "max gradient at argmax");
    CHECK(idx && idx->grad_fn == NULL, "indices carry no gradient");
    ewb_tensor_free(g); ewb_tensor_free(val); ewb_tensor_free(idx); ewb_tensor_free(t);
    ewb_tensor_free(x);
}

static void test_logsumexp(void) {
    float v[9] = {1000, 1000, -INFINITY, -INFINITY, -INFINITY, -INFINITY, 0.5f, -1, 2};
    int64_t s[2] = {3, 3};
    ewb_tensor *x = from(2, s, v), *y = NULL;
    OK(ewb_logsumexp(x, 1, 0, &y));
    if (y) {
        const float *p = ewb_f32(y);
        double want = log(exp(0.5) + exp(-1) + exp(2));
        CHECK(fabs(p[0] - (1000 + log(2.0))) < 1e-3, "logsumexp(1000, 1000, -inf) = %g", p[0]);
        CHECK(isinf(p[1]) && p[1] < 0, "logsumexp of all -inf is -inf, got %g", p[1]);
        CHECK(fabs(p[2] - want) < 1e-6 * want, "logsumexp(0.5, -1, 2) = %g, want %g", p[2], want);
        ewb_tensor_free(y);
    }
    float w[2] = {INFINITY, 3};
    int64_t s2[1] = {2};
    ewb_tensor *z = from(1, s2, w);
    OK(ewb_logsumexp(z, 0, 1, &y));
    CHECK(y && y->ndim == 1 && isinf(ewb_f32(y)[0]) && ewb_f32(y)[0] > 0, "logsumexp with +inf is +inf");
    ewb_tensor_free(y);
    /* against the naive formula over dim 0 of a random (4,5) */
    int64_t s45[2] = {4, 5};
    ewb_tensor *r = T(2, s45);
    OK(ewb_logsumexp(r, 0, 0, &y));
    double worst = 0;
    for (int c = 0; c < 5 && y; c++) {
        double acc = 0;
        for (int k = 0; k < 4; k++) acc += exp(ewb_f32(r)[k * 5 + c]);
        double e = fabs(ewb_f32(y)[c] - log(acc)) / fabs(log(acc));
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-6, "logsumexp over dim 0: %g", worst);
    ewb_tensor_free(y); ewb_tensor_free(r); ewb_tensor_free(z); ewb_tensor_free(x);
}

/* ---- gradients ---- */
typedef struct { int op, nd, dims[3], c, keep; } red_ud; /* op 0..3 sum/mean/var/std, 4 max, 5 min, 6 logsumexp */
static int gc_red(ewb_tensor **in, ewb_tensor **out, void *ud) {
    const red_ud *u = ud;
    if (u->op < 4) return call_red(u->op, in[0], u->nd, u->dims, u->c, u->keep, out);
    if (u->op == 6) return ewb_logsumexp(in[0], u->dims[0], u->keep, out);
    ewb_tensor *idx = NULL;
    int rc = u->op == 4 ? ewb_max(in[0], u->dims[0], u->keep, out, &idx) : ewb_min(in[0], u->dims[0], u->keep, out, &idx);
    ewb_tensor_free(idx);
    return rc;
}

static void test_gradients(void) {
    int64_t s[3] = {2, 3, 4};
    red_ud cases[] = {
        {0, 0, {0}, 0, 0}, {0, 1, {-1}, 0, 0}, {0, 2, {0, 2}, 0, 1}, {0, 1, {1}, 0, 1}, {0, 2, {1, 0}, 0, 0},
        {1, 0, {0}, 0, 0}, {1, 1, {2}, 0, 1}, {1, 2, {0, 2}, 0, 0},
        {2, 0, {0}, 1, 0}, {2, 1, {-1}, 0, 1}, {2, 2, {0, 2}, 1, 0}, {2, 1, {1}, 1, 0},
        {3, 0, {0}, 1, 0}, {3, 1, {2}, 1, 1}, {3, 2, {2, 0}, 0, 0},
        {4, 1, {1}, 0, 0}, {4, 1, {-1}, 0, 1}, {5, 1, {0}, 0, 0},
        {6, 1, {-1}, 0, 0}, {6, 1, {1}, 0, 1}, {6, 1, {0}, 0, 0},
    };
    const char *names[7] = {"sum", "mean", "var", "std", "max", "min", "logsumexp"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ewb_tensor *in[1] = {T_req(3, s)};
        double e = gradcheck(names[cases[k].op], gc_red, 1, in, &cases[k], 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s case %zu (dims %d..., keepdim %d) gradcheck error %g", names[cases[k].op], k, cases[k].dims[0],
              cases[k].keep, e);
        ewb_tensor_free(in[0]);
    }
}

static void test_edges_and_errors(void) {
    int64_t s[2] = {2, 3}, s0[2] = {0, 3}, none[1] = {0};
    ewb_tensor *x = T(2, s), *y = NULL, *i = NULL, *e = NULL, *z = NULL;
    int d5 = 5, dd[2] = {1, -1}, d0 = 0;
    FAILS(ewb_sum(x, 1, &d5, 0, &y), "sum: dim 5 out of range for f32[2,3]");
    FAILS(ewb_mean(x, 2, dd, 0, &y), "mean: dim -1 appears twice");
    FAILS(ewb_max(x, -3, 0, &y, &i), "max: dim -3 out of range");
    FAILS(ewb_var(x, 0, NULL, -1, 0, &y), "var: correction must be >= 0");
    FAILS(ewb_logsumexp(NULL, 0, 0, &y), "logsumexp: tensor argument is nil");
    int64_t iv[6] = {1, 2, 3, 4, 5, 6};
    ewb_tensor *xi = NULL;
    OK(ewb_tensor_from_data(&xi, EWB_DTYPE_I64, 2, s, iv));
    FAILS(ewb_sum(xi, 0, NULL, 0, &y), "sum: expected an f32 tensor, got i64[2,3]");
    FAILS(ewb_argmax(xi, 0, 0, &y), "argmax: expected an f32 tensor");
    ewb_tensor_free(xi);
    /* empty: sum is 0, mean NaN, max an error */
    OK(ewb_tensor_new(&e, EWB_DTYPE_F32, 2, s0));
    OK(ewb_sum(e, 1, &d0, 0, &y));
    CHECK(y && y->ndim == 1 && y->shape[0] == 3 && ewb_f32(y)[0] == 0 && ewb_f32(y)[2] == 0, "sum over an empty dim is 0");
    ewb_tensor_free(y);
    OK(ewb_mean(e, 0, NULL, 0, &y));
    CHECK(y && y->ndim == 0 && isnan(ewb_f32(y)[0]), "mean of nothing is NaN");
    ewb_tensor_free(y);
    FAILS(ewb_max(e, 0, 0, &y, &i), "max: cannot reduce over dim 0 of size 0");
    /* 0-d input */
    OK(ewb_full(&z, EWB_DTYPE_F32, 0, none, 3.5));
    OK(ewb_sum(z, 0, NULL, 0, &y));
    CHECK(y && y->ndim == 0 && ewb_f32(y)[0] == 3.5f, "sum of a 0-d tensor");
    ewb_tensor_free(y);
    OK(ewb_max(z, 0, 0, &y, &i));
    CHECK(y && y->ndim == 0 && ewb_f32(y)[0] == 3.5f && ((int64_t *)ewb_tensor_data(i))[0] == 0, "max of a 0-d tensor");
    ewb_tensor_free(y); ewb_tensor_free(i);
    /* var of one element with correction 1 is NaN, as torch */
    int64_t s1[1] = {1};
    ewb_tensor *one = T(1, s1);
    OK(ewb_var(one, 0, NULL, 1, 0, &y));
    CHECK(y && isnan(ewb_f32(y)[0]), "var of one element, unbiased, is NaN");
    ewb_tensor_free(y);
    /* std backward where std = 0 gives 0, as torch */
    float cv[3] = {2, 2, 2};
    int64_t s3[1] = {3};
    ewb_tensor *c = from(1, s3, cv), *g = NULL;
    ewb_tensor_set_requires_grad(c, 1);
    OK(ewb_std(c, 0, NULL, 1, 0, &y));
    OK(ewb_backward(y, NULL, 0));
    ewb_tensor_grad(c, &g);
    CHECK(g && ewb_f32(g)[0] == 0 && ewb_f32(g)[2] == 0, "std gradient at std = 0");
    ewb_tensor_free(g); ewb_tensor_free(y); ewb_tensor_free(c);
    ewb_tensor_free(one); ewb_tensor_free(z); ewb_tensor_free(e); ewb_tensor_free(x);
}

static void bench(void) {
    int64_t n = 1 << 24, s[1] = {n}, s2[2] = {4096, 4096};
    ewb_tensor *x = NULL, *x2 = NULL, *y = NULL;
    OK(ewb_rand(&x, 1, s));
    OK(ewb_view(x, 2, s2, &x2));
    int last = -1, first = 0;
    const char *what[3] = {"all dims", "last dim of (4096,4096)", "dim 0 of (4096,4096)"};
    for (int k = 0; k < 3; k++) {
        double best = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = now();
            if (k == 0) OK(ewb_sum(x, 0, NULL, 0, &y));
            else OK(ewb_sum(x2, 1, k == 1 ? &last : &first, 0, &y));
            double dt = now() - t0;
            if (dt < best) best = dt;
            ewb_tensor_free(y);
        }
        fprintf(stderr, "sum over %s of 2^24 floats: %.2f ms (%.1f GB/s)\n", what[k], best * 1e3, 4.0 * n / best / 1e9);
    }
    ewb_tensor_free(x2);
    ewb_tensor_free(x);
}

int main(void) {
    ewb_manual_seed(3);
    test_subsets();
    test_accuracy();
    test_max_min();
    test_logsumexp();
    test_gradients();
    test_edges_and_errors();
    bench();
    return check_report();
}
