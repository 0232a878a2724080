/* conv.c: 1-D convolution and transposed convolution (PyTorch semantics),
 * forward and backward, on oneDNN's convolution and deconvolution
 * primitives, plus their naive reference twins (conv.h, for tests).
 *
 * Layouts are plain: x (B,Cin,L) and y (B,Cout,Lout) are contiguous "ncw".
 * PyTorch's weights are handed to oneDNN as strided memory descriptors, no
 * copy:
 *   conv        w (Cout, Cin/G, K)  -> oneDNN (G, Cout/G, Cin/G, K), dense
 *   transposed  w (Cin, Cout/G, K)  -> oneDNN (G, Cout/G, Cin/G, K), with the
 *               two channel dims swapped (strides K and Cout/G*K)
 * (without groups the leading G dim is dropped). oneDNN's dilation counts
 * the holes between taps: PyTorch's dilation minus 1.
 *
 * Backward runs oneDNN's backward-data and backward-weights primitives
 * (created with the forward primitive descriptor as hint) into temporaries
 * and adds them to the gradient buffers: those primitives have no sum
 * post-op. */
#include "conv.h"
#include "dnnl.h"
#include <stdlib.h>
#include <string.h>

/* everything that fixes a convolution's primitives; all int64 so that the
   struct has no padding and can be a cache key as raw bytes */
typedef struct {
    int64_t transposed, has_bias;
    int64_t B, Cin, L, Cout, K, Lout;
    int64_t stride, pad_l, pad_r, dilation, groups; /* dilation as PyTorch: 1 = dense */
} geom;

enum { FWD = 0, BWD_DATA = 1, BWD_WEIGHTS = 2 };

static const char *opname(const geom *g) { return g->transposed ? "conv_transpose1d" : "conv1d"; }

/* checks the arguments of either op and fills in the geometry */
static int setup(int transposed, ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding,
                 int output_padding, int dilation, int groups, geom *g) {
    const char *op = transposed ? "conv_transpose1d" : "conv1d";
    EWB_TRY(ewb_check_f32(op, x));
    EWB_TRY(ewb_check_f32(op, w));
    if (b) EWB_TRY(ewb_check_f32(op, b));
    if (x->ndim != 3) return ewb_error("%s: input must be (B, Cin, L), got %s", op, ewb_s(x));
    if (w->ndim != 3)
        return ewb_error("%s: weight must be %s, got %s", op,
                         transposed ? "(Cin, Cout/groups, K)" : "(Cout, Cin/groups, K)", ewb_s(w));
    if (stride < 1 || dilation < 1 || padding < 0 || groups < 1 || output_padding < 0)
        return ewb_error("%s: invalid stride %d, padding %d, dilation %d, groups %d or output_padding %d "
                         "(stride, dilation, groups >= 1; paddings >= 0)", op, stride, padding, dilation, groups,
                         output_padding);
    memset(g, 0, sizeof *g);
    g->transposed = transposed;
    g->has_bias = b != NULL;
    g->B = x->shape[0];
    g->Cin = x->shape[1];
    g->L = x->shape[2];
    g->K = w->shape[2];
    g->stride = stride;
    g->dilation = dilation;
    g->groups = groups;
    g->pad_l = padding;
    if (g->Cin % groups)
        return ewb_error("%s: groups %d does not divide the %lld input channels of %s", op, groups,
                         (long long)g->Cin, ewb_s(x));
    if (!transposed) {
        g->Cout = w->shape[0];
        if (g->Cout % groups)
            return ewb_error("%s: groups %d does not divide the %lld output channels of weight %s", op, groups,
                             (long long)g->Cout, ewb_s(w));
        if (w->shape[1] * groups != g->Cin)
            return ewb_error("%s: input %s has %lld channels but weight %s expects %lld (Cin/groups %lld, groups %d)",
                             op, ewb_s(x), (long long)g->Cin, ewb_s(w), (long long)(w->shape[1] * groups),
                             (long long)w->shape[1], groups);
    } else {
        if (w->shape[0] != g->Cin)
            return ewb_error("%s: input %s has %lld channels but weight %s expects %lld", op, ewb_s(x),
                             (long long)g->Cin, ewb_s(w), (long long)w->shape[0]);
        g->Cout = w->shape[1] * groups;
        if (output_padding >= stride && output_padding >= dilation)
            return ewb_error("%s: output_padding %d must be smaller than stride %d or dilation %d", op,
                             output_padding, stride, dilation);
    }
    if (g->K < 1 || g->Cout < 1 || g->Cin < 1)
        return ewb_error("%s: empty channel or kernel dims in input %s, weight %s", op, ewb_s(x), ewb_s(w));
    if (b && (b->ndim != 1 || b->shape[0] != g->Cout))
        return ewb_error("%s: bias %s does not match the %lld output channels", op, ewb_s(b), (long long)g->Cout);
    int64_t extent = (g->K - 1) * dilation + 1; /* taps span this many input samples */
    if (!transposed) {
        if (g->L + 2 * padding < extent)
            return ewb_error("%s: input %s is too short: length %lld + 2*padding %d is less than the kernel extent "
                             "%lld (K %lld, dilation %d)", op, ewb_s(x), (long long)g->L, padding, (long long)extent,
                             (long long)g->K, dilation);
        g->Lout = (g->L + 2 * padding - extent) / stride + 1;
        g->pad_r = padding; /* oneDNN floors like PyTorch */
    } else {
        g->Lout = (g->L - 1) * stride - 2 * padding + extent + output_padding;
        if (g->L < 1 || g->Lout < 1)
            return ewb_error("%s: input %s gives output length %lld (stride %d, padding %d, kernel extent %lld)", op,
                             ewb_s(x), (long long)g->Lout, stride, padding, (long long)extent);
        /* oneDNN's deconvolution has Lout = (L-1)*stride + extent - pad_l - pad_r */
        g->pad_r = padding - output_padding;
        if (g->pad_r + stride <= 0)
            return ewb_error("%s: output_padding %d with padding %d and stride %d is not supported by oneDNN "
                             "(needs output_padding < padding + stride)", op, output_padding, padding, stride);
    }
    return 0;
}

