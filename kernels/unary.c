/* unary.c: elementwise math of one f32 tensor, forward and backward.
 *
 * relu, gelu (erf and tanh forms), tanh, sigmoid, exp, silu, sqrt and abs run
 * on oneDNN eltwise primitives (the backward primitive takes the forward's
 * descriptor as hint). Eltwise ignores the shape, so the input is seen as a
 * 1-D array and primitives are cached by (function, element count). The
 * naive twins in ewb_unary_ref_* are torch's formulas in plain C, used by
 * tests only. neg, log, rsqrt, pow, clamp, sin and cos are plain C loops.
 * Up to SERIAL_MAX elements (a decode step's 1 x 1536 GELU) the primitive
 * runs on the calling thread alone: waking the other OpenMP threads costs
 * more than the work, and on a loaded machine it waits for them to be
 * scheduled. Same primitive, same numbers.
 * Backward functions accumulate into the input's gradient. */
#include "unary.h"
#include "dnnl.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { PAR_MIN = 1 << 15, SERIAL_MAX = 1 << 14 };

/* ---------------- oneDNN path ---------------- */
static const dnnl_alg_kind_t un_alg[EWB_UN_COUNT] = {
    dnnl_eltwise_relu, dnnl_eltwise_gelu_erf, dnnl_eltwise_gelu_tanh, dnnl_eltwise_tanh, dnnl_eltwise_logistic,
    dnnl_eltwise_exp, dnnl_eltwise_swish, dnnl_eltwise_sqrt, dnnl_eltwise_abs};
static const char *un_name[EWB_UN_COUNT] = {"relu", "gelu", "gelu", "tanh", "sigmoid", "exp", "silu", "sqrt", "abs"};
/* alpha: relu's negative slope (0); swish's beta (1, which makes it silu) */
static const float un_alpha[EWB_UN_COUNT] = {0, 0, 0, 0, 0, 0, 1, 0, 0};

static int md_1d(dnnl_memory_desc_t *md, int64_t n) {
    int64_t one = 1;
    return ewb_dnnl_check(ewb_md_dims(md, 1, &n, &one), "eltwise", "memory descriptor");
}

static ewb_prim *eltwise_prim(int kind, int64_t n, int backward) {
    ewb_key key = {.n = 0};
    ewb_key_str(&key, backward ? "eltwise_bwd" : "eltwise_fwd");
    ewb_key_int(&key, kind);
    ewb_key_int(&key, n);
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (p) return p;
    const char *op = un_name[kind];
    ewb_prim *hint = backward ? eltwise_prim(kind, n, 0) : NULL;
    if (backward && !hint) return NULL;
    dnnl_memory_desc_t md;
    dnnl_eltwise_desc_t desc;
    if (md_1d(&md, n)) return NULL;
    dnnl_status_t s = backward ? dnnl_eltwise_backward_desc_init(&desc, un_alg[kind], &md, &md, un_alpha[kind], 0.f)
                               : dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_training, un_alg[kind], &md,
                                                                un_alpha[kind], 0.f);
    if (ewb_dnnl_check(s, op, "eltwise descriptor")) return NULL;
    dnnl_primitive_attr_t attr = ewb_attr_new(0);
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &desc, attr, ewb_dnnl_engine(), hint ? hint->pd : NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ewb_dnnl_check(s, op, "eltwise primitive descriptor")) return NULL;
    return ewb_prim_put(key.buf, key.n, pd, op);
}

int ewb_unary_dnnl_fwd(int kind, const float *x, float *y, int64_t n) {
    if (kind < 0 || kind >= EWB_UN_COUNT) return ewb_error("unary: unknown oneDNN function %d", kind);
    if (n == 0) return 0;
    ewb_prim *p = eltwise_prim(kind, n, 0);
    if (!p) return -1;
    int kinds[2] = {DNNL_ARG_SRC, DNNL_ARG_DST};
    void *ptrs[2] = {(void *)x, y};
    if (n > SERIAL_MAX) return ewb_prim_exec(p, un_name[kind], 2, kinds, ptrs);
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    int rc = ewb_prim_exec(p, un_name[kind], 2, kinds, ptrs);
    omp_set_num_threads(nt);
    return rc;
}

int ewb_unary_dnnl_bwd(int kind, const float *x, const float *dy, float *dx, int64_t n) {
    if (kind < 0 || kind >= EWB_UN_COUNT) return ewb_error("unary: unknown oneDNN function %d", kind);
    if (n == 0) return 0;
    ewb_prim *p = eltwise_prim(kind, n, 1);
    if (!p) return -1;
    int kinds[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    void *ptrs[3] = {(void *)x, (void *)dy, dx};
    return ewb_prim_exec(p, un_name[kind], 3, kinds, ptrs);
}

/* ---------------- naive twins (torch's formulas, in double) ---------------- */
static const double SQRT1_2 = 0.70710678118654752440, INV_SQRT_2PI = 0.39894228040143267794,
                    GELU_BETA = 0.79788456080286535588 /* sqrt(2/pi) */, GELU_KAPPA = 0.044715;

static double sigmoid_d(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double ref_f(int kind, double x) {
    switch (kind) {
    case EWB_UN_RELU: return x > 0 ? x : 0;
    case EWB_UN_GELU_ERF: return 0.5 * x * (1.0 + erf(x * SQRT1_2));
    case EWB_UN_GELU_TANH: return 0.5 * x * (1.0 + tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x)));
    case EWB_UN_TANH: return tanh(x);
    case EWB_UN_SIGMOID: return sigmoid_d(x);
    case EWB_UN_EXP: return exp(x);
    case EWB_UN_SILU: return x * sigmoid_d(x);
    case EWB_UN_SQRT: return sqrt(x);
    default: return fabs(x);
    }
}

