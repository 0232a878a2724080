/* shape.c: ops that build a new tensor by moving elements around: cat, stack,
 * pad, gather, index_select, where and masked_fill, forward and backward.
 * Forwards work on any dtype (elements are copied as bytes); gradients flow
 * to f32 inputs only. Index tensors are i64 or i32 and hold 0-based
 * positions; a position outside its dim is an error, never a wild read. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

static int norm_dim(const char *op, const ewb_tensor *t, int dim, int extra, int *out) {
    int nd = t->ndim + extra;
    int d = dim < 0 ? dim + nd : dim;
    if (d < 0 || d >= nd)
        return ewb_error("%s: dim %d out of range for %s", op, dim, ewb_s(t));
    *out = d;
    return 0;
}

static int check_index(const char *op, const char *what, const ewb_tensor *idx) {
    EWB_TRY(ewb_check_alive(op, idx));
    if (idx->dtype != EWB_DTYPE_I64 && idx->dtype != EWB_DTYPE_I32)
        return ewb_error("%s: %s must be an i64 or i32 tensor, got %s", op, what, ewb_s(idx));
    return 0;
}

static inline int64_t load_index(const void *p, int dtype, int64_t i) {
    return dtype == EWB_DTYPE_I64 ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
}

/* every entry of a contiguous index tensor lies in [0, n) */
static int check_range(const char *op, const ewb_tensor *idx, int64_t n, int dim, const ewb_tensor *t) {
    const void *p = ewb_tensor_data(idx);
    int64_t m = ewb_tensor_numel(idx);
    for (int64_t i = 0; i < m; i++) {
        int64_t k = load_index(p, idx->dtype, i);
        if (k < 0 || k >= n)
            return ewb_error("%s: index %lld is out of range for dim %d (size %lld) of %s", op, (long long)k, dim,
                             (long long)n, ewb_s(t));
    }
    return 0;
}

