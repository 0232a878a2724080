/* elementwise.c: broadcasting binary arithmetic (add, sub, mul, div,
 * maximum, minimum), tensor-scalar arithmetic, and comparisons / logical_not
 * (bool outputs, no gradient), forward and backward side by side.
 *
 * Arithmetic is f32 with autograd; i32/i64 tensors of one dtype also take
 * add/sub/mul/maximum/minimum and integral scalars (no gradient). Comparisons
 * take any dtypes, mixed.
 *
 * Operands are broadcast views of the inputs (stride 0 on broadcast dims);
 * a small iterator collapses dims along which every operand is contiguous and
 * walks the output in rows of its last (collapsed) dim. A backward computes
 * its term at the output's shape and reduces broadcast dims with
 * ewb_accumulate_reduced. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

enum { PAR_MIN = 1 << 16, CHUNK = 4096 };

/* ---------------- broadcast iterator ---------------- */
enum { IT_MAX_OPS = 4 };
typedef struct {
    int nd, nops;
    int64_t shape[EWB_MAX_DIMS];
    int64_t st[IT_MAX_OPS][EWB_MAX_DIMS]; /* element strides; op 0 is the output */
    char *base[IT_MAX_OPS];
    size_t esize[IT_MAX_OPS];
    int64_t rows, inner, nchunks;
} bc_iter;

/* ts[0] is the output, ts[1..] views already broadcast to its shape */
static void iter_init(bc_iter *it, int nops, ewb_tensor *const *ts) {
    const ewb_tensor *o = ts[0];
    int n = 0;
    it->nops = nops;
    for (int k = 0; k < nops; k++) {
        it->base[k] = ewb_tensor_data(ts[k]);
        it->esize[k] = ewb_dtype_size(ts[k]->dtype);
    }
    for (int d = 0; d < o->ndim; d++) {
        if (o->shape[d] == 1) continue;
        int merge = n > 0;
        for (int k = 0; merge && k < nops; k++) merge = it->st[k][n - 1] == ts[k]->stride[d] * o->shape[d];
        if (merge) {
            it->shape[n - 1] *= o->shape[d];
            for (int k = 0; k < nops; k++) it->st[k][n - 1] = ts[k]->stride[d];
        } else {
            it->shape[n] = o->shape[d];
            for (int k = 0; k < nops; k++) it->st[k][n] = ts[k]->stride[d];
            n++;
        }
    }
    if (n == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++) it->st[k][0] = 0;
        n = 1;
    }
    it->nd = n;
    it->inner = it->shape[n - 1];
    it->rows = ewb_shape_numel(n - 1, it->shape);
    it->nchunks = it->inner ? (it->inner + CHUNK - 1) / CHUNK : 0;
}

/* element offsets of task t (a row and a chunk of it), and its length */
static int64_t iter_task(const bc_iter *it, int64_t t, int64_t *off) {
    int64_t r = t / it->nchunks, c = t % it->nchunks;
    for (int k = 0; k < it->nops; k++) off[k] = c * CHUNK * it->st[k][it->nd - 1];
    for (int d = it->nd - 2; d >= 0; d--) {
        int64_t i = r % it->shape[d];
        r /= it->shape[d];
        for (int k = 0; k < it->nops; k++) off[k] += i * it->st[k][d];
    }
    int64_t len = it->inner - c * CHUNK;
    return len < CHUNK ? len : CHUNK;
}

/* ---------------- f32 kernels ---------------- */
enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN,
    /* backward terms with inputs (x, y, g): */
    OP_DIV_DY,   /* -g x / y^2 */
    OP_MAX_DX,   /* g where x > y, g/2 where x == y (torch's tie rule), else 0 */
    OP_MIN_DX    /* g where x < y, g/2 where x == y, else 0 */
};
static const char *op_names[] = {"add", "sub", "mul", "div", "maximum", "minimum"};