/* memory descriptors of the primitive: src (B,Cin,L), weights, bias (Cout), dst (B,Cout,Lout) */
static int make_mds(const geom *g, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wei, dnnl_memory_desc_t *bias,
                    dnnl_memory_desc_t *dst) {
    const char *op = opname(g);
    int64_t sd[3] = {g->B, g->Cin, g->L}, dd[3] = {g->B, g->Cout, g->Lout}, st[3];
    ewb_contiguous_strides(3, sd, st);
    EWB_TRY(ewb_dnnl_check(ewb_md_dims(src, 3, sd, st), op, "src md"));
    ewb_contiguous_strides(3, dd, st);
    EWB_TRY(ewb_dnnl_check(ewb_md_dims(dst, 3, dd, st), op, "dst md"));
    int64_t one = 1;
    EWB_TRY(ewb_dnnl_check(ewb_md_dims(bias, 1, &g->Cout, &one), op, "bias md"));
    int64_t G = g->groups, og = g->Cout / G, ig = g->Cin / G, K = g->K;
    int64_t wd[4] = {G, og, ig, K}, ws[4];
    if (!g->transposed) { /* PyTorch (G*og, ig, K) */
        ws[0] = og * ig * K; ws[1] = ig * K; ws[2] = K; ws[3] = 1;
    } else {              /* PyTorch (G*ig, og, K) */
        ws[0] = ig * og * K; ws[1] = K; ws[2] = og * K; ws[3] = 1;
    }
    if (G == 1) EWB_TRY(ewb_dnnl_check(ewb_md_dims(wei, 3, wd + 1, ws + 1), op, "weights md"));
    else EWB_TRY(ewb_dnnl_check(ewb_md_dims(wei, 4, wd, ws), op, "weights md"));
    return 0;
}