static int same_shape(const ewb_tensor *a, const ewb_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* alias of t restricted to the box [lo, lo+len) in every dim (no autograd) */
static ewb_tensor *box_view(const ewb_tensor *t, const int64_t *lo, const int64_t *len) {
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    for (int i = 0; i < t->ndim; i++) {
        v->offset += lo[i] * t->stride[i];
        v->shape[i] = len[i];
    }
    return v;
}

/* t broadcast to (ndim, shape) and copied to a fresh contiguous tensor */
static ewb_tensor *broadcast_copy(const char *op, const ewb_tensor *t, int ndim, const int64_t *shape) {
    ewb_tensor *v = ewb_broadcast_view(t, ndim, shape);
    if (!v) {
        ewb_error("%s: internal: cannot broadcast %s", op, ewb_s(t));
        return NULL;
    }
    ewb_tensor *c = ewb_contig_or_self(v);
    ewb_tensor_free(v);
    return c;
}

/* ================================================================ cat, stack */
typedef struct {
    int dim;
    int64_t start[EWB_NODE_MAX_IN], len[EWB_NODE_MAX_IN]; /* each input's range along dim */
} cat_ctx;

static int cat_backward(ewb_node *n) {
    cat_ctx *c = n->ctx;
    for (int i = 0; i < n->ninputs; i++) {
        ewb_tensor *g = ewb_grad_slot(n, i);
        if (!g) continue;
        ewb_tensor *v = ewb_alias(n->gout); /* gout narrowed to input i's range */
        if (!v) return -1;
        v->offset += c->start[i] * v->stride[c->dim];
        v->shape[c->dim] = c->len[i];
        int rc = ewb_add_(g, v, 1.0);
        ewb_tensor_free(v);
        if (rc) return -1;
    }
    return 0;
}

static int cat_validate(int n, ewb_tensor *const *ts, int dim, int *d) {
    if (n < 1 || !ts) return ewb_error("cat: needs at least one tensor, got %d", n);
    for (int i = 0; i < n; i++) EWB_TRY(ewb_check_alive("cat", ts[i]));
    const ewb_tensor *t0 = ts[0];
    if (t0->ndim == 0) return ewb_error("cat: zero-dimensional tensor %s cannot be concatenated", ewb_s(t0));
    EWB_TRY(norm_dim("cat", t0, dim, 0, d));
    for (int i = 1; i < n; i++) {
        const ewb_tensor *t = ts[i];
        if (t->dtype != t0->dtype)
            return ewb_error("cat: tensor %d is %s but tensor 0 is %s; dtypes must match", i, ewb_s(t), ewb_s(t0));
        int ok = t->ndim == t0->ndim;
        for (int k = 0; ok && k < t0->ndim; k++) ok = k == *d || t->shape[k] == t0->shape[k];
        if (!ok)
            return ewb_error("cat: tensor %d %s does not match tensor 0 %s outside dim %d", i, ewb_s(t), ewb_s(t0), *d);
    }
    return 0;
}

/* one copy, one node whose inputs are the (at most EWB_NODE_MAX_IN) inputs
   that need a gradient */
static int cat_flat(int n, ewb_tensor *const *ts, int d, ewb_tensor **out) {
    const ewb_tensor *t0 = ts[0];
    int64_t shape[EWB_MAX_DIMS];
    memcpy(shape, t0->shape, sizeof shape);
    shape[d] = 0;
    for (int i = 0; i < n; i++) shape[d] += ts[i]->shape[d];
    ewb_tensor *o = ewb_empty(t0->dtype, t0->ndim, shape); // (..., sum of len_i, ...)
    if (!o) return -1;
    size_t es = ewb_dtype_size(t0->dtype);
    int64_t outer = ewb_shape_numel(d, shape), inner = ewb_shape_numel(t0->ndim - d - 1, shape + d + 1);
    char *op = ewb_tensor_data(o);
    int64_t start = 0;
    ewb_tensor *gins[EWB_NODE_MAX_IN];
    cat_ctx ctx = {.dim = d};
    int ng = 0;
    for (int i = 0; i < n; i++) {
        ewb_tensor *c = ewb_contig_or_self(ts[i]);
        if (!c) { ewb_tensor_free(o); return -1; }
        int64_t len = ts[i]->shape[d];
        size_t block = (size_t)(len * inner) * es; /* one outer row of input i */
        const char *src = ewb_tensor_data(c);
        #pragma omp parallel for if (outer * len * inner > 1 << 16)
        for (int64_t r = 0; r < outer; r++)
            memcpy(op + ((size_t)(r * shape[d] + start) * inner) * es, src + (size_t)r * block, block);
        ewb_tensor_free(c);
        if (ewb_needs_grad(1, &ts[i])) {
            gins[ng] = ts[i];
            ctx.start[ng] = start;
            ctx.len[ng] = len;
            ng++;
        }
        start += len;
    }
    ewb_node *node = ewb_record("cat", cat_backward, ng, gins, o);
    if (node) {
        node->ctx = malloc(sizeof ctx);
        if (!node->ctx) return ewb_finish("cat", o, ewb_error("cat: out of memory"), out);
        memcpy(node->ctx, &ctx, sizeof ctx);
    }
    return ewb_finish("cat", o, 0, out);
}

int ewb_cat(int n, ewb_tensor *const *ts, int dim, ewb_tensor **out) {
    int d = 0;
    EWB_TRY(cat_validate(n, ts, dim, &d));
    int ng = 0;
    for (int i = 0; i < n; i++) ng += ewb_needs_grad(1, &ts[i]);
    if (ng <= EWB_NODE_MAX_IN) return cat_flat(n, ts, d, out);
    /* a node holds at most EWB_NODE_MAX_IN inputs: concatenate consecutive
       groups first, then the groups (a tree of cats) */
    int m = (n + EWB_NODE_MAX_IN - 1) / EWB_NODE_MAX_IN, rc = 0;
    ewb_tensor **parts = calloc((size_t)m, sizeof *parts);
    if (!parts) return ewb_error("cat: out of memory");
    for (int g = 0; g < m && rc == 0; g++) {
        int k = n - g * EWB_NODE_MAX_IN < EWB_NODE_MAX_IN ? n - g * EWB_NODE_MAX_IN : EWB_NODE_MAX_IN;
        rc = ewb_cat(k, ts + g * EWB_NODE_MAX_IN, d, &parts[g]);
    }
    if (rc == 0) rc = ewb_cat(m, parts, d, out);
    for (int g = 0; g < m; g++) ewb_tensor_free(parts[g]);
    free(parts);
    return rc;
}

int ewb_stack(int n, ewb_tensor *const *ts, int dim, ewb_tensor **out) {
    if (n < 1 || !ts) return ewb_error("stack: needs at least one tensor, got %d", n);
    for (int i = 0; i < n; i++) EWB_TRY(ewb_check_alive("stack", ts[i]));
    for (int i = 1; i < n; i++) {
        if (ts[i]->dtype != ts[0]->dtype)
            return ewb_error("stack: tensor %d is %s but tensor 0 is %s; dtypes must match", i, ewb_s(ts[i]), ewb_s(ts[0]));
        if (!same_shape(ts[i], ts[0]))
            return ewb_error("stack: tensor %d %s and tensor 0 %s must have the same shape", i, ewb_s(ts[i]), ewb_s(ts[0]));
    }
    if (ts[0]->ndim >= EWB_MAX_DIMS) return ewb_error("stack: %s already has %d dims", ewb_s(ts[0]), EWB_MAX_DIMS);
    int d = 0;
    EWB_TRY(norm_dim("stack", ts[0], dim, 1, &d));
    ewb_tensor **us = calloc((size_t)n, sizeof *us);
    if (!us) return ewb_error("stack: out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = ewb_unsqueeze(ts[i], d, &us[i]);
    if (rc == 0) rc = ewb_cat(n, us, d, out);
    for (int i = 0; i < n; i++) ewb_tensor_free(us[i]);
    free(us);
    return rc;
}

/* ================================================================ pad */
/* The part of the input that survives cropping (src_lo, len) and where it
   lands in the output (dst_lo); pads are torch's {last_lo, last_hi, ...}. */
typedef struct {
    int64_t src_lo[EWB_MAX_DIMS], dst_lo[EWB_MAX_DIMS], len[EWB_MAX_DIMS];
    int empty; /* no element of the input reaches the output */
} pad_box;

static void pad_region(const ewb_tensor *t, int npairs, const int64_t *pads, pad_box *b) {
    b->empty = 0;
    for (int i = 0; i < t->ndim; i++) {
        int k = t->ndim - 1 - i; /* pair index of dim i */
        int64_t lo = k < npairs ? pads[2 * k] : 0, hi = k < npairs ? pads[2 * k + 1] : 0;
        int64_t crop_lo = lo < 0 ? -lo : 0, crop_hi = hi < 0 ? -hi : 0;
        int64_t len = t->shape[i] - crop_lo - crop_hi;
        b->src_lo[i] = crop_lo;
        b->dst_lo[i] = lo > 0 ? lo : 0;
        b->len[i] = len > 0 ? len : 0;
        if (len <= 0) b->empty = 1;
    }
}

static int pad_backward(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    pad_box *b = n->ctx;
    if (b->empty) return 0;
    ewb_tensor *gi = box_view(g, b->src_lo, b->len), *go = box_view(n->gout, b->dst_lo, b->len);
    int rc = gi && go ? ewb_add_(gi, go, 1.0) : -1;
    ewb_tensor_free(gi);
    ewb_tensor_free(go);
    return rc;
}

int ewb_pad(ewb_tensor *t, int npairs, const int64_t *pads, double value, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("pad", t));
    if (npairs < 0 || npairs > t->ndim)
        return ewb_error("pad: %d (lo, hi) pairs given for %s; at most one per dim", npairs, ewb_s(t));
    if (npairs > 0 && !pads) return ewb_error("pad: pads is NULL but %d pairs were given", npairs);
    int64_t shape[EWB_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        int k = t->ndim - 1 - i;
        shape[i] = t->shape[i] + (k < npairs ? pads[2 * k] + pads[2 * k + 1] : 0);
        if (shape[i] < 0)
            return ewb_error("pad: pads (%lld, %lld) make dim %d of %s negative (%lld)", (long long)pads[2 * k],
                             (long long)pads[2 * k + 1], i, ewb_s(t), (long long)shape[i]);
    }
    pad_box box;
    pad_region(t, npairs, pads, &box);
    ewb_tensor *o = ewb_empty(t->dtype, t->ndim, shape);
    if (!o) return -1;
    int rc = ewb_fill_(o, value);
    if (rc == 0 && !box.empty) {
        ewb_tensor *src = box_view(t, box.src_lo, box.len), *dst = box_view(o, box.dst_lo, box.len);
        rc = src && dst ? ewb_copy_(dst, src) : -1;
        ewb_tensor_free(src);
        ewb_tensor_free(dst);
    }
    ewb_node *n = rc ? NULL : ewb_record("pad", pad_backward, 1, &t, o);
    if (n) {
        n->ctx = malloc(sizeof box);
        if (!n->ctx) rc = ewb_error("pad: out of memory");
        else memcpy(n->ctx, &box, sizeof box);
    }
    return ewb_finish("pad", o, rc, out);
}

/* ================================================================ gather */
/* out[..j..] = t[..index[..j..]..] along dim d. The work is split into
   "columns": all positions of index that differ only along d. Each column
   reads (and, in backward, writes) one column of t, so columns run in
   parallel without conflicts. */
typedef struct {
    int64_t ncols, len;      /* number of columns, index->shape[d] */
    int64_t stride_io;       /* stride along d in the (contiguous) index / output */
} gather_plan;

/* offsets of column p: into t (with t_stride) and into the contiguous index/output */
static void gather_column(const ewb_tensor *idx, int d, const int64_t *t_stride, int64_t p, int64_t *t_off, int64_t *io_off) {
    int64_t to = 0, io = 0, st = 1;
    for (int k = idx->ndim - 1; k >= 0; k--) {
        if (k != d) {
            int64_t c = p % idx->shape[k];
            p /= idx->shape[k];
            to += c * t_stride[k];
            io += c * st;
        }
        st *= idx->shape[k];
    }
    *t_off = to;
    *io_off = io;
}

static gather_plan gather_plan_of(const ewb_tensor *idx, int d) {
    gather_plan g;
    g.len = idx->shape[d];
    g.ncols = g.len ? ewb_tensor_numel(idx) / g.len : 0;
    g.stride_io = ewb_shape_numel(idx->ndim - d - 1, idx->shape + d + 1);
    return g;
}

static int gather_backward(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0); // shape of t, contiguous
    if (!g) return 0;
    ewb_tensor *idx = n->saved[0]; // contiguous
    int d = (int)n->iarg[0];
    gather_plan pl = gather_plan_of(idx, d);
    const void *ip = ewb_tensor_data(idx);
    const float *go = ewb_f32(n->gout);
    float *gp = ewb_f32(g);
    int64_t gs[EWB_MAX_DIMS];
    ewb_contiguous_strides(g->ndim, g->shape, gs);
    #pragma omp parallel for if (pl.ncols * pl.len > 1 << 15)
    for (int64_t p = 0; p < pl.ncols; p++) {
        int64_t to, io;
        gather_column(idx, d, gs, p, &to, &io);
        for (int64_t j = 0; j < pl.len; j++) {
            int64_t e = io + j * pl.stride_io;
            gp[to + load_index(ip, idx->dtype, e) * gs[d]] += go[e];
        }
    }
    return 0;
}