static double ref_df(int kind, double x) {
    switch (kind) {
    case EWB_UN_RELU: return x > 0 ? 1 : 0;
    case EWB_UN_GELU_ERF: return 0.5 * (1.0 + erf(x * SQRT1_2)) + x * INV_SQRT_2PI * exp(-0.5 * x * x);
    case EWB_UN_GELU_TANH: {
        double t = tanh(GELU_BETA * (x + GELU_KAPPA * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * x * x);
    }
    case EWB_UN_TANH: { double t = tanh(x); return 1.0 - t * t; }
    case EWB_UN_SIGMOID: { double s = sigmoid_d(x); return s * (1.0 - s); }
    case EWB_UN_EXP: return exp(x);
    case EWB_UN_SILU: { double s = sigmoid_d(x); return s * (1.0 + x * (1.0 - s)); }
    case EWB_UN_SQRT: return 0.5 / sqrt(x);
    default: return x > 0 ? 1 : x < 0 ? -1 : 0;
    }
}

void ewb_unary_ref_fwd(int kind, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)ref_f(kind, x[i]);
}
void ewb_unary_ref_bwd(int kind, const float *x, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] = (float)(ref_df(kind, x[i]) * dy[i]);
}

/* ---------------- oneDNN-backed ops ---------------- */
static int eltwise_backward(ewb_node *n) { /* saved[0] = input (contiguous), iarg[0] = kind */
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (!ga) return 0;
    ewb_tensor *tmp = ewb_empty_like(n->gout);
    if (!tmp) return -1;
    int rc = ewb_unary_dnnl_bwd((int)n->iarg[0], ewb_f32(n->saved[0]), ewb_f32(n->gout), ewb_f32(tmp),
                                ewb_tensor_numel(tmp));
    if (rc == 0) rc = ewb_add_(ga, tmp, 1.0);
    ewb_tensor_free(tmp);
    return rc;
}

static int dnnl_op(int kind, ewb_tensor *a, ewb_tensor **out) {
    const char *name = un_name[kind];
    EWB_TRY(ewb_check_f32(name, a));
    ewb_tensor *ac = ewb_contig_or_self(a), *o = ewb_empty(EWB_DTYPE_F32, a->ndim, a->shape);
    if (!ac || !o) { ewb_tensor_free(ac); ewb_tensor_free(o); return -1; }
    int rc = ewb_unary_dnnl_fwd(kind, ewb_f32(ac), ewb_f32(o), ewb_tensor_numel(o));
    ewb_node *n = rc ? NULL : ewb_record(name, eltwise_backward, 1, &a, o);
    if (n) {
        ewb_save(n, 0, ac);
        n->iarg[0] = kind;
    }
    ewb_tensor_free(ac);
    return ewb_finish(name, o, rc, out);
}

int ewb_relu(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_RELU, a, out); }
int ewb_gelu(ewb_tensor *a, int tanh_approx, ewb_tensor **out) {
    return dnnl_op(tanh_approx ? EWB_UN_GELU_TANH : EWB_UN_GELU_ERF, a, out);
}
int ewb_tanh(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_TANH, a, out); }
int ewb_sigmoid(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_SIGMOID, a, out); }
int ewb_exp(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_EXP, a, out); }
int ewb_silu(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_SILU, a, out); }
int ewb_sqrt(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_SQRT, a, out); }
int ewb_abs(ewb_tensor *a, ewb_tensor **out) { return dnnl_op(EWB_UN_ABS, a, out); }

/* ---------------- plain C ops ---------------- */
enum { C_NEG, C_LOG, C_RSQRT, C_POW, C_CLAMP, C_SIN, C_COS };
static const char *c_name[] = {"neg", "log", "rsqrt", "pow", "clamp", "sin", "cos"};

/* y (n) = f(x); p, q: pow's exponent, clamp's bounds */
static void c_fwd(int kind, const float *restrict x, float *restrict y, int64_t n, double p, double q) {
    switch (kind) {
    case C_NEG:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = -x[i];
        break;
    case C_LOG:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = logf(x[i]);
        break;
    case C_RSQRT:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = 1.0f / sqrtf(x[i]);
        break;
    case C_POW: {
        float e = (float)p;
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = e == 2.0f ? x[i] * x[i] : powf(x[i], e);
        break;
    }
    case C_CLAMP: { /* as torch: min(max(x, lo), hi); NaN stays NaN */
        float lo = (float)p, hi = (float)q;
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < lo ? lo : x[i];
            y[i] = v > hi ? hi : v;
        }
        break;
    }
    case C_SIN:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = sinf(x[i]);
        break;
    case C_COS:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = cosf(x[i]);
        break;
    }
}

