/* tensor.c: storage, tensor headers, errors, memory accounting, element
 * access, and the in-place helpers (fill, copy, axpy) that are not recorded
 * by autograd. Views are in kernels/views.c; autograd in core/autograd.c. */
#include "internal.h"
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- errors ---------------- */
static _Thread_local char g_err[1024];

int ewb_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return -1;
}
const char *ewb_last_error(void) { return g_err[0] ? g_err : "no error"; }
void ewb_clear_error(void) { g_err[0] = 0; }
const char *ewb_version(void) { return "0.1.0"; }

static const char *dtype_names[] = {"f32", "i32", "i64", "bool"};
static const size_t dtype_sizes[] = {4, 4, 8, 1};
size_t ewb_dtype_size(int dtype) { return dtype >= 0 && dtype <= 3 ? dtype_sizes[dtype] : 0; }
const char *ewb_dtype_name(int dtype) { return dtype >= 0 && dtype <= 3 ? dtype_names[dtype] : "?"; }

const char *ewb_shape_str(const ewb_tensor *t, char *buf, int n) {
    if (!t) { snprintf(buf, n, "nil"); return buf; }
    int k = snprintf(buf, n, "%s[", ewb_dtype_name(t->dtype));
    for (int i = 0; i < t->ndim && k < n; i++)
        k += snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}
const char *ewb_s(const ewb_tensor *t) {
    static _Thread_local char ring[4][160];
    static _Thread_local int next;
    char *b = ring[next++ & 3];
    return ewb_shape_str(t, b, 160);
}
int ewb_tensor_describe(const ewb_tensor *t, char *buf, int n) {
    ewb_shape_str(t, buf, n);
    return 0;
}
int ewb_check_alive(const char *op, const ewb_tensor *t) {
    if (!t) return ewb_error("%s: tensor argument is nil", op);
    if (!t->storage) return ewb_error("%s: tensor was freed (t:free())", op);
    return 0;
}
int ewb_check_f32(const char *op, const ewb_tensor *t) {
    EWB_TRY(ewb_check_alive(op, t));
    if (t->dtype != EWB_DTYPE_F32)
        return ewb_error("%s: expected an f32 tensor, got %s", op, ewb_s(t));
    return 0;
}

/* ---------------- memory accounting ---------------- */
static atomic_llong g_mem_cur, g_mem_peak, g_mem_since;
static int64_t g_mem_threshold = 256ll << 20;

int64_t ewb_mem_current(void) { return g_mem_cur; }
int64_t ewb_mem_peak(void) { return g_mem_peak; }
void ewb_mem_reset_peak(void) { g_mem_peak = g_mem_cur; }
void ewb_mem_set_threshold(int64_t bytes) { g_mem_threshold = bytes > 0 ? bytes : 1; }
int ewb_mem_pressure(void) {
    if (g_mem_since < g_mem_threshold) return 0;
    g_mem_since = 0;
    return 1;
}

static void mem_init(void) {
    static int done;
    if (done) return;
    done = 1;
    /* Large tensors are allocated and freed every step; keep glibc from
       returning them to the kernel (mmap + page faults each time). */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

static ewb_storage *storage_new(int64_t nbytes) {
    mem_init();
    ewb_storage *s = malloc(sizeof *s);
    if (!s) return NULL;
    int64_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    s->data = aligned_alloc(64, (size_t)rounded);
    if (!s->data) { free(s); return NULL; }
    s->nbytes = rounded;
    atomic_init(&s->refcount, 1);
    long long cur = atomic_fetch_add(&g_mem_cur, rounded) + rounded;
    atomic_fetch_add(&g_mem_since, rounded);
    long long pk = g_mem_peak;
    while (cur > pk && !atomic_compare_exchange_weak(&g_mem_peak, &pk, cur)) {}
    return s;
}
static void storage_release(ewb_storage *s) {
    if (!s) return;
    if (atomic_fetch_sub(&s->refcount, 1) == 1) {
        atomic_fetch_sub(&g_mem_cur, s->nbytes);
        free(s->data);
        free(s);
    }
}

/* ---------------- tensor headers ---------------- */
void ewb_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) { stride[i] = s; s *= shape[i]; }
}
int64_t ewb_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static ewb_tensor *header_new(int dtype, int ndim, const int64_t *shape) {
    ewb_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    atomic_init(&t->refcount, 1);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    ewb_contiguous_strides(ndim, t->shape, t->stride);
    return t;
}

