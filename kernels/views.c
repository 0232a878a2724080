/* views.c: ops that return a strided view of their input without copying
 * (view/reshape, permute/transpose, narrow/slice/select, expand,
 * squeeze/unsqueeze). Each public op is a raw metadata transform plus an
 * autograd record; the backward applies the same (or inverse) transform to
 * the input's gradient buffer and accumulates the output gradient into it. */
#include "../core/internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int norm_dim(const char *op, const ewb_tensor *t, int dim, int extra, int *out) {
    int nd = t->ndim + extra;
    int d = dim < 0 ? dim + nd : dim;
    if (d < 0 || d >= nd || nd == 0)
        return ewb_error("%s: dim %d out of range for %s", op, dim, ewb_s(t));
    *out = d;
    return 0;
}

/* ---- raw transforms: return a new alias or NULL with the error set ---- */

/* shape with one -1 resolved; stride-compatible check as in torch.view */
static int infer_shape(const char *op, const ewb_tensor *t, int ndim, const int64_t *shape, int64_t *res) {
    if (ndim < 0 || ndim > EWB_MAX_DIMS) return ewb_error("%s: %d dims requested, at most %d", op, ndim, EWB_MAX_DIMS);
    int64_t n = ewb_tensor_numel(t), known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) return ewb_error("%s: only one dimension can be -1", op);
            infer = i;
        } else if (shape[i] < 0) {
            return ewb_error("%s: invalid size %lld", op, (long long)shape[i]);
        } else {
            known *= shape[i];
        }
        res[i] = shape[i];
    }
    if (infer >= 0) {
        if (known == 0 || n % known) return ewb_error("%s: cannot infer size for %s with %lld elements", op, ewb_s(t), (long long)n);
        res[infer] = n / known;
        known *= res[infer];
    }
    if (known != n) {
        char want[128];
        int k = snprintf(want, sizeof want, "[");
        for (int i = 0; i < ndim; i++) k += snprintf(want + k, sizeof want - k, i ? ",%lld" : "%lld", (long long)shape[i]);
        snprintf(want + k, sizeof want - k, "]");
        return ewb_error("%s: shape %s is invalid for %s (%lld elements)", op, want, ewb_s(t), (long long)n);
    }
    return 0;
}

/* strides for viewing t as (ndim, shape) without a copy, or -1 if impossible
   (the algorithm of torch's computeStride: match groups of dims) */
static int view_strides(const ewb_tensor *t, int ndim, const int64_t *shape, int64_t *stride) {
    if (ewb_tensor_numel(t) == 0 || ewb_tensor_is_contiguous(t)) {
        ewb_contiguous_strides(ndim, shape, stride);
        return 0;
    }
    /* walk t's dims from the innermost, in chunks of dims that are
       contiguous with each other; chunk is the stride of a chunk's innermost
       dim (torch's computeStride) */
    int view_d = ndim - 1;
    int64_t chunk = t->stride[t->ndim - 1], tensor_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->stride[d - 1] != tensor_numel * chunk)) {
            int64_t view_numel = 1;
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                stride[view_d] = view_numel * chunk;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) return -1;
            if (d > 0) { chunk = t->stride[d - 1]; tensor_numel = 1; }
        }
    }
    return view_d == -1 ? 0 : -1;
}

static ewb_tensor *raw_view(const ewb_tensor *t, int ndim, const int64_t *shape) {
    int64_t res[EWB_MAX_DIMS], st[EWB_MAX_DIMS];
    if (infer_shape("view", t, ndim, shape, res)) return NULL;
    if (view_strides(t, ndim, res, st)) {
        ewb_error("view: %s is not compatible with the requested shape because of its strides; use reshape", ewb_s(t));
        return NULL;
    }
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    v->ndim = ndim;
    memcpy(v->shape, res, sizeof(int64_t) * ndim);
    memcpy(v->stride, st, sizeof(int64_t) * ndim);
    return v;
}

static ewb_tensor *raw_permute(const ewb_tensor *t, const int *dims) {
    int seen[EWB_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        int d = dims[i] < 0 ? dims[i] + t->ndim : dims[i];
        if (d < 0 || d >= t->ndim || seen[d]) {
            ewb_error("permute: dims are not a permutation of 0..%d for %s", t->ndim - 1, ewb_s(t));
            return NULL;
        }
        seen[d] = 1;
    }
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    for (int i = 0; i < t->ndim; i++) {
        int d = dims[i] < 0 ? dims[i] + t->ndim : dims[i];
        v->shape[i] = t->shape[d];
        v->stride[i] = t->stride[d];
    }
    return v;
}