/* NaN propagates through maximum/minimum, as in torch */
static inline float max_nan(float x, float y) { return (x > y || x != x) ? x : y; }
static inline float min_nan(float x, float y) { return (x < y || x != x) ? x : y; }

/* Plain C loops, not oneDNN binary: memory-bound, and strided broadcasting would need a primitive per shape. */
/* contiguous, same shape: loops the compiler vectorises (omp simd: -O2 alone does not) */
static void same_f32(int op, int64_t n, float *restrict o, const float *restrict x, const float *restrict y) {
    switch (op) {
    case OP_ADD:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = x[i] + y[i];
        break;
    case OP_SUB:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = x[i] - y[i];
        break;
    case OP_MUL:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = x[i] * y[i];
        break;
    case OP_DIV:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = x[i] / y[i];
        break;
    case OP_MAX:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = max_nan(x[i], y[i]);
        break;
    case OP_MIN:
        #pragma omp parallel for simd if (parallel: n > PAR_MIN)
        for (int64_t i = 0; i < n; i++) o[i] = min_nan(x[i], y[i]);
        break;
    }
}

/* one strided row: o[i] = op(x[i*sx], y[i*sy], g[i*sg]) */
static void row_f32(int op, int64_t n, float *o, const float *x, int64_t sx, const float *y, int64_t sy,
                    const float *g, int64_t sg) {
    switch (op) {
    case OP_ADD: for (int64_t i = 0; i < n; i++) o[i] = x[i * sx] + y[i * sy]; break;
    case OP_SUB: for (int64_t i = 0; i < n; i++) o[i] = x[i * sx] - y[i * sy]; break;
    case OP_MUL: for (int64_t i = 0; i < n; i++) o[i] = x[i * sx] * y[i * sy]; break;
    case OP_DIV: for (int64_t i = 0; i < n; i++) o[i] = x[i * sx] / y[i * sy]; break;
    case OP_MAX: for (int64_t i = 0; i < n; i++) o[i] = max_nan(x[i * sx], y[i * sy]); break;
    case OP_MIN: for (int64_t i = 0; i < n; i++) o[i] = min_nan(x[i * sx], y[i * sy]); break;
    case OP_DIV_DY:
        for (int64_t i = 0; i < n; i++) { float b = y[i * sy]; o[i] = -g[i * sg] * x[i * sx] / (b * b); }
        break;
    case OP_MAX_DX:
        for (int64_t i = 0; i < n; i++) {
            float a = x[i * sx], b = y[i * sy];
            o[i] = a > b ? g[i * sg] : a == b ? 0.5f * g[i * sg] : 0.0f;
        }
        break;
    case OP_MIN_DX:
        for (int64_t i = 0; i < n; i++) {
            float a = x[i * sx], b = y[i * sy];
            o[i] = a < b ? g[i * sg] : a == b ? 0.5f * g[i * sg] : 0.0f;
        }
        break;
    }
}