ewb_tensor *ewb_empty(int dtype, int ndim, const int64_t *shape) {
    if (dtype < 0 || dtype > 3) { ewb_error("unknown dtype %d", dtype); return NULL; }
    if (ndim < 0 || ndim > EWB_MAX_DIMS) { ewb_error("tensors have 0..%d dims, asked for %d", EWB_MAX_DIMS, ndim); return NULL; }
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) { ewb_error("negative size %lld in dim %d", (long long)shape[i], i); return NULL; }
    ewb_tensor *t = header_new(dtype, ndim, shape);
    if (!t) { ewb_error("out of memory"); return NULL; }
    int64_t n = ewb_shape_numel(ndim, shape);
    t->storage = storage_new(n * (int64_t)ewb_dtype_size(dtype));
    if (!t->storage) { free(t); ewb_error("out of memory allocating %lld elements", (long long)n); return NULL; }
    return t;
}
ewb_tensor *ewb_empty_like(const ewb_tensor *t) { return ewb_empty(t->dtype, t->ndim, t->shape); }
ewb_tensor *ewb_zeros_like(const ewb_tensor *t) {
    ewb_tensor *z = ewb_empty_like(t);
    if (z) memset(ewb_tensor_data(z), 0, ewb_tensor_numel(z) * ewb_dtype_size(z->dtype));
    return z;
}
ewb_tensor *ewb_alias(const ewb_tensor *t) {
    ewb_tensor *a = header_new(t->dtype, t->ndim, t->shape);
    if (!a) return NULL;
    memcpy(a->stride, t->stride, sizeof a->stride);
    a->offset = t->offset;
    a->storage = t->storage;
    if (a->storage) atomic_fetch_add(&a->storage->refcount, 1);
    return a;
}

int ewb_tensor_new(ewb_tensor **out, int dtype, int ndim, const int64_t *shape) {
    ewb_tensor *t = ewb_empty(dtype, ndim, shape);
    if (!t) return -1;
    memset(ewb_tensor_data(t), 0, ewb_tensor_numel(t) * ewb_dtype_size(dtype));
    *out = t;
    return 0;
}
int ewb_tensor_from_data(ewb_tensor **out, int dtype, int ndim, const int64_t *shape, const void *data) {
    ewb_tensor *t = ewb_empty(dtype, ndim, shape);
    if (!t) return -1;
    memcpy(ewb_tensor_data(t), data, ewb_tensor_numel(t) * ewb_dtype_size(dtype));
    *out = t;
    return 0;
}
int ewb_full(ewb_tensor **out, int dtype, int ndim, const int64_t *shape, double value) {
    ewb_tensor *t = ewb_empty(dtype, ndim, shape);
    if (!t) return -1;
    ewb_fill_(t, value);
    *out = t;
    return 0;
}
int ewb_arange(ewb_tensor **out, int dtype, double start, double stop, double step) {
    if (step == 0) return ewb_error("arange: step must be non-zero");
    int64_t n = (int64_t)ceil((stop - start) / step);
    if (n < 0) n = 0;
    ewb_tensor *t = ewb_empty(dtype, 1, &n);
    if (!t) return -1;
    for (int64_t i = 0; i < n; i++) ewb_tensor_set(t, &i, start + step * (double)i);
    *out = t;
    return 0;
}

void ewb_node_release(ewb_node *n); /* autograd.c */

void ewb_tensor_retain(ewb_tensor *t) { if (t) atomic_fetch_add(&t->refcount, 1); }
void ewb_tensor_dispose(ewb_tensor *t) {
    if (!t) return;
    storage_release(t->storage);
    t->storage = NULL;
    ewb_tensor *g = t->grad;
    t->grad = NULL;
    ewb_tensor_free(g);
    ewb_node *n = t->grad_fn;
    t->grad_fn = NULL;
    if (n) ewb_node_release(n);
}
void ewb_tensor_free(ewb_tensor *t) {
    if (!t) return;
    if (atomic_fetch_sub(&t->refcount, 1) != 1) return;
    ewb_tensor_dispose(t);
    free(t);
}

