/* test_elementwise.c: kernels/elementwise.c. Forward against naive loops
 * (broadcast, same-shape fast path above the parallel threshold, strided
 * inputs), gradients against finite differences (broadcast and scalar ops),
 * torch's tie rule for maximum/minimum, comparisons over every dtype, integer
 * arithmetic, and error messages. */
#include "check.h"

static ewb_tensor *from(int nd, const int64_t *shape, const float *v) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, v)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static ewb_tensor *from_dt(int dt, int nd, const int64_t *shape, const void *v) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, dt, nd, shape, v)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}
static double at(const ewb_tensor *t, int64_t i0, int64_t i1, int64_t i2) {
    int64_t idx[3] = {i0, i1, i2};
    double v = NAN;
    ewb_tensor_get(t, idx, &v);
    return v;
}
/* a tensor whose entries are all >= lo in magnitude (for divisors) */
static ewb_tensor *away_from_zero(int nd, const int64_t *shape, float lo) {
    ewb_tensor *t = T(nd, shape);
    float *p = ewb_f32(t);
    for (int64_t i = 0; i < ewb_tensor_numel(t); i++) p[i] = p[i] >= 0 ? p[i] + lo : p[i] - lo;
    return t;
}

typedef int (*bin_fn)(ewb_tensor *, ewb_tensor *, ewb_tensor **);
typedef struct { const char *name; bin_fn f; double (*ref)(double, double); } binop;
static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }
static double r_max(double a, double b) { return a > b ? a : b; }
static double r_min(double a, double b) { return a < b ? a : b; }
static const binop OPS[] = {
    {"add", ewb_add, r_add}, {"sub", ewb_sub, r_sub}, {"mul", ewb_mul, r_mul},
    {"div", ewb_div, r_div}, {"maximum", ewb_maximum, r_max}, {"minimum", ewb_minimum, r_min},
};

static int gc_bin(ewb_tensor **in, ewb_tensor **out, void *ud) { return ((const binop *)ud)->f(in[0], in[1], out); }

/* (3,1,4) op (2,4) -> (3,2,4): every element against the naive formula */
static void test_broadcast_forward(void) {
    int64_t sa[3] = {3, 1, 4}, sb[2] = {2, 4};
    ewb_tensor *a = T(3, sa), *b = away_from_zero(2, sb, 0.5f);
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        ewb_tensor *c = NULL;
        OK(OPS[k].f(a, b, &c));
        if (!c) continue;
        CHECK(c->ndim == 3 && c->shape[0] == 3 && c->shape[1] == 2 && c->shape[2] == 4, "%s: shape %s", OPS[k].name, ewb_s(c));
        double worst = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++)
                for (int l = 0; l < 4; l++) {
                    int64_t ia[3] = {i, 0, l}, ib[2] = {j, l};
                    double va, vb;
                    ewb_tensor_get(a, ia, &va);
                    ewb_tensor_get(b, ib, &vb);
                    double e = fabs(at(c, i, j, l) - (float)OPS[k].ref(va, vb));
                    if (!(e <= worst)) worst = e;
                }
        CHECK(worst == 0, "%s broadcast forward: max error %g", OPS[k].name, worst);
        ewb_tensor_free(c);
    }
    ewb_tensor_free(a);
    ewb_tensor_free(b);
}

/* large contiguous same-shape (fast, parallel path) and a transposed operand
   (strided path) against a flat loop */