/* the cached primitive of one kind; backward ones are hinted by the forward pd */
static ewb_prim *get_prim(const geom *g, int kind) {
    const char *op = opname(g);
    ewb_key key = {.n = 0};
    ewb_key_str(&key, op);
    ewb_key_int(&key, kind);
    ewb_key_add(&key, g, sizeof *g);
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (p) return p;
    ewb_prim *hint = NULL;
    if (kind != FWD && !(hint = get_prim(g, FWD))) return NULL;
    dnnl_memory_desc_t src, wei, bias, dst;
    if (make_mds(g, &src, &wei, &bias, &dst)) return NULL;
    const dnnl_memory_desc_t *bp = g->has_bias ? &bias : NULL;
    dnnl_dims_t strides = {g->stride}, dil = {g->dilation - 1}, pl = {g->pad_l}, pr = {g->pad_r};
    dnnl_convolution_desc_t d;
    dnnl_status_t s;
    if (!g->transposed) {
        dnnl_alg_kind_t alg = dnnl_convolution_direct;
        if (kind == FWD)
            s = dnnl_dilated_convolution_forward_desc_init(&d, dnnl_forward_training, alg, &src, &wei, bp, &dst,
                                                           strides, dil, pl, pr);
        else if (kind == BWD_DATA)
            s = dnnl_dilated_convolution_backward_data_desc_init(&d, alg, &src, &wei, &dst, strides, dil, pl, pr);
        else
            s = dnnl_dilated_convolution_backward_weights_desc_init(&d, alg, &src, &wei, bp, &dst, strides, dil, pl, pr);
    } else {
        dnnl_alg_kind_t alg = dnnl_deconvolution_direct;
        if (kind == FWD)
            s = dnnl_dilated_deconvolution_forward_desc_init(&d, dnnl_forward_training, alg, &src, &wei, bp, &dst,
                                                             strides, dil, pl, pr);
        else if (kind == BWD_DATA)
            s = dnnl_dilated_deconvolution_backward_data_desc_init(&d, alg, &src, &wei, &dst, strides, dil, pl, pr);
        else
            s = dnnl_dilated_deconvolution_backward_weights_desc_init(&d, alg, &src, &wei, bp, &dst, strides, dil,
                                                                      pl, pr);
    }
    static const char *what[3] = {"forward descriptor", "backward-data descriptor", "backward-weights descriptor"};
    if (ewb_dnnl_check(s, op, what[kind])) return NULL;
    dnnl_primitive_attr_t attr = ewb_attr_new(0);
    dnnl_primitive_desc_t pd;
    s = dnnl_primitive_desc_create(&pd, &d, attr, ewb_dnnl_engine(), hint ? hint->pd : NULL);
    dnnl_primitive_attr_destroy(attr);
    if (ewb_dnnl_check(s, op, "primitive descriptor")) return NULL;
    return ewb_prim_put(key.buf, key.n, pd, op);
}

/* saved[0] = x (B,Cin,L), saved[1] = w, both contiguous; ctx = geom */
static int conv_backward(ewb_node *n) {
    const geom *g = n->ctx;
    const char *op = opname(g);
    ewb_tensor *x = n->saved[0], *w = n->saved[1], *dy = n->gout; /* dy (B,Cout,Lout) */
    ewb_tensor *gx = ewb_grad_slot(n, 0), *gw = ewb_grad_slot(n, 1);
    ewb_tensor *gb = n->ninputs > 2 ? ewb_grad_slot(n, 2) : NULL;
    if (g->B == 0) return 0;
    int rc = 0;
    if (gx) {
        ewb_tensor *tx = ewb_empty_like(x); /* (B,Cin,L) */
        ewb_prim *p = tx ? get_prim(g, BWD_DATA) : NULL;
        int kinds[3] = {DNNL_ARG_DIFF_DST, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_SRC};
        void *ptrs[3] = {ewb_tensor_data(dy), ewb_tensor_data(w), tx ? ewb_tensor_data(tx) : NULL};
        rc = p ? ewb_prim_exec(p, op, 3, kinds, ptrs) : -1;
        if (rc == 0) rc = ewb_add_(gx, tx, 1.0);
        ewb_tensor_free(tx);
    }
    if (rc == 0 && (gw || gb)) {
        ewb_tensor *tw = ewb_empty_like(w), *tb = g->has_bias ? ewb_empty(EWB_DTYPE_F32, 1, &g->Cout) : NULL;
        ewb_prim *p = tw && (tb || !g->has_bias) ? get_prim(g, BWD_WEIGHTS) : NULL;
        int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
        void *ptrs[4] = {ewb_tensor_data(x), ewb_tensor_data(dy), tw ? ewb_tensor_data(tw) : NULL,
                         tb ? ewb_tensor_data(tb) : NULL};
        rc = p ? ewb_prim_exec(p, op, g->has_bias ? 4 : 3, kinds, ptrs) : -1;
        if (rc == 0 && gw) rc = ewb_add_(gw, tw, 1.0);
        if (rc == 0 && gb) rc = ewb_add_(gb, tb, 1.0);
        ewb_tensor_free(tw);
        ewb_tensor_free(tb);
    }
    return rc;
}