int ewb_tensor_dtype(const ewb_tensor *t) { return t->dtype; }
int ewb_tensor_ndim(const ewb_tensor *t) { return t->ndim; }
int64_t ewb_tensor_size(const ewb_tensor *t, int dim) {
    if (dim < 0) dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->shape[dim] : -1;
}
int64_t ewb_tensor_stride(const ewb_tensor *t, int dim) {
    if (dim < 0) dim += t->ndim;
    return dim >= 0 && dim < t->ndim ? t->stride[dim] : 0;
}
int64_t ewb_tensor_offset(const ewb_tensor *t) { return t->offset; }
int64_t ewb_tensor_numel(const ewb_tensor *t) { return ewb_shape_numel(t->ndim, t->shape); }
int ewb_tensor_is_alive(const ewb_tensor *t) { return t && t->storage != NULL; }
int ewb_tensor_is_contiguous(const ewb_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}
void *ewb_tensor_data(const ewb_tensor *t) {
    if (!t || !t->storage) return NULL;
    return (char *)t->storage->data + t->offset * (int64_t)ewb_dtype_size(t->dtype);
}
int ewb_tensor_shares_storage(const ewb_tensor *a, const ewb_tensor *b) {
    return a && b && a->storage && a->storage == b->storage;
}

/* ---------------- element access ---------------- */
static inline double load_as_double(const char *p, int dtype) {
    switch (dtype) {
    case EWB_DTYPE_F32: return *(const float *)p;
    case EWB_DTYPE_I32: return *(const int32_t *)p;
    case EWB_DTYPE_I64: return (double)*(const int64_t *)p;
    default: return *(const uint8_t *)p ? 1.0 : 0.0;
    }
}
static inline void store_double(char *p, int dtype, double v) {
    switch (dtype) {
    case EWB_DTYPE_F32: *(float *)p = (float)v; break;
    case EWB_DTYPE_I32: *(int32_t *)p = (int32_t)v; break;
    case EWB_DTYPE_I64: *(int64_t *)p = (int64_t)v; break;
    default: *(uint8_t *)p = v != 0; break;
    }
}

static int index_offset(const char *op, const ewb_tensor *t, const int64_t *idx, int64_t *off) {
    EWB_TRY(ewb_check_alive(op, t));
    int64_t o = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t k = idx[i];
        if (k < 0) k += t->shape[i];
        if (k < 0 || k >= t->shape[i])
            return ewb_error("%s: index %lld out of range for dim %d of %s", op, (long long)idx[i], i, ewb_s(t));
        o += k * t->stride[i];
    }
    *off = o;
    return 0;
}
int ewb_tensor_get(const ewb_tensor *t, const int64_t *idx, double *out) {
    int64_t o;
    EWB_TRY(index_offset("get", t, idx, &o));
    *out = load_as_double((const char *)ewb_tensor_data(t) + o * (int64_t)ewb_dtype_size(t->dtype), t->dtype);
    return 0;
}
int ewb_tensor_set(ewb_tensor *t, const int64_t *idx, double v) {
    int64_t o;
    EWB_TRY(index_offset("set", t, idx, &o));
    store_double((char *)ewb_tensor_data(t) + o * (int64_t)ewb_dtype_size(t->dtype), t->dtype, v);
    return 0;
}
int ewb_tensor_item(const ewb_tensor *t, double *out) {
    EWB_TRY(ewb_check_alive("item", t));
    if (ewb_tensor_numel(t) != 1)
        return ewb_error("item: tensor must have exactly one element, got %s", ewb_s(t));
    int64_t zero[EWB_MAX_DIMS] = {0};
    return ewb_tensor_get(t, zero, out);
}