int ewb_gather(ewb_tensor *t, int dim, ewb_tensor *index, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("gather", t));
    EWB_TRY(check_index("gather", "index", index));
    if (t->ndim == 0) return ewb_error("gather: input %s must have at least 1 dim", ewb_s(t));
    int d = 0;
    EWB_TRY(norm_dim("gather", t, dim, 0, &d));
    if (index->ndim != t->ndim)
        return ewb_error("gather: index %s must have as many dims as the input %s", ewb_s(index), ewb_s(t));
    for (int k = 0; k < t->ndim; k++)
        if (k != d && index->shape[k] > t->shape[k])
            return ewb_error("gather: index %s is larger than the input %s in dim %d", ewb_s(index), ewb_s(t), k);
    ewb_tensor *ic = ewb_contig_or_self(index);
    if (!ic) return -1;
    if (check_range("gather", ic, t->shape[d], d, t)) { ewb_tensor_free(ic); return -1; }
    ewb_tensor *o = ewb_empty(t->dtype, index->ndim, index->shape); // shape of index
    if (!o) { ewb_tensor_free(ic); return -1; }
    gather_plan pl = gather_plan_of(ic, d);
    size_t es = ewb_dtype_size(t->dtype);
    const char *tp = ewb_tensor_data(t);
    char *op = ewb_tensor_data(o);
    const void *ip = ewb_tensor_data(ic);
    #pragma omp parallel for if (pl.ncols * pl.len > 1 << 15)
    for (int64_t p = 0; p < pl.ncols; p++) {
        int64_t to, io;
        gather_column(ic, d, t->stride, p, &to, &io);
        for (int64_t j = 0; j < pl.len; j++) {
            int64_t e = io + j * pl.stride_io;
            memcpy(op + (size_t)e * es, tp + (size_t)(to + load_index(ip, ic->dtype, e) * t->stride[d]) * es, es);
        }
    }
    ewb_node *n = ewb_record("gather", gather_backward, 1, &t, o);
    if (n) {
        n->iarg[0] = d;
        ewb_save(n, 0, ic);
    }
    ewb_tensor_free(ic);
    return ewb_finish("gather", o, 0, out);
}

