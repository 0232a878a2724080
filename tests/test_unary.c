/* test_unary.c: kernels/unary.c. The oneDNN eltwise path against its naive
 * twin (normalised error < 1e-5, forward and backward, small and large),
 * the twin against closed-form values, gradients of every op against finite
 * differences, clamp/pow edge cases as torch defines them, and errors. */
#include "check.h"
#include "../kernels/unary.h"

static ewb_tensor *from(int nd, const int64_t *shape, const float *v) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, v)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}

static const char *KIND_NAME[EWB_UN_COUNT] = {"relu", "gelu_erf", "gelu_tanh", "tanh", "sigmoid", "exp", "silu", "sqrt", "abs"};

/* oneDNN vs naive twin on n values spread over [-6, 6] (sqrt: (0, 6]) */
static void test_dnnl_vs_ref(int64_t n) {
    int64_t s[1] = {n};
    ewb_tensor *x = T(1, s), *dy = T(1, s), *y1 = T(1, s), *y2 = T(1, s);
    float *px = ewb_f32(x);
    for (int k = 0; k < EWB_UN_COUNT; k++) {
        for (int64_t i = 0; i < n; i++) px[i] = -6.0f + 12.0f * (float)(i * 7919 % n) / (float)n;
        if (k == EWB_UN_SQRT)
            for (int64_t i = 0; i < n; i++) px[i] = fabsf(px[i]) + 0.05f;
        OK(ewb_unary_dnnl_fwd(k, px, ewb_f32(y1), n));
        ewb_unary_ref_fwd(k, px, ewb_f32(y2), n);
        double e = max_rel_err(y1, y2);
        CHECK(e < 1e-5, "%s forward n=%lld: oneDNN vs naive %g", KIND_NAME[k], (long long)n, e);
        OK(ewb_unary_dnnl_bwd(k, px, ewb_f32(dy), ewb_f32(y1), n));
        ewb_unary_ref_bwd(k, px, ewb_f32(dy), ewb_f32(y2), n);
        e = max_rel_err(y1, y2);
        CHECK(e < 1e-5, "%s backward n=%lld: oneDNN vs naive %g", KIND_NAME[k], (long long)n, e);
    }
    ewb_tensor_free(x); ewb_tensor_free(dy); ewb_tensor_free(y1); ewb_tensor_free(y2);
}