int ewb_tensor_copy_to(const ewb_tensor *t, void *dst, int64_t nbytes) {
    EWB_TRY(ewb_check_alive("copy_to", t));
    int64_t need = ewb_tensor_numel(t) * (int64_t)ewb_dtype_size(t->dtype);
    if (nbytes < need) return ewb_error("copy_to: buffer of %lld bytes is too small for %s", (long long)nbytes, ewb_s(t));
    ewb_tensor *c;
    int64_t shp[EWB_MAX_DIMS];
    memcpy(shp, t->shape, sizeof shp);
    c = ewb_empty(t->dtype, t->ndim, shp);
    if (!c) return -1;
    if (ewb_copy_(c, t) != 0) { ewb_tensor_free(c); return -1; }
    memcpy(dst, ewb_tensor_data(c), (size_t)need);
    ewb_tensor_free(c);
    return 0;
}

/* ---------------- in-place helpers ---------------- */
int ewb_fill_(ewb_tensor *t, double v) {
    EWB_TRY(ewb_check_alive("fill_", t));
    int64_t n = ewb_tensor_numel(t);
    if (ewb_tensor_is_contiguous(t) && t->dtype == EWB_DTYPE_F32) {
        float *p = ewb_f32(t), f = (float)v;
        for (int64_t i = 0; i < n; i++) p[i] = f;
        return 0;
    }
    size_t es = ewb_dtype_size(t->dtype);
    char *base = (char *)t->storage->data + t->offset * (int64_t)es;
    int64_t idx[EWB_MAX_DIMS] = {0}, off = 0;
    for (int64_t i = 0; i < n; i++) {
        store_double(base + off * (int64_t)es, t->dtype, v);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) { off += t->stride[d]; break; }
            off -= (t->shape[d] - 1) * t->stride[d];
            idx[d] = 0;
        }
    }
    return 0;
}

/* A pair of equally shaped f32 views (dst, src) as rows for the strided
   paths of copy_ and add_: size-1 dims dropped, neighbouring dims that are
   contiguous with each other in both views merged, the last dim kept as the
   inner loop. Rows are independent, so they run in parallel, unless dst
   repeats elements (a stride-0 dim: an expanded gradient must be summed in
   order). */
typedef struct {
    int nd;                          /* dims after collapsing; the last is the row */
    int64_t shape[EWB_MAX_DIMS];
    int64_t dst[EWB_MAX_DIMS], src[EWB_MAX_DIMS];
    int serial;
} rows2;

static void rows2_init(rows2 *r, const ewb_tensor *d, const ewb_tensor *s) {
    r->nd = 0;
    r->serial = 0;
    for (int i = 0; i < d->ndim; i++) {
        if (d->shape[i] == 1) continue;
        if (d->stride[i] == 0) r->serial = 1;
        int k = r->nd - 1;
        if (k >= 0 && r->dst[k] == d->shape[i] * d->stride[i] && r->src[k] == d->shape[i] * s->stride[i]) {
            r->shape[k] *= d->shape[i];
            r->dst[k] = d->stride[i];
            r->src[k] = s->stride[i];
            continue;
        }
        r->shape[r->nd] = d->shape[i];
        r->dst[r->nd] = d->stride[i];
        r->src[r->nd] = s->stride[i];
        r->nd++;
    }
    if (r->nd == 0) { r->nd = 1; r->shape[0] = 1; r->dst[0] = r->src[0] = 0; }
}

/* element offsets of the start of row `row` */
static void rows2_offsets(const rows2 *r, int64_t row, int64_t *doff, int64_t *soff) {
    int64_t dd = 0, ss = 0;
    for (int k = r->nd - 2; k >= 0; k--) {
        int64_t i = row % r->shape[k];
        row /= r->shape[k];
        dd += i * r->dst[k];
        ss += i * r->src[k];
    }
    *doff = dd;
    *soff = ss;
}