/* ================================================================ index_select */
/* out (outer, K, inner) = t (outer, N, inner)[:, index, :] */
static int index_select_backward(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0); // (outer, N, inner)
    if (!g) return 0;
    ewb_tensor *idx = n->saved[0]; // (K) contiguous
    int d = (int)n->iarg[0];
    int64_t outer = ewb_shape_numel(d, g->shape), N = g->shape[d], K = ewb_tensor_numel(idx);
    int64_t inner = ewb_shape_numel(g->ndim - d - 1, g->shape + d + 1);
    const void *ip = ewb_tensor_data(idx);
    const float *go = ewb_f32(n->gout); // (outer, K, inner)
    float *gp = ewb_f32(g);
    /* repeated indices add into the same row, so rows of one outer slice stay
       in one thread; parallel over outer, or over inner when outer is 1 */
    if (outer > 1) {
        #pragma omp parallel for if (outer * K * inner > 1 << 15)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < K; k++) {
                float *dst = gp + (o * N + load_index(ip, idx->dtype, k)) * inner;
                const float *src = go + (o * K + k) * inner;
                for (int64_t i = 0; i < inner; i++) dst[i] += src[i];
            }
    } else {
        #pragma omp parallel for if (K * inner > 1 << 15)
        for (int64_t i = 0; i < inner; i++)
            for (int64_t k = 0; k < K; k++) gp[load_index(ip, idx->dtype, k) * inner + i] += go[k * inner + i];
    }
    return 0;
}