static ewb_tensor *raw_slice(const ewb_tensor *t, int dim, int64_t start, int64_t stop, int64_t step) {
    int64_t n = t->shape[dim];
    if (start < 0) start += n;
    if (stop < 0) stop += n;
    if (stop > n) stop = n;
    if (step <= 0 || start < 0 || start > n || stop < start) {
        ewb_error("slice: range [%lld:%lld:%lld] is out of bounds for dim %d of %s", (long long)start, (long long)stop,
                  (long long)step, dim, ewb_s(t));
        return NULL;
    }
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    v->offset += start * t->stride[dim];
    v->shape[dim] = (stop - start + step - 1) / step;
    v->stride[dim] = t->stride[dim] * step;
    return v;
}

static ewb_tensor *raw_select(const ewb_tensor *t, int dim, int64_t idx) {
    if (idx < 0) idx += t->shape[dim];
    if (idx < 0 || idx >= t->shape[dim]) {
        ewb_error("select: index %lld out of range for dim %d of %s", (long long)idx, dim, ewb_s(t));
        return NULL;
    }
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    v->offset += idx * t->stride[dim];
    for (int i = dim; i < t->ndim - 1; i++) { v->shape[i] = t->shape[i + 1]; v->stride[i] = t->stride[i + 1]; }
    v->ndim--;
    return v;
}

/* ---- backward helpers ---- */
static int bw_view(ewb_node *n) { /* gout reshaped to the input's shape */
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    ewb_tensor *v = raw_view(n->gout, g->ndim, g->shape);
    if (!v) return -1;
    int rc = ewb_add_(g, v, 1.0);
    ewb_tensor_free(v);
    return rc;
}
static int bw_permute(ewb_node *n) { /* iarg holds the forward permutation */
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    int inv[EWB_MAX_DIMS];
    for (int i = 0; i < g->ndim; i++) inv[n->iarg[i]] = i;
    ewb_tensor *v = raw_permute(n->gout, inv);
    if (!v) return -1;
    int rc = ewb_add_(g, v, 1.0);
    ewb_tensor_free(v);
    return rc;
}
static int bw_slice(ewb_node *n) { /* iarg = dim, start, stop, step */
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    ewb_tensor *v = raw_slice(g, (int)n->iarg[0], n->iarg[1], n->iarg[2], n->iarg[3]);
    if (!v) return -1;
    int rc = ewb_add_(v, n->gout, 1.0);
    ewb_tensor_free(v);
    return rc;
}
static int bw_select(ewb_node *n) { /* iarg = dim, index */
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    ewb_tensor *v = raw_select(g, (int)n->iarg[0], n->iarg[1]);
    if (!v) return -1;
    int rc = ewb_add_(v, n->gout, 1.0);
    ewb_tensor_free(v);
    return rc;
}
static int bw_expand(ewb_node *n) {
    ewb_tensor *g = ewb_grad_slot(n, 0);
    return g ? ewb_accumulate_reduced(g, n->gout, 1.0) : 0;
}

/* ---- public ops ---- */
static int finish_view(const char *name, ewb_backward_fn bw, ewb_tensor *t, ewb_tensor *v, ewb_tensor **out, ewb_node **node) {
    if (!v) return -1;
    ewb_node *n = ewb_record(name, bw, 1, &t, v);
    if (node) *node = n;
    *out = v;
    return 0;
}

int ewb_view(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("view", t));
    return finish_view("view", bw_view, t, raw_view(t, ndim, shape), out, NULL);
}

int ewb_reshape(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("reshape", t));
    int64_t res[EWB_MAX_DIMS], st[EWB_MAX_DIMS];
    EWB_TRY(infer_shape("reshape", t, ndim, shape, res));
    if (view_strides(t, ndim, res, st) == 0) return ewb_view(t, ndim, res, out);
    ewb_tensor *c;
    EWB_TRY(ewb_clone(t, &c)); /* contiguous copy, differentiable */
    int rc = ewb_view(c, ndim, res, out);
    ewb_tensor_free(c);
    return rc;
}

int ewb_permute(ewb_tensor *t, const int *dims, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("permute", t));
    ewb_node *n = NULL;
    EWB_TRY(finish_view("permute", bw_permute, t, raw_permute(t, dims), out, &n));
    if (n)
        for (int i = 0; i < t->ndim; i++) n->iarg[i] = dims[i] < 0 ? dims[i] + t->ndim : dims[i];
    return 0;
}