/* out (contiguous f32) = op(x, y[, g]) with x, y, g broadcast to out's shape */
static int binary_f32(int op, ewb_tensor *out, const ewb_tensor *x, const ewb_tensor *y, const ewb_tensor *g) {
    int64_t n = ewb_tensor_numel(out);
    if (n == 0) return 0;
    int same = !g && ewb_tensor_is_contiguous(x) && ewb_tensor_is_contiguous(y) && ewb_tensor_numel(x) == n &&
               ewb_tensor_numel(y) == n && x->ndim == out->ndim && y->ndim == out->ndim;
    if (same) {
        same_f32(op, n, ewb_f32(out), ewb_f32(x), ewb_f32(y));
        return 0;
    }
    ewb_tensor *ts[4] = {out, ewb_broadcast_view(x, out->ndim, out->shape), ewb_broadcast_view(y, out->ndim, out->shape),
                         g ? ewb_broadcast_view(g, out->ndim, out->shape) : NULL};
    int nops = g ? 4 : 3, rc = 0;
    for (int k = 1; k < nops; k++) if (!ts[k]) rc = ewb_error("internal: operand does not broadcast to %s", ewb_s(out));
    if (rc == 0) {
        bc_iter it;
        iter_init(&it, nops, ts);
        int64_t tasks = it.rows * it.nchunks;
        float *po = (float *)it.base[0], *px = (float *)it.base[1], *py = (float *)it.base[2];
        float *pg = g ? (float *)it.base[3] : px;
        int64_t sx = it.st[1][it.nd - 1], sy = it.st[2][it.nd - 1], sg = g ? it.st[3][it.nd - 1] : 0;
        #pragma omp parallel for if (n > PAR_MIN)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t off[IT_MAX_OPS] = {0};
            int64_t len = iter_task(&it, t, off);
            row_f32(op, len, po + off[0], px + off[1], sx, py + off[2], sy, pg + (g ? off[3] : 0), sg);
        }
    }
    for (int k = 1; k < 4; k++) ewb_tensor_free(ts[k]);
    return rc;
}

/* ---------------- generic dtypes (integers, bools, mixed) ---------------- */
static inline int is_int(int dt) { return dt != EWB_DTYPE_F32; }
static inline int64_t ld_i(const char *p, int dt) {
    switch (dt) {
    case EWB_DTYPE_I32: return *(const int32_t *)p;
    case EWB_DTYPE_I64: return *(const int64_t *)p;
    case EWB_DTYPE_BOOL: return *(const uint8_t *)p != 0;
    default: return (int64_t)*(const float *)p;
    }
}
static inline double ld_d(const char *p, int dt) {
    return dt == EWB_DTYPE_F32 ? (double)*(const float *)p : (double)ld_i(p, dt);
}
static inline void st_i(char *p, int dt, int64_t v) {
    if (dt == EWB_DTYPE_I32) *(int32_t *)p = (int32_t)v;
    else *(int64_t *)p = v;
}
static inline int cmp_d(int op, double a, double b) {
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    default: return a >= b;
    }
}
static inline int cmp_i(int op, int64_t a, int64_t b) {
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    default: return a >= b;
    }
}
/* wrapping integer arithmetic (no signed-overflow UB) */
static inline int64_t arith_i(int op, int64_t a, int64_t b) {
    switch (op) {
    case OP_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case OP_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case OP_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case OP_MAX: return a > b ? a : b;
    default: return a < b ? a : b;
    }
}

/* out = x op y elementwise over broadcast views. cmp: op is a comparison
   code and out is bool; else op is integer arithmetic and out has x's dtype */
static int binary_generic(int cmp, int op, ewb_tensor *out, const ewb_tensor *x, const ewb_tensor *y) {
    if (ewb_tensor_numel(out) == 0) return 0;
    ewb_tensor *ts[3] = {out, ewb_broadcast_view(x, out->ndim, out->shape), ewb_broadcast_view(y, out->ndim, out->shape)};
    int rc = 0;
    if (!ts[1] || !ts[2]) rc = ewb_error("internal: operand does not broadcast to %s", ewb_s(out));
    if (rc == 0) {
        bc_iter it;
        iter_init(&it, 3, ts);
        int64_t tasks = it.rows * it.nchunks;
        int dx = x->dtype, dy = y->dtype, dout = out->dtype, ints = is_int(dx) && is_int(dy);
        #pragma omp parallel for if (ewb_tensor_numel(out) > PAR_MIN)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t off[IT_MAX_OPS] = {0};
            int64_t len = iter_task(&it, t, off);
            int64_t s0 = it.st[0][it.nd - 1], s1 = it.st[1][it.nd - 1], s2 = it.st[2][it.nd - 1];
            for (int64_t i = 0; i < len; i++) {
                const char *pa = it.base[1] + (off[1] + i * s1) * (int64_t)it.esize[1];
                const char *pb = it.base[2] + (off[2] + i * s2) * (int64_t)it.esize[2];
                char *po = it.base[0] + (off[0] + i * s0) * (int64_t)it.esize[0];
                if (cmp)
                    *(uint8_t *)po = ints ? cmp_i(op, ld_i(pa, dx), ld_i(pb, dy)) : cmp_d(op, ld_d(pa, dx), ld_d(pb, dy));
                else
                    st_i(po, dout, arith_i(op, ld_i(pa, dx), ld_i(pb, dy)));
            }
        }
    }
    ewb_tensor_free(ts[1]);
    ewb_tensor_free(ts[2]);
    return rc;
}