/* the naive twin against values computed by hand / with torch's formulas */
static void test_ref_values(void) {
    float x[3] = {-1.0f, 0.0f, 1.0f}, y[3], g[3], one[3] = {1, 1, 1};
    struct { int k; double y[3]; double dy[3]; } cases[] = {
        {EWB_UN_RELU, {0, 0, 1}, {0, 0, 1}},
        {EWB_UN_GELU_ERF, {-0.15865525393145707, 0, 0.8413447460685429}, {-0.08331547058768629, 0.5, 1.0833154705876864}},
        {EWB_UN_GELU_TANH, {-0.15880800939172324, 0, 0.8411919906082768}, {-0.08296408384578255, 0.5, 1.0829640838457826}},
        {EWB_UN_TANH, {-0.7615941559557649, 0, 0.7615941559557649}, {0.41997434161402614, 1, 0.41997434161402614}},
        {EWB_UN_SIGMOID, {0.2689414213699951, 0.5, 0.7310585786300049}, {0.19661193324148185, 0.25, 0.19661193324148185}},
        {EWB_UN_EXP, {0.36787944117144233, 1, 2.718281828459045}, {0.36787944117144233, 1, 2.718281828459045}},
        {EWB_UN_SILU, {-0.2689414213699951, 0, 0.7310585786300049}, {0.07232948812851325, 0.5, 0.9276705118714867}},
        {EWB_UN_ABS, {1, 0, 1}, {-1, 0, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ewb_unary_ref_fwd(cases[c].k, x, y, 3);
        ewb_unary_ref_bwd(cases[c].k, x, one, g, 3);
        for (int i = 0; i < 3; i++) {
            CHECK(fabs(y[i] - cases[c].y[i]) < 1e-6, "%s(%g) = %g, want %.9g", KIND_NAME[cases[c].k], x[i], y[i], cases[c].y[i]);
            CHECK(fabs(g[i] - cases[c].dy[i]) < 1e-6, "%s'(%g) = %g, want %.9g", KIND_NAME[cases[c].k], x[i], g[i], cases[c].dy[i]);
        }
    }
    float xs[2] = {4, 0.25f};
    ewb_unary_ref_fwd(EWB_UN_SQRT, xs, y, 2);
    ewb_unary_ref_bwd(EWB_UN_SQRT, xs, one, g, 2);
    CHECK(y[0] == 2 && y[1] == 0.5f && g[0] == 0.25f && g[1] == 1, "sqrt twin: %g %g %g %g", y[0], y[1], g[0], g[1]);
}

/* ---- every public op: forward against libm / the twin, and gradcheck ---- */
typedef struct { const char *name; int kind; double p, q; } un_case; /* kind: 0..8 twin kinds, or one of below */
enum { K_NEG = 100, K_LOG, K_RSQRT, K_POW, K_CLAMP, K_SIN, K_COS };

static int call(const un_case *c, ewb_tensor *a, ewb_tensor **out) {
    switch (c->kind) {
    case EWB_UN_RELU: return ewb_relu(a, out);
    case EWB_UN_GELU_ERF: return ewb_gelu(a, 0, out);
    case EWB_UN_GELU_TANH: return ewb_gelu(a, 1, out);
    case EWB_UN_TANH: return ewb_tanh(a, out);
    case EWB_UN_SIGMOID: return ewb_sigmoid(a, out);
    case EWB_UN_EXP: return ewb_exp(a, out);
    case EWB_UN_SILU: return ewb_silu(a, out);
    case EWB_UN_SQRT: return ewb_sqrt(a, out);
    case EWB_UN_ABS: return ewb_abs(a, out);
    case K_NEG: return ewb_neg(a, out);
    case K_LOG: return ewb_log(a, out);
    case K_RSQRT: return ewb_rsqrt(a, out);
    case K_POW: return ewb_pow(a, c->p, out);
    case K_CLAMP: return ewb_clamp(a, c->p, c->q, out);
    case K_SIN: return ewb_sin(a, out);
    default: return ewb_cos(a, out);
    }
}
static double closed(const un_case *c, double x) {
    switch (c->kind) {
    case K_NEG: return -x;
    case K_LOG: return log(x);
    case K_RSQRT: return 1 / sqrt(x);
    case K_POW: return pow(x, c->p);
    case K_CLAMP: return x < c->p ? c->p : x > c->q ? c->q : x;
    case K_SIN: return sin(x);
    case K_COS: return cos(x);
    default: { float xf = (float)x, y; ewb_unary_ref_fwd(c->kind, &xf, &y, 1); return y; }
    }
}
static int positive_only(const un_case *c) {
    return c->kind == EWB_UN_SQRT || c->kind == K_LOG || c->kind == K_RSQRT || (c->kind == K_POW && c->p != floor(c->p));
}
static int gc_un(ewb_tensor **in, ewb_tensor **out, void *ud) { return call(ud, in[0], out); }

static const un_case CASES[] = {
    {"relu", EWB_UN_RELU, 0, 0}, {"gelu", EWB_UN_GELU_ERF, 0, 0}, {"gelu_tanh", EWB_UN_GELU_TANH, 0, 0},
    {"tanh", EWB_UN_TANH, 0, 0}, {"sigmoid", EWB_UN_SIGMOID, 0, 0}, {"exp", EWB_UN_EXP, 0, 0},
    {"silu", EWB_UN_SILU, 0, 0}, {"sqrt", EWB_UN_SQRT, 0, 0}, {"abs", EWB_UN_ABS, 0, 0},
    {"neg", K_NEG, 0, 0}, {"log", K_LOG, 0, 0}, {"rsqrt", K_RSQRT, 0, 0},
    {"pow2", K_POW, 2, 0}, {"pow3", K_POW, 3, 0}, {"pow0.5", K_POW, 0.5, 0}, {"pow-1.5", K_POW, -1.5, 0},
    {"clamp", K_CLAMP, -0.5, 0.7}, {"clamp_lo", K_CLAMP, -0.3, INFINITY}, {"clamp_hi", K_CLAMP, -INFINITY, 0.2},
    {"sin", K_SIN, 0, 0}, {"cos", K_COS, 0, 0},
};

static void test_ops(void) {
    int64_t s[2] = {3, 5}, st[2] = {5, 3};
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
        const un_case *u = &CASES[c];
        ewb_tensor *x = T(2, s);
        float *px = ewb_f32(x);
        for (int i = 0; i < 15; i++) {
            if (positive_only(u)) px[i] = fabsf(px[i]) + 0.3f;
            /* keep finite differences away from kinks (0 for relu/abs, the clamp bounds) */
            if (fabsf(px[i]) < 0.05f) px[i] += 0.1f;
            if (u->kind == K_CLAMP && (fabs(px[i] - u->p) < 0.01 || fabs(px[i] - u->q) < 0.01)) px[i] += 0.05f;
        }
        ewb_tensor *y = NULL;
        OK(call(u, x, &y));
        if (!y) { ewb_tensor_free(x); continue; }
        double worst = 0;
        for (int i = 0; i < 15; i++) {
            double want = closed(u, px[i]), e = fabs(ewb_f32(y)[i] - want) / (fabs(want) + 1e-6);
            if (!(e <= worst)) worst = e;
        }
        CHECK(worst < 2e-6, "%s forward vs closed form: %g", u->name, worst);
        ewb_tensor_free(y);
        /* a transposed (strided) input gives the transposed result */
        ewb_tensor *xt = NULL, *yt = NULL;
        OK(ewb_transpose(x, 0, 1, &xt));
        OK(call(u, xt, &yt));
        if (yt) {
            CHECK(yt->shape[0] == st[0] && yt->shape[1] == st[1], "%s strided shape", u->name);
            int64_t i21[2] = {2, 1};
            double a, b;
            ewb_tensor_get(yt, i21, &a);
            b = closed(u, px[1 * 5 + 2]);
            CHECK(fabs(a - b) <= 2e-6 * (fabs(b) + 1e-6), "%s of a transposed view: %g vs %g", u->name, a, b);
        }
        ewb_tensor_free(xt); ewb_tensor_free(yt);
        ewb_tensor_set_requires_grad(x, 1);
        ewb_tensor *in[1] = {x};
        double e = gradcheck(u->name, gc_un, 1, in, (void *)u, 1e-3, 1e-2);
        CHECK(e < 1e-2, "%s gradcheck error %g", u->name, e);
        ewb_tensor_free(x);
    }
}

/* public ops run the oneDNN path: on a big tensor (parallel path) they match the twin */
static void test_ops_large(void) {
    int64_t n = 200003, s[1] = {n};
    ewb_tensor *x = T(1, s), *ref = T(1, s);
    for (int k = 0; k < EWB_UN_COUNT; k++) {
        un_case u = {KIND_NAME[k], k, 0, 0};
        ewb_tensor *xin = x, *y = NULL;
        if (k == EWB_UN_SQRT) OK(ewb_abs(x, &xin));
        OK(call(&u, xin, &y));
        ewb_unary_ref_fwd(k, ewb_f32(xin), ewb_f32(ref), n);
        double e = y ? max_rel_err(y, ref) : INFINITY;
        CHECK(e < 1e-5, "%s on %lld elements vs naive: %g", KIND_NAME[k], (long long)n, e);
        ewb_tensor_free(y);
        if (xin != x) ewb_tensor_free(xin);
    }
    ewb_tensor_free(x);
    ewb_tensor_free(ref);
}

static void backward_of(const un_case *u, const float *xv, int n, float *grad) {
    int64_t s[1] = {n};
    ewb_tensor *x = from(1, s, xv), *y = NULL, *l = NULL, *g = NULL;
    ewb_tensor_set_requires_grad(x, 1);
    OK(call(u, x, &y));
    OK(ewb_sum(y, 0, NULL, 0, &l));
    OK(ewb_backward(l, NULL, 0));
    ewb_tensor_grad(x, &g);
    if (g) memcpy(grad, ewb_f32(g), sizeof(float) * n);
    ewb_tensor_free(g); ewb_tensor_free(l); ewb_tensor_free(y); ewb_tensor_free(x);
}

/* edge cases as torch defines them */
static void test_edges(void) {
    float xv[5] = {-2, -0.5f, 0.25f, 0.5f, 2}, g[5], *yv;
    un_case cl = {"clamp", K_CLAMP, -0.5, 0.5};
    backward_of(&cl, xv, 5, g);
    CHECK(g[0] == 0 && g[1] == 1 && g[2] == 1 && g[3] == 1 && g[4] == 0,
          "clamp grad: 0 outside, 1 inside and on the bounds: %g %g %g %g %g", g[0], g[1], g[2], g[3], g[4]);
    int64_t s5[1] = {5};
    ewb_tensor *x = from(1, s5, xv), *y = NULL;
    OK(ewb_clamp(x, -INFINITY, INFINITY, &y));
    CHECK(y && !memcmp(ewb_f32(y), xv, sizeof xv), "clamp(-inf, inf) is the identity");
    ewb_tensor_free(y);
    OK(ewb_clamp(x, 1, -1, &y)); /* lo > hi: everything becomes hi, as torch */
    yv = ewb_f32(y);
    CHECK(yv[0] == -1 && yv[2] == -1 && yv[4] == -1, "clamp with lo > hi gives hi");
    ewb_tensor_free(y);
    FAILS(ewb_clamp(x, NAN, 1, &y), "clamp: bounds must not be NaN");
    un_case p0 = {"pow0", K_POW, 0, 0};
    backward_of(&p0, xv, 5, g);
    CHECK(g[0] == 0 && g[2] == 0 && g[4] == 0, "pow(x, 0) has zero gradient");
    OK(ewb_pow(x, 0, &y));
    CHECK(ewb_f32(y)[0] == 1 && ewb_f32(y)[3] == 1, "pow(x, 0) = 1");
    ewb_tensor_free(y);
    float zv[3] = {0, -3, 3};
    un_case rl = {"relu", EWB_UN_RELU, 0, 0}, ab = {"abs", EWB_UN_ABS, 0, 0};
    backward_of(&rl, zv, 3, g);
    CHECK(g[0] == 0 && g[1] == 0 && g[2] == 1, "relu'(0) = 0 as torch");
    backward_of(&ab, zv, 3, g);
    CHECK(g[0] == 0 && g[1] == -1 && g[2] == 1, "abs'(0) = 0 as torch");
    float nv[2] = {NAN, 1};
    int64_t s2[1] = {2};
    ewb_tensor *xn = from(1, s2, nv);
    OK(ewb_clamp(xn, -1, 0.5, &y));
    CHECK(isnan(ewb_f32(y)[0]) && ewb_f32(y)[1] == 0.5f, "clamp keeps NaN");
    ewb_tensor_free(y);
    ewb_tensor_free(xn);
    /* extreme inputs stay finite where the function is */
    float big[4] = {-100, 100, -1e30f, 1e30f};
    int64_t s4[1] = {4};
    ewb_tensor *xb = from(1, s4, big);
    OK(ewb_sigmoid(xb, &y));
    yv = ewb_f32(y);
    CHECK(yv[0] >= 0 && yv[0] < 1e-30 && yv[1] == 1 && yv[2] == 0 && yv[3] == 1, "sigmoid saturates: %g %g", yv[0], yv[1]);
    ewb_tensor_free(y);
    OK(ewb_tanh(xb, &y));
    yv = ewb_f32(y);
    CHECK(yv[0] == -1 && yv[1] == 1 && yv[2] == -1 && yv[3] == 1, "tanh saturates");
    ewb_tensor_free(y);
    ewb_tensor_free(xb);
    ewb_tensor_free(x);
    /* empty tensors */
    int64_t s0[2] = {0, 3};
    ewb_tensor *e = NULL;
    OK(ewb_tensor_new(&e, EWB_DTYPE_F32, 2, s0));
    OK(ewb_gelu(e, 0, &y));
    CHECK(y && ewb_tensor_numel(y) == 0 && y->shape[1] == 3, "gelu of an empty tensor");
    ewb_tensor_free(y);
    ewb_tensor_free(e);
}

static void test_errors(void) {
    int64_t s3[1] = {3};
    int64_t iv[3] = {1, 2, 3};
    ewb_tensor *i = NULL, *y = NULL;
    OK(ewb_tensor_from_data(&i, EWB_DTYPE_I64, 1, s3, iv));
    FAILS(ewb_exp(i, &y), "exp: expected an f32 tensor, got i64[3]");
    FAILS(ewb_relu(i, &y), "relu: expected an f32 tensor");
    FAILS(ewb_gelu(i, 1, &y), "gelu: expected an f32 tensor");
    FAILS(ewb_pow(i, 2, &y), "pow: expected an f32 tensor");
    FAILS(ewb_clamp(i, 0, 1, &y), "clamp: expected an f32 tensor");
    FAILS(ewb_sin(NULL, &y), "sin: tensor argument is nil");
    FAILS(ewb_unary_dnnl_fwd(99, NULL, NULL, 1), "unknown oneDNN function");
    ewb_tensor *b = NULL;
    uint8_t bv[3] = {1, 0, 1};
    OK(ewb_tensor_from_data(&b, EWB_DTYPE_BOOL, 1, s3, bv));
    FAILS(ewb_neg(b, &y), "neg: expected an f32, i32 or i64 tensor, got bool[3]");
    ewb_tensor_free(b);
    ewb_tensor_free(i);
}

int main(void) {
    ewb_manual_seed(11);
    test_dnnl_vs_ref(1000);
    test_dnnl_vs_ref(100003);
    test_ref_values();
    test_ops();
    test_ops_large();
    test_edges();
    test_errors();
    return check_report();
}