/* d (strided) = or += a * s (strided), f32 */
static void rows2_run(const rows2 *r, float *d, const float *s, float a, int accumulate) {
    int64_t L = r->shape[r->nd - 1], ds = r->dst[r->nd - 1], ss = r->src[r->nd - 1];
    int64_t nrows = ewb_shape_numel(r->nd - 1, r->shape);
    #pragma omp parallel for if (!r->serial && nrows * L > 1 << 16)
    for (int64_t row = 0; row < nrows; row++) {
        int64_t doff, soff;
        rows2_offsets(r, row, &doff, &soff);
        float *dp = d + doff;
        const float *sp = s + soff;
        if (!accumulate) {
            if (ds == 1 && ss == 1) memcpy(dp, sp, sizeof(float) * (size_t)L);
            else for (int64_t i = 0; i < L; i++) dp[i * ds] = sp[i * ss];
        } else if (ds == 1 && ss == 1) {
            for (int64_t i = 0; i < L; i++) dp[i] += a * sp[i];
        } else {
            for (int64_t i = 0; i < L; i++) dp[i * ds] += a * sp[i * ss];
        }
    }
}

/* dst[i] = src[i] (src broadcast to dst), any dtypes, any strides */
int ewb_copy_(ewb_tensor *dst, const ewb_tensor *src) {
    EWB_TRY(ewb_check_alive("copy_", dst));
    EWB_TRY(ewb_check_alive("copy_", src));
    ewb_tensor *s = ewb_broadcast_view(src, dst->ndim, dst->shape);
    if (!s) return ewb_error("copy_: cannot broadcast %s to %s", ewb_s(src), ewb_s(dst));
    int64_t n = ewb_tensor_numel(dst);
    size_t des = ewb_dtype_size(dst->dtype), ses = ewb_dtype_size(s->dtype);
    if (dst->dtype == s->dtype && ewb_tensor_is_contiguous(dst) && ewb_tensor_is_contiguous(s)) {
        memmove(ewb_tensor_data(dst), ewb_tensor_data(s), (size_t)n * des);
        ewb_tensor_free(s);
        return 0;
    }
    if (dst->dtype == EWB_DTYPE_F32 && s->dtype == EWB_DTYPE_F32) {
        rows2 r;
        rows2_init(&r, dst, s);
        rows2_run(&r, ewb_f32(dst), ewb_f32(s), 1.0f, 0);
        ewb_tensor_free(s);
        return 0;
    }
    char *db = ewb_tensor_data(dst);
    const char *sb = ewb_tensor_data(s);
    int64_t idx[EWB_MAX_DIMS] = {0}, doff = 0, soff = 0;
    int nd = dst->ndim;
    for (int64_t i = 0; i < n; i++) {
        if (dst->dtype == EWB_DTYPE_F32 && s->dtype == EWB_DTYPE_F32)
            ((float *)db)[doff] = ((const float *)sb)[soff];
        else
            store_double(db + doff * (int64_t)des, dst->dtype, load_as_double(sb + soff * (int64_t)ses, s->dtype));
        for (int d = nd - 1; d >= 0; d--) {
            if (++idx[d] < dst->shape[d]) { doff += dst->stride[d]; soff += s->stride[d]; break; }
            doff -= (dst->shape[d] - 1) * dst->stride[d];
            soff -= (dst->shape[d] - 1) * s->stride[d];
            idx[d] = 0;
        }
    }
    ewb_tensor_free(s);
    return 0;
}

/* dst += alpha * src, f32, src broadcast to dst; dst may be strided (used by
   view backwards, where an expanded dst must sum repeated elements) */
int ewb_add_(ewb_tensor *dst, const ewb_tensor *src, double alpha) {
    EWB_TRY(ewb_check_f32("add_", dst));
    EWB_TRY(ewb_check_f32("add_", src));
    ewb_tensor *s = ewb_broadcast_view(src, dst->ndim, dst->shape);
    if (!s) return ewb_error("add_: cannot broadcast %s to %s", ewb_s(src), ewb_s(dst));
    int64_t n = ewb_tensor_numel(dst);
    float a = (float)alpha, *d = ewb_f32(dst);
    const float *sp = ewb_f32(s);
    if (ewb_tensor_is_contiguous(dst) && ewb_tensor_is_contiguous(s)) {
        if (a == 1.0f) {
            #pragma omp parallel for if (n > 1 << 16)
            for (int64_t i = 0; i < n; i++) d[i] += sp[i];
        } else {
            #pragma omp parallel for if (n > 1 << 16)
            for (int64_t i = 0; i < n; i++) d[i] += a * sp[i];
        }
        ewb_tensor_free(s);
        return 0;
    }
    rows2 r;
    rows2_init(&r, dst, s);
    rows2_run(&r, d, sp, a, 1);
    ewb_tensor_free(s);
    return 0;
}