/* ---------------- binary arithmetic: backward ---------------- */
/* dst (input grad) += term summed over broadcast dims, where
   term = op(x, y[, g]) at the shape of the output gradient gout */
static int acc_term(ewb_tensor *dst, int op, const ewb_tensor *x, const ewb_tensor *y, const ewb_tensor *g,
                    const ewb_tensor *gout) {
    ewb_tensor *tmp = ewb_empty_like(gout);
    if (!tmp) return -1;
    int rc = binary_f32(op, tmp, x, y, g);
    if (rc == 0) rc = ewb_accumulate_reduced(dst, tmp, 1.0);
    ewb_tensor_free(tmp);
    return rc;
}

static int add_backward(ewb_node *n) {
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    if (ga) EWB_TRY(ewb_accumulate_reduced(ga, n->gout, 1.0));
    if (gb) EWB_TRY(ewb_accumulate_reduced(gb, n->gout, 1.0));
    return 0;
}
static int sub_backward(ewb_node *n) {
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    if (ga) EWB_TRY(ewb_accumulate_reduced(ga, n->gout, 1.0));
    if (gb) EWB_TRY(ewb_accumulate_reduced(gb, n->gout, -1.0));
    return 0;
}
static int mul_backward(ewb_node *n) { /* da += g b, db += g a */
    ewb_tensor *a = n->saved[0], *b = n->saved[1], *g = n->gout;
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    if (ga) EWB_TRY(acc_term(ga, OP_MUL, g, b, NULL, g));
    if (gb) EWB_TRY(acc_term(gb, OP_MUL, g, a, NULL, g));
    return 0;
}
static int div_backward(ewb_node *n) { /* da += g / b, db += -g a / b^2 */
    ewb_tensor *a = n->saved[0], *b = n->saved[1], *g = n->gout;
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    if (ga) EWB_TRY(acc_term(ga, OP_DIV, g, b, NULL, g));
    if (gb) EWB_TRY(acc_term(gb, OP_DIV_DY, a, b, g, g));
    return 0;
}
static int maxmin_backward(ewb_node *n) { /* iarg[0]: OP_MAX_DX or OP_MIN_DX */
    ewb_tensor *a = n->saved[0], *b = n->saved[1], *g = n->gout;
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    int op = (int)n->iarg[0];
    if (ga) EWB_TRY(acc_term(ga, op, a, b, g, g));
    if (gb) EWB_TRY(acc_term(gb, op, b, a, g, g));
    return 0;
}