int ewb_index_select(ewb_tensor *t, int dim, ewb_tensor *index, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("index_select", t));
    EWB_TRY(check_index("index_select", "index", index));
    if (t->ndim == 0) return ewb_error("index_select: input %s must have at least 1 dim", ewb_s(t));
    if (index->ndim > 1) return ewb_error("index_select: index must be 1-D, got %s", ewb_s(index));
    int d = 0;
    EWB_TRY(norm_dim("index_select", t, dim, 0, &d));
    ewb_tensor *ic = ewb_contig_or_self(index);
    if (!ic) return -1;
    if (check_range("index_select", ic, t->shape[d], d, t)) { ewb_tensor_free(ic); return -1; }
    ewb_tensor *tc = ewb_contig_or_self(t); // (outer, N, inner)
    int64_t shape[EWB_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = ewb_tensor_numel(ic);
    ewb_tensor *o = tc ? ewb_empty(t->dtype, t->ndim, shape) : NULL; // (outer, K, inner)
    if (!o) { ewb_tensor_free(ic); ewb_tensor_free(tc); return -1; }
    int64_t outer = ewb_shape_numel(d, shape), N = t->shape[d], K = shape[d];
    int64_t inner = ewb_shape_numel(t->ndim - d - 1, shape + d + 1);
    size_t row = (size_t)inner * ewb_dtype_size(t->dtype);
    const char *src = ewb_tensor_data(tc);
    char *dst = ewb_tensor_data(o);
    const void *ip = ewb_tensor_data(ic);
    #pragma omp parallel for collapse(2) if (outer * K * inner > 1 << 15)
    for (int64_t r = 0; r < outer; r++)
        for (int64_t k = 0; k < K; k++)
            memcpy(dst + (size_t)(r * K + k) * row, src + (size_t)(r * N + load_index(ip, ic->dtype, k)) * row, row);
    ewb_tensor_free(tc);
    ewb_node *n = ewb_record("index_select", index_select_backward, 1, &t, o);
    if (n) {
        n->iarg[0] = d;
        ewb_save(n, 0, ic);
    }
    ewb_tensor_free(ic);
    return ewb_finish("index_select", o, 0, out);
}