static int conv_run(const geom *g, ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, ewb_tensor **out) {
    const char *op = opname(g);
    int64_t ys[3] = {g->B, g->Cout, g->Lout};
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, 3, ys); /* (B,Cout,Lout) */
    if (!y) return -1;
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = ewb_contig_or_self(w), *bc = b ? ewb_contig_or_self(b) : NULL;
    int rc = !xc || !wc || (b && !bc) ? -1 : 0;
    if (rc == 0 && g->B > 0) {
        ewb_prim *p = get_prim(g, FWD);
        int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
        void *ptrs[4] = {ewb_tensor_data(xc), ewb_tensor_data(wc), ewb_tensor_data(y), bc ? ewb_tensor_data(bc) : NULL};
        rc = p ? ewb_prim_exec(p, op, b ? 4 : 3, kinds, ptrs) : -1;
    }
    ewb_tensor *ins[3] = {x, w, b};
    ewb_node *n = rc ? NULL : ewb_record(op, conv_backward, b ? 3 : 2, ins, y);
    if (n) {
        ewb_save(n, 0, xc);
        ewb_save(n, 1, wc);
        geom *gc = malloc(sizeof *gc);
        if (gc) memcpy(gc, g, sizeof *gc);
        else rc = ewb_error("%s: out of memory", op);
        n->ctx = gc;
    }
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    ewb_tensor_free(bc);
    return ewb_finish(op, y, rc, out);
}

int ewb_conv1d(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding, int dilation, int groups,
               ewb_tensor **out) {
    geom g;
    EWB_TRY(setup(0, x, w, b, stride, padding, 0, dilation, groups, &g));
    return conv_run(&g, x, w, b, out);
}

int ewb_conv_transpose1d(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding, int output_padding,
                         int dilation, int groups, ewb_tensor **out) {
    geom g;
    EWB_TRY(setup(1, x, w, b, stride, padding, output_padding, dilation, groups, &g));
    return conv_run(&g, x, w, b, out);
}

/* ---------------- naive reference twins (tests only) ----------------
   Both ops tie output sample o of channel oc to input sample i of channel
   ic = grp*Cin/G + icg through tap k:
     conv:       i = o*stride - padding + k*dilation,  w[oc][icg][k]
     transposed: o = i*stride - padding + k*dilation,  w[ic][ocg][k]
   The loops run over (b, oc, icg, k) and the positions of the strided side;
   each product term is visited once and accumulated (in double) into acc,
   which is y (REF_Y: x*w), dx (REF_DX: dy*w) or dw (REF_DW: x*dy). */
enum { REF_Y, REF_DX, REF_DW };
static void ref_loops(const geom *g, int what, const float *x, const float *w, const float *dy, double *acc) {
    int64_t G = g->groups, ig = g->Cin / G, og = g->Cout / G;
    for (int64_t b = 0; b < g->B; b++)
        for (int64_t oc = 0; oc < g->Cout; oc++) {
            int64_t grp = oc / og, ocg = oc % og;
            for (int64_t icg = 0; icg < ig; icg++) {
                int64_t ic = grp * ig + icg;
                for (int64_t k = 0; k < g->K; k++) {
                    int64_t widx = g->transposed ? (ic * og + ocg) * g->K + k : (oc * ig + icg) * g->K + k;
                    int64_t n = g->transposed ? g->L : g->Lout; /* positions on the strided side */
                    for (int64_t s = 0; s < n; s++) {
                        int64_t o, i;
                        if (g->transposed) { i = s; o = i * g->stride - g->pad_l + k * g->dilation; }
                        else { o = s; i = o * g->stride - g->pad_l + k * g->dilation; }
                        if (i < 0 || i >= g->L || o < 0 || o >= g->Lout) continue;
                        int64_t xi = (b * g->Cin + ic) * g->L + i, yi = (b * g->Cout + oc) * g->Lout + o;
                        if (what == REF_Y) acc[yi] += (double)x[xi] * w[widx];
                        else if (what == REF_DX) acc[xi] += (double)dy[yi] * w[widx];
                        else acc[widx] += (double)x[xi] * dy[yi];
                    }
                }
            }
        }
}

static int ref_forward(const geom *g, ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, ewb_tensor **out) {
    int64_t ys[3] = {g->B, g->Cout, g->Lout};
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, 3, ys);
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = ewb_contig_or_self(w);
    int64_t ny = ewb_tensor_numel(y);
    double *acc = calloc((size_t)(ny ? ny : 1), sizeof *acc);
    if (!y || !xc || !wc || !acc) {
        ewb_tensor_free(y); ewb_tensor_free(xc); ewb_tensor_free(wc); free(acc);
        return ewb_error("%s_ref: out of memory", opname(g));
    }
    ref_loops(g, REF_Y, ewb_f32(xc), ewb_f32(wc), NULL, acc);
    float *yp = ewb_f32(y);
    for (int64_t j = 0; j < ny; j++) {
        int64_t oc = j / g->Lout % g->Cout;
        double bias = 0;
        if (b) ewb_tensor_get(b, &oc, &bias);
        yp[j] = (float)(acc[j] + bias);
    }
    free(acc);
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    *out = y;
    return 0;
}