/* ---------------- binary arithmetic: forward ---------------- */
static int binary_op(int op, ewb_backward_fn bw, ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) {
    const char *name = op_names[op];
    EWB_TRY(ewb_check_alive(name, a));
    EWB_TRY(ewb_check_alive(name, b));
    if (a->dtype != b->dtype)
        return ewb_error("%s: dtypes differ: %s and %s (convert one with to_dtype)", name, ewb_s(a), ewb_s(b));
    int ints = a->dtype == EWB_DTYPE_I32 || a->dtype == EWB_DTYPE_I64;
    if (a->dtype != EWB_DTYPE_F32 && !(ints && op != OP_DIV))
        return ewb_error("%s: expected f32 tensors%s, got %s and %s", name,
                         op == OP_DIV ? "" : " (or i32/i64 of one dtype)", ewb_s(a), ewb_s(b));
    int nd;
    int64_t shape[EWB_MAX_DIMS];
    EWB_TRY(ewb_broadcast_shape(name, a, b, &nd, shape));
    ewb_tensor *o = ewb_empty(a->dtype, nd, shape);
    if (!o) return -1;
    if (ints) return ewb_finish(name, o, binary_generic(0, op, o, a, b), out);
    int rc = binary_f32(op, o, a, b, NULL);
    ewb_tensor *ins[2] = {a, b};
    ewb_node *n = rc ? NULL : ewb_record(name, bw, 2, ins, o);
    if (n && (op == OP_MUL || op == OP_DIV || op == OP_MAX || op == OP_MIN)) {
        ewb_save(n, 0, a);
        ewb_save(n, 1, b);
        n->iarg[0] = op == OP_MAX ? OP_MAX_DX : OP_MIN_DX;
    }
    return ewb_finish(name, o, rc, out);
}

int ewb_add(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_ADD, add_backward, a, b, out); }
int ewb_sub(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_SUB, sub_backward, a, b, out); }
int ewb_mul(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_MUL, mul_backward, a, b, out); }
int ewb_div(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_DIV, div_backward, a, b, out); }
int ewb_maximum(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_MAX, maxmin_backward, a, b, out); }
int ewb_minimum(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) { return binary_op(OP_MIN, maxmin_backward, a, b, out); }

/* ---------------- tensor-scalar arithmetic ---------------- */
enum { SC_ADD, SC_MUL, SC_RDIV };
static const char *sc_names[] = {"add_scalar", "mul_scalar", "rdiv_scalar"};

static int scalar_backward(ewb_node *n) { /* iarg[0] = kind, farg[0] = s */
    ewb_tensor *ga = ewb_grad_slot(n, 0), *g = n->gout;
    if (!ga) return 0;
    double s = n->farg[0];
    if (n->iarg[0] == SC_ADD) return ewb_add_(ga, g, 1.0);
    if (n->iarg[0] == SC_MUL) return ewb_add_(ga, g, s);
    /* rdiv: d(s/a)/da = -s / a^2 */
    const ewb_tensor *a = n->saved[0]; /* (N) contiguous */
    const float *pa = ewb_f32(a), *pg = ewb_f32(g);
    float *pd = ewb_f32(ga), fs = (float)s;
    int64_t cnt = ewb_tensor_numel(g);
    #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
    for (int64_t i = 0; i < cnt; i++) pd[i] += -fs * pg[i] / (pa[i] * pa[i]);
    return 0;
}

static int scalar_op(int kind, ewb_tensor *a, double s, ewb_tensor **out) {
    const char *name = sc_names[kind];
    EWB_TRY(ewb_check_alive(name, a));
    int ints = a->dtype == EWB_DTYPE_I32 || a->dtype == EWB_DTYPE_I64;
    if (ints && kind != SC_RDIV) {
        if (s != floor(s) || fabs(s) > 9.007199254740992e15)
            return ewb_error("%s: scalar %g is not an integer, but the tensor is %s (convert it with to_dtype)", name, s, ewb_s(a));
        ewb_tensor *sv = NULL, *o = NULL;
        int64_t none[1] = {0};
        EWB_TRY(ewb_full(&sv, a->dtype, 0, none, s));
        o = ewb_empty(a->dtype, a->ndim, a->shape);
        int rc = o ? binary_generic(0, kind == SC_ADD ? OP_ADD : OP_MUL, o, a, sv) : -1;
        ewb_tensor_free(sv);
        return ewb_finish(name, o, rc, out);
    }
    if (a->dtype != EWB_DTYPE_F32)
        return ewb_error("%s: expected an f32 tensor%s, got %s", name, kind == SC_RDIV ? "" : " (or i32/i64)", ewb_s(a));
    ewb_tensor *ac = ewb_contig_or_self(a), *o = ewb_empty(EWB_DTYPE_F32, a->ndim, a->shape);
    if (!ac || !o) { ewb_tensor_free(ac); ewb_tensor_free(o); return -1; }
    const float *x = ewb_f32(ac);
    float *y = ewb_f32(o), f = (float)s;
    int64_t cnt = ewb_tensor_numel(o);
    switch (kind) {
    case SC_ADD:
        #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] + f;
        break;
    case SC_MUL:
        #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = x[i] * f;
        break;
    default:
        #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = f / x[i];
        break;
    }
    ewb_node *n = ewb_record(name, scalar_backward, 1, &a, o);
    if (n) {
        n->iarg[0] = kind;
        n->farg[0] = s;
        if (kind == SC_RDIV) ewb_save(n, 0, ac);
    }
    ewb_tensor_free(ac);
    return ewb_finish(name, o, 0, out);
}