static void test_fast_and_strided(void) {
    int64_t n = 300007, s1[1] = {n};
    ewb_tensor *a = T(1, s1), *b = away_from_zero(1, s1, 0.25f);
    const float *pa = ewb_f32(a), *pb = ewb_f32(b);
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        ewb_tensor *c = NULL;
        OK(OPS[k].f(a, b, &c));
        if (!c) continue;
        const float *pc = ewb_f32(c);
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += pc[i] != (float)OPS[k].ref(pa[i], pb[i]);
        CHECK(bad == 0, "%s fast path: %lld wrong elements", OPS[k].name, (long long)bad);
        ewb_tensor_free(c);
    }
    /* x (5,7) transposed view (7,5) - y (7,5) */
    int64_t sx[2] = {5, 7}, sy[2] = {7, 5};
    ewb_tensor *x = T(2, sx), *y = T(2, sy), *xt = NULL, *c = NULL;
    OK(ewb_transpose(x, 0, 1, &xt));
    OK(ewb_sub(xt, y, &c));
    double worst = 0;
    for (int i = 0; i < 7; i++)
        for (int j = 0; j < 5; j++) {
            int64_t ix[2] = {j, i}, iy[2] = {i, j}, ic[2] = {i, j};
            double vx, vy, vc;
            ewb_tensor_get(x, ix, &vx);
            ewb_tensor_get(y, iy, &vy);
            ewb_tensor_get(c, ic, &vc);
            if (fabs(vc - (float)(vx - vy)) > worst) worst = fabs(vc - (float)(vx - vy));
        }
    CHECK(worst == 0, "strided sub: max error %g", worst);
    CHECK(ewb_tensor_is_contiguous(c), "output must be contiguous");
    ewb_tensor_free(x); ewb_tensor_free(y); ewb_tensor_free(xt); ewb_tensor_free(c);
    ewb_tensor_free(a);
    ewb_tensor_free(b);
}