/* ================================================================ where */
/* out = cond ? a : b, all three broadcast together */
static int where_backward(ewb_node *n) {
    ewb_tensor *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1), *g = n->gout;
    if (!ga && !gb) return 0;
    ewb_tensor *c = broadcast_copy("where", n->saved[0], g->ndim, g->shape); // bool, shape of out
    ewb_tensor *tmp = c ? ewb_empty(EWB_DTYPE_F32, g->ndim, g->shape) : NULL;
    if (!tmp) { ewb_tensor_free(c); return -1; }
    int64_t m = ewb_tensor_numel(g);
    const uint8_t *cp = ewb_tensor_data(c);
    const float *gp = ewb_f32(g);
    float *tp = ewb_f32(tmp);
    int rc = 0;
    for (int side = 0; side < 2 && rc == 0; side++) {
        ewb_tensor *dst = side == 0 ? ga : gb;
        if (!dst) continue;
        uint8_t take = side == 0; /* a gets the elements where cond is 1 */
        #pragma omp parallel for if (m > 1 << 16)
        for (int64_t i = 0; i < m; i++) tp[i] = (cp[i] != 0) == take ? gp[i] : 0.0f;
        rc = ewb_accumulate_reduced(dst, tmp, 1.0);
    }
    ewb_tensor_free(c);
    ewb_tensor_free(tmp);
    return rc;
}