int ewb_add_scalar(ewb_tensor *a, double s, ewb_tensor **out) { return scalar_op(SC_ADD, a, s, out); }
int ewb_mul_scalar(ewb_tensor *a, double s, ewb_tensor **out) { return scalar_op(SC_MUL, a, s, out); }
int ewb_rdiv_scalar(ewb_tensor *a, double s, ewb_tensor **out) { return scalar_op(SC_RDIV, a, s, out); }

/* ---------------- comparisons (bool out, no gradient) ---------------- */
static const char *cmp_names[] = {"eq", "ne", "lt", "le", "gt", "ge"};

int ewb_compare(ewb_tensor *a, ewb_tensor *b, int op, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("compare", a));
    EWB_TRY(ewb_check_alive("compare", b));
    if (op < 0 || op > 5) return ewb_error("compare: unknown comparison %d (0 eq 1 ne 2 lt 3 le 4 gt 5 ge)", op);
    int nd;
    int64_t shape[EWB_MAX_DIMS];
    EWB_TRY(ewb_broadcast_shape(cmp_names[op], a, b, &nd, shape));
    ewb_tensor *o = ewb_empty(EWB_DTYPE_BOOL, nd, shape);
    if (!o) return -1;
    return ewb_finish(cmp_names[op], o, binary_generic(1, op, o, a, b), out);
}

int ewb_compare_scalar(ewb_tensor *a, double s, int op, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("compare_scalar", a));
    if (op < 0 || op > 5) return ewb_error("compare_scalar: unknown comparison %d (0 eq 1 ne 2 lt 3 le 4 gt 5 ge)", op);
    ewb_tensor *o = ewb_empty(EWB_DTYPE_BOOL, a->ndim, a->shape), *ac = ewb_contig_or_self(a);
    if (!o || !ac) { ewb_tensor_free(o); ewb_tensor_free(ac); return -1; }
    int64_t cnt = ewb_tensor_numel(o);
    uint8_t *y = ewb_tensor_data(o);
    const char *x = ewb_tensor_data(ac);
    int dt = a->dtype;
    size_t es = ewb_dtype_size(dt);
    if (dt == EWB_DTYPE_F32) {
        const float *xf = (const float *)x, sf = (float)s; /* the scalar takes the tensor's dtype, as in torch */
        #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = (uint8_t)cmp_d(op, xf[i], sf);
    } else {
        #pragma omp parallel for simd if (parallel: cnt > PAR_MIN)
        for (int64_t i = 0; i < cnt; i++) y[i] = (uint8_t)cmp_d(op, ld_d(x + i * (int64_t)es, dt), s);
    }
    ewb_tensor_free(ac);
    return ewb_finish(cmp_names[op], o, 0, out);
}

int ewb_logical_not(ewb_tensor *a, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("logical_not", a));
    return ewb_compare_scalar(a, 0.0, 0, out);
}