int ewb_scale_(ewb_tensor *t, double s) {
    EWB_TRY(ewb_check_f32("scale_", t));
    if (!ewb_tensor_is_contiguous(t)) return ewb_error("scale_: needs a contiguous tensor, got a strided view %s", ewb_s(t));
    float *p = ewb_f32(t), f = (float)s;
    int64_t n = ewb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) p[i] *= f;
    return 0;
}

/* ---------------- broadcasting ---------------- */
int ewb_broadcast_shape(const char *op, const ewb_tensor *a, const ewb_tensor *b, int *ndim, int64_t *shape) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return ewb_error("%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", op, ewb_s(a), ewb_s(b),
                             i, (long long)sa, (long long)sb);
        shape[i] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return 0;
}

ewb_tensor *ewb_broadcast_view(const ewb_tensor *t, int ndim, const int64_t *shape) {
    if (ndim < t->ndim) return NULL;
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int j = t->ndim - ndim + i;
        int64_t sz = j >= 0 ? t->shape[j] : 1, st = j >= 0 ? t->stride[j] : 0;
        if (sz != shape[i]) {
            if (sz != 1) { ewb_tensor_free(v); return NULL; }
            st = 0;
        }
        v->shape[i] = shape[i];
        v->stride[i] = st;
    }
    return v;
}

/* dst (contiguous f32, shape of an op input) += alpha * g summed over the
   dims along which dst was broadcast to g's shape */
int ewb_accumulate_reduced(ewb_tensor *dst, const ewb_tensor *g, double alpha) {
    if (dst->ndim == g->ndim) {
        int same = 1;
        for (int i = 0; i < g->ndim; i++) same &= dst->shape[i] == g->shape[i];
        if (same) return ewb_add_(dst, g, alpha);
    }
    /* view dst with g's shape and stride 0 on broadcast dims: the strided
       accumulation in ewb_add_ then sums repeated elements */
    ewb_tensor *v = ewb_broadcast_view(dst, g->ndim, g->shape);
    if (!v) return ewb_error("internal: cannot reduce gradient %s to %s", ewb_s(g), ewb_s(dst));
    int rc = ewb_add_(v, g, alpha);
    ewb_tensor_free(v);
    return rc;
}

/* ---------------- copies and conversions ---------------- */
ewb_tensor *ewb_contig_or_self(ewb_tensor *t) {
    if (ewb_tensor_is_contiguous(t)) { ewb_tensor_retain(t); return t; }
    ewb_tensor *c = ewb_empty_like(t);
    if (c && ewb_copy_(c, t) != 0) { ewb_tensor_free(c); return NULL; }
    return c;
}

int ewb_tensor_requires_grad(const ewb_tensor *t) { return t->requires_grad; }
int ewb_tensor_is_leaf(const ewb_tensor *t) { return t->grad_fn == NULL; }

int ewb_detach(const ewb_tensor *t, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("detach", t));
    ewb_tensor *a = ewb_alias(t);
    if (!a) return ewb_error("detach: out of memory");
    *out = a;
    return 0;
}

int ewb_has_nonfinite(const ewb_tensor *t) {
    if (!t || !t->storage || t->dtype != EWB_DTYPE_F32) return 0;
    ewb_tensor *c = ewb_contig_or_self((ewb_tensor *)t);
    if (!c) return 0;
    const float *p = ewb_f32(c);
    int64_t n = ewb_tensor_numel(c);
    int bad = 0;
    for (int64_t i = 0; i < n && !bad; i++) bad = !isfinite(p[i]);
    ewb_tensor_free(c);
    return bad;
}