int ewb_where(ewb_tensor *cond, ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("where", cond));
    EWB_TRY(ewb_check_alive("where", a));
    EWB_TRY(ewb_check_alive("where", b));
    if (cond->dtype != EWB_DTYPE_BOOL) return ewb_error("where: cond must be a bool tensor, got %s", ewb_s(cond));
    if (a->dtype != b->dtype)
        return ewb_error("where: a %s and b %s must have the same dtype", ewb_s(a), ewb_s(b));
    int nd_ab = 0, nd = 0;
    int64_t s_ab[EWB_MAX_DIMS], shape[EWB_MAX_DIMS];
    EWB_TRY(ewb_broadcast_shape("where", a, b, &nd_ab, s_ab));
    ewb_tensor *ab = ewb_broadcast_view(a, nd_ab, s_ab); /* stands for the shape of a and b together */
    if (!ab) return ewb_error("where: internal broadcast failure for %s", ewb_s(a));
    int rc = ewb_broadcast_shape("where", cond, ab, &nd, shape);
    ewb_tensor_free(ab);
    if (rc) return ewb_error("where: cond %s, a %s and b %s do not broadcast together", ewb_s(cond), ewb_s(a), ewb_s(b));
    ewb_tensor *c = broadcast_copy("where", cond, nd, shape), *ac = broadcast_copy("where", a, nd, shape),
               *bc = broadcast_copy("where", b, nd, shape), *o = ewb_empty(a->dtype, nd, shape);
    if (!c || !ac || !bc || !o) rc = -1;
    if (rc == 0) {
        int64_t m = ewb_tensor_numel(o);
        size_t es = ewb_dtype_size(a->dtype);
        const uint8_t *cp = ewb_tensor_data(c);
        const char *ap = ewb_tensor_data(ac), *bp = ewb_tensor_data(bc);
        char *op = ewb_tensor_data(o);
        if (a->dtype == EWB_DTYPE_F32) {
            const float *af = (const float *)ap, *bf = (const float *)bp;
            float *of = (float *)op;
            #pragma omp parallel for if (m > 1 << 16)
            for (int64_t i = 0; i < m; i++) of[i] = cp[i] ? af[i] : bf[i];
        } else {
            for (int64_t i = 0; i < m; i++) memcpy(op + (size_t)i * es, (cp[i] ? ap : bp) + (size_t)i * es, es);
        }
    }
    ewb_tensor_free(c);
    ewb_tensor_free(ac);
    ewb_tensor_free(bc);
    if (rc) { ewb_tensor_free(o); return -1; }
    ewb_tensor *ins[2] = {a, b};
    ewb_node *n = ewb_record("where", where_backward, 2, ins, o);
    if (n) ewb_save(n, 0, cond);
    return ewb_finish("where", o, 0, out);
}

/* ================================================================ masked_fill */
/* out = mask ? value : t, mask broadcast to t's shape */
static int masked_fill_backward(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0); // shape of t
    if (!g) return 0;
    ewb_tensor *mc = broadcast_copy("masked_fill", n->saved[0], g->ndim, g->shape);
    if (!mc) return -1;
    int64_t m = ewb_tensor_numel(g);
    const uint8_t *mp = ewb_tensor_data(mc);
    const float *go = ewb_f32(n->gout);
    float *gp = ewb_f32(g);
    #pragma omp parallel for if (m > 1 << 16)
    for (int64_t i = 0; i < m; i++)
        if (!mp[i]) gp[i] += go[i];
    ewb_tensor_free(mc);
    return 0;
}

int ewb_masked_fill(ewb_tensor *t, ewb_tensor *mask, double value, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("masked_fill", t));
    EWB_TRY(ewb_check_alive("masked_fill", mask));
    if (mask->dtype != EWB_DTYPE_BOOL) return ewb_error("masked_fill: mask must be a bool tensor, got %s", ewb_s(mask));
    ewb_tensor *mv = ewb_broadcast_view(mask, t->ndim, t->shape);
    if (!mv) return ewb_error("masked_fill: mask %s does not broadcast to the input %s", ewb_s(mask), ewb_s(t));
    ewb_tensor *mc = ewb_contig_or_self(mv);
    ewb_tensor_free(mv);
    ewb_tensor *o = mc ? ewb_empty_like(t) : NULL;
    ewb_tensor *fill = o ? ewb_empty(t->dtype, 0, NULL) : NULL; /* value in t's dtype */
    int rc = fill ? ewb_copy_(o, t) : -1;
    if (rc == 0) rc = ewb_fill_(fill, value);
    if (rc == 0) {
        int64_t m = ewb_tensor_numel(o);
        size_t es = ewb_dtype_size(t->dtype);
        const uint8_t *mp = ewb_tensor_data(mc);
        const char *vp = ewb_tensor_data(fill);
        char *op = ewb_tensor_data(o);
        #pragma omp parallel for if (m > 1 << 16)
        for (int64_t i = 0; i < m; i++)
            if (mp[i]) memcpy(op + (size_t)i * es, vp, es);
    }
    ewb_tensor_free(mc);
    ewb_tensor_free(fill);
    if (rc) { ewb_tensor_free(o); return -1; }
    ewb_node *n = ewb_record("masked_fill", masked_fill_backward, 1, &t, o);
    if (n) ewb_save(n, 0, mask);
    return ewb_finish("masked_fill", o, 0, out);
}