static int add_acc(ewb_tensor *dst, const double *acc) {
    ewb_tensor *t = ewb_empty_like(dst);
    if (!t) return -1;
    float *p = ewb_f32(t);
    for (int64_t j = 0; j < ewb_tensor_numel(t); j++) p[j] = (float)acc[j];
    int rc = ewb_add_(dst, t, 1.0);
    ewb_tensor_free(t);
    return rc;
}

static int ref_backward(geom *g, ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, ewb_tensor *dx, ewb_tensor *dw,
                        ewb_tensor *db) {
    const char *op = opname(g);
    EWB_TRY(ewb_check_f32(op, dy));
    if (dy->ndim != 3 || dy->shape[0] != g->B || dy->shape[1] != g->Cout)
        return ewb_error("%s_ref: gradient %s does not match input %s and weight %s", op, ewb_s(dy), ewb_s(x), ewb_s(w));
    g->Lout = dy->shape[2];
    ewb_tensor *xc = ewb_contig_or_self(x), *wc = ewb_contig_or_self(w), *dyc = ewb_contig_or_self(dy);
    int64_t nmax = ewb_tensor_numel(x) > ewb_tensor_numel(w) ? ewb_tensor_numel(x) : ewb_tensor_numel(w);
    double *acc = malloc(sizeof *acc * (size_t)(nmax > g->Cout ? nmax : g->Cout));
    int rc = xc && wc && dyc && acc ? 0 : ewb_error("%s_ref: out of memory", op);
    if (rc == 0 && dx) {
        memset(acc, 0, sizeof *acc * (size_t)ewb_tensor_numel(x));
        ref_loops(g, REF_DX, NULL, ewb_f32(wc), ewb_f32(dyc), acc);
        rc = add_acc(dx, acc);
    }
    if (rc == 0 && dw) {
        memset(acc, 0, sizeof *acc * (size_t)ewb_tensor_numel(w));
        ref_loops(g, REF_DW, ewb_f32(xc), NULL, ewb_f32(dyc), acc);
        rc = add_acc(dw, acc);
    }
    if (rc == 0 && db) {
        const float *d = ewb_f32(dyc);
        for (int64_t oc = 0; oc < g->Cout; oc++) {
            acc[oc] = 0;
            for (int64_t b = 0; b < g->B; b++)
                for (int64_t o = 0; o < g->Lout; o++) acc[oc] += d[(b * g->Cout + oc) * g->Lout + o];
        }
        rc = add_acc(db, acc);
    }
    free(acc);
    ewb_tensor_free(xc);
    ewb_tensor_free(wc);
    ewb_tensor_free(dyc);
    return rc;
}

int ewb_conv1d_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding, int dilation, int groups,
                   ewb_tensor **y) {
    geom g;
    EWB_TRY(setup(0, x, w, b, stride, padding, 0, dilation, groups, &g));
    return ref_forward(&g, x, w, b, y);
}

int ewb_conv1d_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, int stride, int padding, int dilation,
                            int groups, ewb_tensor *dx, ewb_tensor *dw, ewb_tensor *db) {
    geom g;
    EWB_TRY(setup(0, x, w, NULL, stride, padding, 0, dilation, groups, &g));
    return ref_backward(&g, x, w, dy, dx, dw, db);
}

int ewb_conv_transpose1d_ref(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, int stride, int padding,
                             int output_padding, int dilation, int groups, ewb_tensor **y) {
    geom g;
    EWB_TRY(setup(1, x, w, b, stride, padding, output_padding, dilation, groups, &g));
    return ref_forward(&g, x, w, b, y);
}

int ewb_conv_transpose1d_ref_backward(ewb_tensor *x, ewb_tensor *w, ewb_tensor *dy, int stride, int padding,
                                      int dilation, int groups, ewb_tensor *dx, ewb_tensor *dw, ewb_tensor *db) {
    geom g;
    EWB_TRY(setup(1, x, w, NULL, stride, padding, 0, dilation, groups, &g));
    return ref_backward(&g, x, w, dy, dx, dw, db);
}