static void test_gradients(void) {
    int64_t sa[3] = {3, 1, 4}, sb[2] = {2, 4}, s0[1] = {0};
    for (size_t k = 0; k < sizeof OPS / sizeof OPS[0]; k++) {
        /* broadcast both ways */
        ewb_tensor *in[2] = {T_req(3, sa), away_from_zero(2, sb, 0.5f)};
        ewb_tensor_set_requires_grad(in[1], 1);
        double e = gradcheck(OPS[k].name, gc_bin, 2, in, (void *)&OPS[k], 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s (3,1,4),(2,4) gradcheck error %g", OPS[k].name, e);
        ewb_tensor_free(in[0]);
        ewb_tensor_free(in[1]);
        /* same shape, and a 0-d right operand */
        ewb_tensor *ss[2] = {T_req(2, sb), away_from_zero(2, sb, 0.5f)};
        ewb_tensor_set_requires_grad(ss[1], 1);
        e = gradcheck(OPS[k].name, gc_bin, 2, ss, (void *)&OPS[k], 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s same-shape gradcheck error %g", OPS[k].name, e);
        ewb_tensor_free(ss[1]);
        ss[1] = away_from_zero(0, s0, 0.5f);
        ewb_tensor_set_requires_grad(ss[1], 1);
        e = gradcheck(OPS[k].name, gc_bin, 2, ss, (void *)&OPS[k], 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s (2,4),() gradcheck error %g", OPS[k].name, e);
        ewb_tensor_free(ss[0]);
        ewb_tensor_free(ss[1]);
    }
    /* x * x: both slots are the same leaf; d/dx = 2x */
    int64_t s3[1] = {3};
    float xv[3] = {1, -2, 3};
    ewb_tensor *x = from(1, s3, xv), *y = NULL, *s = NULL, *g = NULL;
    ewb_tensor_set_requires_grad(x, 1);
    OK(ewb_mul(x, x, &y));
    OK(ewb_sum(y, 0, NULL, 0, &s));
    OK(ewb_backward(s, NULL, 0));
    ewb_tensor_grad(x, &g);
    CHECK(g && ewb_f32(g)[0] == 2 && ewb_f32(g)[1] == -4 && ewb_f32(g)[2] == 6, "d(x*x)/dx should be 2x");
    ewb_tensor_free(g); ewb_tensor_free(s); ewb_tensor_free(y); ewb_tensor_free(x);
}

/* torch: maximum/minimum split the gradient in half on ties; NaN propagates */
static void test_ties_and_nan(void) {
    int64_t s3[1] = {3};
    float av[3] = {1, 2, 3}, bv[3] = {2, 2, 1};
    ewb_tensor *a = from(1, s3, av), *b = from(1, s3, bv), *m = NULL, *s = NULL, *ga = NULL, *gb = NULL;
    ewb_tensor_set_requires_grad(a, 1);
    ewb_tensor_set_requires_grad(b, 1);
    OK(ewb_maximum(a, b, &m));
    OK(ewb_sum(m, 0, NULL, 0, &s));
    OK(ewb_backward(s, NULL, 0));
    ewb_tensor_grad(a, &ga);
    ewb_tensor_grad(b, &gb);
    const float *pa = ewb_f32(ga), *pb = ewb_f32(gb);
    CHECK(pa[0] == 0 && pa[1] == 0.5f && pa[2] == 1, "maximum grad a: %g %g %g", pa[0], pa[1], pa[2]);
    CHECK(pb[0] == 1 && pb[1] == 0.5f && pb[2] == 0, "maximum grad b: %g %g %g", pb[0], pb[1], pb[2]);
    ewb_tensor_free(m); ewb_tensor_free(s); ewb_tensor_free(ga); ewb_tensor_free(gb);
    OK(ewb_minimum(a, b, &m));
    CHECK(ewb_f32(m)[0] == 1 && ewb_f32(m)[1] == 2 && ewb_f32(m)[2] == 1, "minimum values");
    ewb_tensor_free(m);
    ewb_tensor_free(a); ewb_tensor_free(b);
    float nv[3] = {NAN, 1, 5}, ov[3] = {0, NAN, 4};
    a = from(1, s3, nv);
    b = from(1, s3, ov);
    OK(ewb_maximum(a, b, &m));
    const float *pm = ewb_f32(m);
    CHECK(isnan(pm[0]) && isnan(pm[1]) && pm[2] == 5, "maximum must propagate NaN: %g %g %g", pm[0], pm[1], pm[2]);
    ewb_tensor_free(m);
    OK(ewb_minimum(a, b, &m));
    pm = ewb_f32(m);
    CHECK(isnan(pm[0]) && isnan(pm[1]) && pm[2] == 4, "minimum must propagate NaN: %g %g %g", pm[0], pm[1], pm[2]);
    ewb_tensor_free(m); ewb_tensor_free(a); ewb_tensor_free(b);
}

typedef struct { int kind; double s; } scalar_ud;
static int gc_scalar(ewb_tensor **in, ewb_tensor **out, void *ud) {
    const scalar_ud *u = ud;
    if (u->kind == 0) return ewb_add_scalar(in[0], u->s, out);
    if (u->kind == 1) return ewb_mul_scalar(in[0], u->s, out);
    return ewb_rdiv_scalar(in[0], u->s, out);
}

static void test_scalar_ops(void) {
    int64_t s4[1] = {4};
    float v[4] = {1, -2, 4, 0.5f};
    ewb_tensor *a = from(1, s4, v), *o = NULL;
    OK(ewb_add_scalar(a, 1.5, &o));
    CHECK(ewb_f32(o)[0] == 2.5f && ewb_f32(o)[1] == -0.5f && ewb_f32(o)[3] == 2.0f, "add_scalar values");
    ewb_tensor_free(o);
    OK(ewb_mul_scalar(a, -3, &o));
    CHECK(ewb_f32(o)[0] == -3 && ewb_f32(o)[1] == 6 && ewb_f32(o)[2] == -12, "mul_scalar values");
    ewb_tensor_free(o);
    OK(ewb_rdiv_scalar(a, 2, &o));
    CHECK(ewb_f32(o)[0] == 2 && ewb_f32(o)[1] == -1 && ewb_f32(o)[2] == 0.5f && ewb_f32(o)[3] == 4, "rdiv_scalar values");
    ewb_tensor_free(o);
    ewb_tensor_free(a);
    int64_t s23[2] = {2, 3};
    const char *names[3] = {"add_scalar", "mul_scalar", "rdiv_scalar"};
    for (int k = 0; k < 3; k++) {
        scalar_ud u = {k, k == 0 ? 0.7 : -1.3};
        ewb_tensor *in[1] = {away_from_zero(2, s23, 0.5f)};
        ewb_tensor_set_requires_grad(in[0], 1);
        double e = gradcheck(names[k], gc_scalar, 1, in, &u, 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s gradcheck error %g", names[k], e);
        ewb_tensor_free(in[0]);
    }
    /* strided input to a scalar op */
    ewb_tensor *x = T(2, s23), *xt = NULL;
    OK(ewb_transpose(x, 0, 1, &xt));
    OK(ewb_mul_scalar(xt, 2, &o));
    int64_t i21[2] = {2, 1}, i12[2] = {1, 2};
    double vo, vx;
    ewb_tensor_get(o, i21, &vo);
    ewb_tensor_get(x, i12, &vx);
    CHECK(vo == 2 * (float)vx, "mul_scalar of a transposed view: %g vs %g", vo, 2 * vx);
    ewb_tensor_free(o); ewb_tensor_free(xt); ewb_tensor_free(x);
}

static void test_compare(void) {
    int64_t s3[1] = {3}, s21[2] = {2, 1};
    float av[3] = {1, 2, 3}, bv[2] = {2, NAN};
    ewb_tensor *a = from(1, s3, av), *b = from(2, s21, bv), *c = NULL;
    /* a (3) vs b (2,1) -> (2,3); row 0 compares with 2, row 1 with NaN */
    static const uint8_t want[6][6] = {
        /* eq */ {0, 1, 0, 0, 0, 0}, /* ne */ {1, 0, 1, 1, 1, 1}, /* lt */ {1, 0, 0, 0, 0, 0},
        /* le */ {1, 1, 0, 0, 0, 0}, /* gt */ {0, 0, 1, 0, 0, 0}, /* ge */ {0, 1, 1, 0, 0, 0}};
    for (int op = 0; op < 6; op++) {
        OK(ewb_compare(a, b, op, &c));
        if (!c) continue;
        CHECK(c->dtype == EWB_DTYPE_BOOL && c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 3, "compare shape %s", ewb_s(c));
        CHECK(!memcmp(ewb_tensor_data(c), want[op], 6), "compare op %d values", op);
        CHECK(c->grad_fn == NULL, "comparisons are not differentiable");
        ewb_tensor_free(c);
    }
    /* compare_scalar: the scalar takes the tensor's dtype (0.1f == 0.1 as in torch) */
    float tv[3] = {0.1f, 0.2f, 0.3f};
    ewb_tensor *t = from(1, s3, tv);
    OK(ewb_compare_scalar(t, 0.1, 0, &c));
    const uint8_t *pc = ewb_tensor_data(c);
    CHECK(pc[0] == 1 && pc[1] == 0 && pc[2] == 0, "compare_scalar eq 0.1");
    ewb_tensor_free(c);
    OK(ewb_compare_scalar(t, 0.2, 5, &c));
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 0 && pc[1] == 1 && pc[2] == 1, "compare_scalar ge 0.2");
    ewb_tensor_free(c);
    /* integer, bool and mixed dtypes */
    int64_t iv[3] = {-1, 5, (int64_t)1 << 60};
    int32_t jv[3] = {-1, 6, 7};
    uint8_t bo[3] = {1, 0, 1};
    ewb_tensor *i64 = from_dt(EWB_DTYPE_I64, 1, s3, iv), *i32 = from_dt(EWB_DTYPE_I32, 1, s3, jv),
               *bl = from_dt(EWB_DTYPE_BOOL, 1, s3, bo);
    OK(ewb_compare(i64, i32, 2, &c));
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 0 && pc[1] == 1 && pc[2] == 0, "i64 < i32");
    ewb_tensor_free(c);
    OK(ewb_compare(i64, a, 4, &c)); /* i64 > f32 */
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 0 && pc[1] == 1 && pc[2] == 1, "i64 > f32");
    ewb_tensor_free(c);
    OK(ewb_compare_scalar(i32, 5.5, 2, &c));
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 1 && pc[1] == 0 && pc[2] == 0, "i32 < 5.5");
    ewb_tensor_free(c);
    OK(ewb_compare_scalar(bl, 1, 0, &c));
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 1 && pc[1] == 0 && pc[2] == 1, "bool == 1");
    ewb_tensor_free(c);
    /* logical_not on every dtype */
    ewb_tensor *ins[4] = {bl, i32, i64, t};
    static const uint8_t wantn[4][3] = {{0, 1, 0}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    for (int k = 0; k < 4; k++) {
        OK(ewb_logical_not(ins[k], &c));
        if (!c) continue;
        CHECK(c->dtype == EWB_DTYPE_BOOL && !memcmp(ewb_tensor_data(c), wantn[k], 3), "logical_not of %s", ewb_s(ins[k]));
        ewb_tensor_free(c);
    }
    float zv[3] = {0, -0.0f, 2};
    ewb_tensor *z = from(1, s3, zv);
    OK(ewb_logical_not(z, &c));
    pc = ewb_tensor_data(c);
    CHECK(pc[0] == 1 && pc[1] == 1 && pc[2] == 0, "logical_not of 0, -0, 2");
    ewb_tensor_free(c); ewb_tensor_free(z);
    FAILS(ewb_compare(a, b, 6, &c), "unknown comparison");
    int64_t s4[1] = {4};
    ewb_tensor *d = T(1, s4);
    FAILS(ewb_compare(a, d, 0, &c), "do not broadcast");
    ewb_tensor_free(d);
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(t);
    ewb_tensor_free(i64); ewb_tensor_free(i32); ewb_tensor_free(bl);
}