/* dx (n) += f'(x) dy */
static void c_bwd(int kind, const float *restrict x, const float *restrict dy, float *restrict dx, int64_t n, double p,
                  double q) {
    switch (kind) {
    case C_NEG:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] -= dy[i];
        break;
    case C_LOG:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] / x[i];
        break;
    case C_RSQRT: /* -x^(-3/2) / 2 */
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float r = 1.0f / sqrtf(x[i]);
            dx[i] += -0.5f * r * r * r * dy[i];
        }
        break;
    case C_POW: { /* as torch: exponent 0 gives a zero gradient */
        float e = (float)p;
        if (e == 0.0f) break;
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * e * (e == 2.0f ? x[i] : powf(x[i], e - 1.0f));
        break;
    }
    case C_CLAMP: { /* as torch: the gradient passes where lo <= x <= hi */
        float lo = (float)p, hi = (float)q;
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f;
        break;
    }
    case C_SIN:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] += cosf(x[i]) * dy[i];
        break;
    case C_COS:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) dx[i] -= sinf(x[i]) * dy[i];
        break;
    }
}

static int c_backward(ewb_node *n) { /* saved[0] = input (contiguous), iarg[0] = kind, farg = p, q */
    ewb_tensor *ga = ewb_grad_slot(n, 0);
    if (ga) c_bwd((int)n->iarg[0], ewb_f32(n->saved[0]), ewb_f32(n->gout), ewb_f32(ga), ewb_tensor_numel(ga),
                  n->farg[0], n->farg[1]);
    return 0;
}

static int c_op(int kind, ewb_tensor *a, double p, double q, ewb_tensor **out) {
    const char *name = c_name[kind];
    EWB_TRY(ewb_check_f32(name, a));
    ewb_tensor *ac = ewb_contig_or_self(a), *o = ewb_empty(EWB_DTYPE_F32, a->ndim, a->shape);
    if (!ac || !o) { ewb_tensor_free(ac); ewb_tensor_free(o); return -1; }
    c_fwd(kind, ewb_f32(ac), ewb_f32(o), ewb_tensor_numel(o), p, q);
    ewb_node *n = ewb_record(name, c_backward, 1, &a, o);
    if (n) {
        if (kind != C_NEG) ewb_save(n, 0, ac);
        n->iarg[0] = kind;
        n->farg[0] = p;
        n->farg[1] = q;
    }
    ewb_tensor_free(ac);
    return ewb_finish(name, o, 0, out);
}

/* integer negation (no gradient), so that `n - t` works on index tensors */
static int neg_int(ewb_tensor *a, ewb_tensor **out) {
    ewb_tensor *ac = ewb_contig_or_self(a), *o = ewb_empty(a->dtype, a->ndim, a->shape);
    if (!ac || !o) { ewb_tensor_free(ac); ewb_tensor_free(o); return -1; }
    int64_t cnt = ewb_tensor_numel(o);
    if (a->dtype == EWB_DTYPE_I32) {
        const uint32_t *x = ewb_tensor_data(ac);
        int32_t *y = ewb_tensor_data(o);
        for (int64_t i = 0; i < cnt; i++) y[i] = (int32_t)(0u - x[i]);
    } else {
        const uint64_t *x = ewb_tensor_data(ac);
        int64_t *y = ewb_tensor_data(o);
        for (int64_t i = 0; i < cnt; i++) y[i] = (int64_t)(0u - x[i]);
    }
    ewb_tensor_free(ac);
    return ewb_finish("neg", o, 0, out);
}

int ewb_neg(ewb_tensor *a, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("neg", a));
    if (a->dtype == EWB_DTYPE_I32 || a->dtype == EWB_DTYPE_I64) return neg_int(a, out);
    if (a->dtype != EWB_DTYPE_F32) return ewb_error("neg: expected an f32, i32 or i64 tensor, got %s", ewb_s(a));
    return c_op(C_NEG, a, 0, 0, out);
}
int ewb_log(ewb_tensor *a, ewb_tensor **out) { return c_op(C_LOG, a, 0, 0, out); }
int ewb_rsqrt(ewb_tensor *a, ewb_tensor **out) { return c_op(C_RSQRT, a, 0, 0, out); }
int ewb_pow(ewb_tensor *a, double p, ewb_tensor **out) { return c_op(C_POW, a, p, 0, out); }
int ewb_clamp(ewb_tensor *a, double lo, double hi, ewb_tensor **out) {
    if (lo != lo || hi != hi) return ewb_error("clamp: bounds must not be NaN (use +-inf for no bound), got [%g, %g]", lo, hi);
    return c_op(C_CLAMP, a, lo, hi, out);
}
int ewb_sin(ewb_tensor *a, ewb_tensor **out) { return c_op(C_SIN, a, 0, 0, out); }
int ewb_cos(ewb_tensor *a, ewb_tensor **out) { return c_op(C_COS, a, 0, 0, out); }