int ewb_transpose(ewb_tensor *t, int d0, int d1, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("transpose", t));
    int a = 0, b = 0, dims[EWB_MAX_DIMS];
    EWB_TRY(norm_dim("transpose", t, d0, 0, &a));
    EWB_TRY(norm_dim("transpose", t, d1, 0, &b));
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    dims[a] = b;
    dims[b] = a;
    return ewb_permute(t, dims, out);
}

int ewb_slice(ewb_tensor *t, int dim, int64_t start, int64_t stop, int64_t step, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("slice", t));
    int d = 0;
    EWB_TRY(norm_dim("slice", t, dim, 0, &d));
    ewb_node *n = NULL;
    EWB_TRY(finish_view("slice", bw_slice, t, raw_slice(t, d, start, stop, step), out, &n));
    if (n) {
        int64_t len = t->shape[d];
        n->iarg[0] = d;
        n->iarg[1] = start < 0 ? start + len : start;
        n->iarg[2] = stop < 0 ? stop + len : (stop > len ? len : stop);
        n->iarg[3] = step;
    }
    return 0;
}

int ewb_narrow(ewb_tensor *t, int dim, int64_t start, int64_t length, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("narrow", t));
    int d = 0;
    EWB_TRY(norm_dim("narrow", t, dim, 0, &d));
    if (start < 0) start += t->shape[d];
    if (start < 0 || length < 0 || start + length > t->shape[d])
        return ewb_error("narrow: start %lld + length %lld exceeds dim %d of %s", (long long)start, (long long)length, d,
                         ewb_s(t));
    return ewb_slice(t, d, start, start + length, 1, out);
}

int ewb_select(ewb_tensor *t, int dim, int64_t index, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("select", t));
    int d = 0;
    EWB_TRY(norm_dim("select", t, dim, 0, &d));
    ewb_node *n = NULL;
    EWB_TRY(finish_view("select", bw_select, t, raw_select(t, d, index), out, &n));
    if (n) {
        n->iarg[0] = d;
        n->iarg[1] = index < 0 ? index + t->shape[d] : index;
    }
    return 0;
}

int ewb_expand(ewb_tensor *t, int ndim, const int64_t *shape, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("expand", t));
    if (ndim < t->ndim || ndim > EWB_MAX_DIMS)
        return ewb_error("expand: cannot expand %s to %d dims", ewb_s(t), ndim);
    int64_t res[EWB_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int j = t->ndim - ndim + i;
        res[i] = shape[i] == -1 && j >= 0 ? t->shape[j] : shape[i];
    }
    ewb_tensor *v = ewb_broadcast_view(t, ndim, res);
    if (!v) return ewb_error("expand: %s cannot be expanded to the requested shape (only size-1 dims expand)", ewb_s(t));
    return finish_view("expand", bw_expand, t, v, out, NULL);
}

int ewb_squeeze(ewb_tensor *t, int dim, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("squeeze", t));
    int d = 0;
    EWB_TRY(norm_dim("squeeze", t, dim, 0, &d));
    if (t->shape[d] != 1) return ewb_error("squeeze: dim %d of %s has size %lld, not 1", dim, ewb_s(t), (long long)t->shape[d]);
    int64_t shp[EWB_MAX_DIMS];
    for (int i = 0, k = 0; i < t->ndim; i++)
        if (i != d) shp[k++] = t->shape[i];
    return ewb_reshape(t, t->ndim - 1, shp, out);
}

int ewb_unsqueeze(ewb_tensor *t, int dim, ewb_tensor **out) {
    EWB_TRY(ewb_check_alive("unsqueeze", t));
    if (t->ndim >= EWB_MAX_DIMS) return ewb_error("unsqueeze: %s already has %d dims", ewb_s(t), EWB_MAX_DIMS);
    int d = 0;
    EWB_TRY(norm_dim("unsqueeze", t, dim, 1, &d));
    ewb_tensor *v = ewb_alias(t);
    if (!v) return -1;
    for (int i = t->ndim; i > d; i--) { v->shape[i] = t->shape[i - 1]; v->stride[i] = t->stride[i - 1]; }
    v->shape[d] = 1;
    v->stride[d] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
    v->ndim = t->ndim + 1;
    return finish_view("unsqueeze", bw_view, t, v, out, NULL);
}