static void test_integer_arith(void) {
    int64_t s3[1] = {3}, s21[2] = {2, 1};
    int64_t av[3] = {1, 2, INT64_MAX}, bv[2] = {10, -1};
    ewb_tensor *a = from_dt(EWB_DTYPE_I64, 1, s3, av), *b = from_dt(EWB_DTYPE_I64, 2, s21, bv), *c = NULL;
    OK(ewb_add(a, b, &c));
    if (c) {
        const int64_t *p = ewb_tensor_data(c);
        CHECK(c->dtype == EWB_DTYPE_I64 && p[0] == 11 && p[1] == 12 && p[3] == 0 && p[5] == INT64_MAX - 1, "i64 add broadcast");
        CHECK(p[2] == INT64_MIN + 9, "i64 add wraps like torch: %lld", (long long)p[2]);
        ewb_tensor_free(c);
    }
    OK(ewb_maximum(a, b, &c));
    if (c) {
        const int64_t *p = ewb_tensor_data(c);
        CHECK(p[0] == 10 && p[2] == INT64_MAX && p[3] == 1, "i64 maximum");
        ewb_tensor_free(c);
    }
    OK(ewb_add_scalar(a, -1, &c));
    if (c) { CHECK(((int64_t *)ewb_tensor_data(c))[1] == 1 && c->dtype == EWB_DTYPE_I64, "i64 add_scalar"); ewb_tensor_free(c); }
    int32_t jv[3] = {1, -2, 3};
    ewb_tensor *j = from_dt(EWB_DTYPE_I32, 1, s3, jv);
    OK(ewb_mul_scalar(j, 3, &c));
    if (c) { CHECK(((int32_t *)ewb_tensor_data(c))[1] == -6 && c->dtype == EWB_DTYPE_I32, "i32 mul_scalar"); ewb_tensor_free(c); }
    OK(ewb_neg(j, &c));
    if (c) { CHECK(((int32_t *)ewb_tensor_data(c))[2] == -3, "i32 neg"); ewb_tensor_free(c); }
    FAILS(ewb_mul_scalar(j, 0.5, &c), "not an integer");
    FAILS(ewb_add(a, j, &c), "dtypes differ");
    FAILS(ewb_div(a, a, &c), "div: expected f32");
    FAILS(ewb_rdiv_scalar(a, 1, &c), "rdiv_scalar: expected an f32");
    uint8_t bo[3] = {1, 0, 1};
    ewb_tensor *bl = from_dt(EWB_DTYPE_BOOL, 1, s3, bo);
    FAILS(ewb_add(bl, bl, &c), "add: expected f32");
    FAILS(ewb_add_scalar(bl, 1, &c), "add_scalar: expected an f32");
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(j); ewb_tensor_free(bl);
}

static void test_errors(void) {
    int64_t s23[2] = {2, 3}, s4[1] = {4};
    ewb_tensor *a = T(2, s23), *b = T(1, s4), *c = NULL;
    FAILS(ewb_add(a, b, &c), "add: shapes f32[2,3] and f32[4] do not broadcast");
    FAILS(ewb_mul(a, b, &c), "mul: shapes");
    FAILS(ewb_maximum(a, NULL, &c), "maximum: tensor argument is nil");
    ewb_tensor *d = T(1, s4);
    ewb_tensor_dispose(d);
    FAILS(ewb_sub(b, d, &c), "sub: tensor was freed");
    FAILS(ewb_add_scalar(d, 1, &c), "add_scalar: tensor was freed");
    ewb_tensor_free(d);
    /* no graph unless an input requires grad */
    OK(ewb_add(a, a, &c));
    CHECK(c && c->grad_fn == NULL && !c->requires_grad, "no grad_fn without requires_grad");
    ewb_tensor_free(c);
    ewb_tensor_free(a);
    ewb_tensor_free(b);
}

int main(void) {
    ewb_manual_seed(7);
    test_broadcast_forward();
    test_fast_and_strided();
    test_gradients();
    test_ties_and_nan();
    test_scalar_ops();
    test_compare();
    test_integer_arith();
    test_errors();
    return check_report();
}
