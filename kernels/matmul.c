/* matmul.c: matmul (batched, broadcast batch dims) and linear, forward and
 * backward, on oneDNN's matmul primitive.
 *
 * oneDNN 2.6 has no matmul backward, so it is composed of two matmuls whose
 * transposed operand is a strided memory descriptor (no copy):
 *     dA (…,M,K) += dC (…,M,N) · Bᵀ (…,N,K)
 *     dB (…,K,N) += Aᵀ (…,K,M) · dC (…,M,N)
 * Accumulation into the gradient buffer is oneDNN's "sum" post-op. Batch
 * dims that were broadcast (size 1, or stride 0 after expand) are summed
 * afterwards. ewb_mm_ref is the naive twin used by the tests.
 *
 * linear with at most EWB_GEMV_MAX_ROWS input rows (a decode step with the
 * KV cache: batch x 1 token) bypasses oneDNN for ewb_gemv_rows below: on
 * this machine oneDNN 2.6's matmul takes 300-600 us for 1x384 @ 384x1536
 * (about 2-3 GFLOP/s; its M = 1 path with a transposed weight does not
 * stream the weight rows), while one pass of dot products over the
 * contiguous rows of w runs at memory speed. The tests check it against the
 * naive twin ewb_mm_ref like the oneDNN path. */
#include "matmul.h"
#include "dnnl.h"
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* dims/strides of t left-padded to nd dims, in the form oneDNN matmul takes:
   a broadcast batch dim (size 1 or stride 0) has size 1; size-1 dims get
   the stride a contiguous layout would give them */
static void prep(const ewb_tensor *t, int nd, int64_t *dims, int64_t *st) {
    int off = nd - t->ndim;
    for (int i = nd - 1; i >= 0; i--) {
        int j = i - off;
        dims[i] = j >= 0 ? t->shape[j] : 1;
        st[i] = j >= 0 ? t->stride[j] : 0;
        if (i < nd - 2 && st[i] == 0) dims[i] = 1;
    }
    for (int i = nd - 1; i >= 0; i--)
        if (dims[i] == 1) st[i] = i == nd - 1 ? 1 : dims[i + 1] * st[i + 1];
}

/* a stride-0 or unaligned inner dim makes oneDNN fall back to its reference
   code; such operands are copied first */
static int inner_ok(const int64_t *dims, const int64_t *st, int nd) {
    int64_t s0 = st[nd - 2], s1 = st[nd - 1];
    if (dims[nd - 2] > 1 && s0 == 0) return 0;
    if (dims[nd - 1] > 1 && s1 == 0) return 0;
    return s1 == 1 || s0 == 1;
}

int ewb_mm_raw(const ewb_tensor *a, const ewb_tensor *b, ewb_tensor *c, int accumulate, const ewb_tensor *bias) {
    int nd = c->ndim;
    int64_t ad[EWB_MAX_DIMS], as[EWB_MAX_DIMS], bd[EWB_MAX_DIMS], bs[EWB_MAX_DIMS], cd[EWB_MAX_DIMS], cs[EWB_MAX_DIMS];
    prep(a, nd, ad, as);
    prep(b, nd, bd, bs);
    prep(c, nd, cd, cs);
    for (int i = 0; i < nd - 2; i++) cd[i] = c->shape[i];
    if (!inner_ok(ad, as, nd) || !inner_ok(bd, bs, nd)) {
        ewb_tensor *ac = ewb_contig_or_self((ewb_tensor *)a), *bc = ewb_contig_or_self((ewb_tensor *)b);
        int rc = ac && bc ? ewb_mm_raw(ac, bc, c, accumulate, bias) : -1;
        ewb_tensor_free(ac);
        ewb_tensor_free(bc);
        return rc;
    }
    ewb_key key = {.n = 0};
    ewb_key_str(&key, "matmul");
    ewb_key_int(&key, nd);
    ewb_key_add(&key, ad, 8 * nd); ewb_key_add(&key, as, 8 * nd);
    ewb_key_add(&key, bd, 8 * nd); ewb_key_add(&key, bs, 8 * nd);
    ewb_key_add(&key, cd, 8 * nd); ewb_key_add(&key, cs, 8 * nd);
    ewb_key_int(&key, accumulate);
    ewb_key_int(&key, bias != NULL);
    ewb_prim *p = ewb_prim_get(key.buf, key.n);
    if (!p) {
        dnnl_memory_desc_t amd, bmd, cmd, biasmd;
        dnnl_matmul_desc_t desc;
        EWB_TRY(ewb_dnnl_check(ewb_md_dims(&amd, nd, ad, as), "matmul", "src md"));
        EWB_TRY(ewb_dnnl_check(ewb_md_dims(&bmd, nd, bd, bs), "matmul", "weights md"));
        EWB_TRY(ewb_dnnl_check(ewb_md_dims(&cmd, nd, cd, cs), "matmul", "dst md"));
        if (bias) {
            int64_t bdims[EWB_MAX_DIMS], bst[EWB_MAX_DIMS];
            for (int i = 0; i < nd; i++) bdims[i] = 1;
            bdims[nd - 1] = cd[nd - 1];
            ewb_contiguous_strides(nd, bdims, bst);
            EWB_TRY(ewb_dnnl_check(ewb_md_dims(&biasmd, nd, bdims, bst), "matmul", "bias md"));
        }
        EWB_TRY(ewb_dnnl_check(dnnl_matmul_desc_init(&desc, &amd, &bmd, bias ? &biasmd : NULL, &cmd), "matmul", "descriptor"));
        dnnl_primitive_attr_t attr = ewb_attr_new(accumulate);
        dnnl_primitive_desc_t pd;
        dnnl_status_t s = dnnl_primitive_desc_create(&pd, &desc, attr, ewb_dnnl_engine(), NULL);
        dnnl_primitive_attr_destroy(attr);
        EWB_TRY(ewb_dnnl_check(s, "matmul", "primitive descriptor"));
        p = ewb_prim_put(key.buf, key.n, pd, "matmul");
        if (!p) return -1;
    }
    int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    void *ptrs[4] = {ewb_tensor_data(a), ewb_tensor_data(b), ewb_tensor_data(c), bias ? ewb_tensor_data(bias) : NULL};
    return ewb_prim_exec(p, "matmul", bias ? 4 : 3, kinds, ptrs);
}

/* naive reference: c (=|+=) a @ b (+ bias), same broadcasting rules */
int ewb_mm_ref(const ewb_tensor *a, const ewb_tensor *b, ewb_tensor *c, int accumulate, const ewb_tensor *bias) {
    int nd = c->ndim;
    int64_t ad[EWB_MAX_DIMS], as[EWB_MAX_DIMS], bd[EWB_MAX_DIMS], bs[EWB_MAX_DIMS];
    prep(a, nd, ad, as);
    prep(b, nd, bd, bs);
    int64_t M = c->shape[nd - 2], N = c->shape[nd - 1], K = ad[nd - 1];
    int64_t batch = ewb_shape_numel(nd - 2, c->shape), idx[EWB_MAX_DIMS];
    const float *A = ewb_f32(a), *B = ewb_f32(b), *bi = bias ? ewb_f32(bias) : NULL;
    float *C = ewb_f32(c);
    for (int64_t bt = 0; bt < batch; bt++) {
        int64_t r = bt, ao = 0, bo = 0, co = 0;
        for (int i = nd - 3; i >= 0; i--) { idx[i] = r % c->shape[i]; r /= c->shape[i]; }
        for (int i = 0; i < nd - 2; i++) {
            ao += (ad[i] == 1 ? 0 : idx[i]) * as[i];
            bo += (bd[i] == 1 ? 0 : idx[i]) * bs[i];
            co += idx[i] * c->stride[i];
        }
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double s = bi ? bi[n * bias->stride[bias->ndim - 1]] : 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)A[ao + m * as[nd - 2] + k * as[nd - 1]] * B[bo + k * bs[nd - 2] + n * bs[nd - 1]];
                float *dst = &C[co + m * c->stride[nd - 2] + n * c->stride[nd - 1]];
                *dst = accumulate ? *dst + (float)s : (float)s;
            }
    }
    return 0;
}

ewb_tensor *ewb_t_last2(const ewb_tensor *t) {
    ewb_tensor *v = ewb_alias(t);
    if (!v) return NULL;
    int n = t->ndim;
    v->shape[n - 2] = t->shape[n - 1]; v->shape[n - 1] = t->shape[n - 2];
    v->stride[n - 2] = t->stride[n - 1]; v->stride[n - 1] = t->stride[n - 2];
    return v;
}

int ewb_mm_accumulate(ewb_tensor *dst, const ewb_tensor *x, const ewb_tensor *y, int nd, const int64_t *full) {
    int direct = dst->ndim == nd;
    for (int i = 0; direct && i < nd - 2; i++) direct = dst->shape[i] == full[i];
    if (direct) return ewb_mm_raw(x, y, dst, 1, NULL);
    ewb_tensor *tmp = ewb_empty(EWB_DTYPE_F32, nd, full);
    if (!tmp) return -1;
    int rc = ewb_mm_raw(x, y, tmp, 0, NULL);
    if (rc == 0) rc = ewb_accumulate_reduced(dst, tmp, 1.0);
    ewb_tensor_free(tmp);
    return rc;
}

static int matmul_backward(ewb_node *n) {
    ewb_tensor *a = n->saved[0], *b = n->saved[1], *g = n->gout, *ga = ewb_grad_slot(n, 0), *gb = ewb_grad_slot(n, 1);
    int nd = g->ndim, rc = 0;
    int64_t full[EWB_MAX_DIMS];
    if (ga) { /* (…,M,K) += (…,M,N) @ (…,N,K) */
        ewb_tensor *bt = ewb_t_last2(b);
        memcpy(full, g->shape, sizeof full);
        full[nd - 1] = a->shape[a->ndim - 1];
        rc = ewb_mm_accumulate(ga, g, bt, nd, full);
        ewb_tensor_free(bt);
    }
    if (gb && rc == 0) { /* (…,K,N) += (…,K,M) @ (…,M,N) */
        ewb_tensor *at = ewb_t_last2(a);
        memcpy(full, g->shape, sizeof full);
        full[nd - 2] = b->shape[b->ndim - 2];
        rc = ewb_mm_accumulate(gb, at, g, nd, full);
        ewb_tensor_free(at);
    }
    return rc;
}

static int matmul2(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) {
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], K2 = b->shape[b->ndim - 2], N = b->shape[b->ndim - 1];
    if (K != K2) return ewb_error("matmul: inner dims differ: %s @ %s (%lld vs %lld)", ewb_s(a), ewb_s(b), (long long)K, (long long)K2);
    int64_t shape[EWB_MAX_DIMS];
    for (int i = 0; i < nd - 2; i++) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return ewb_error("matmul: batch dims of %s and %s do not broadcast", ewb_s(a), ewb_s(b));
        shape[i] = sa == 1 ? sb : sa;
    }
    shape[nd - 2] = M;
    shape[nd - 1] = N;
    ewb_tensor *c = ewb_empty(EWB_DTYPE_F32, nd, shape);
    if (!c) return -1;
    int rc = 0;
    if (K == 0) memset(ewb_f32(c), 0, (size_t)ewb_tensor_numel(c) * 4);
    else if (ewb_tensor_numel(c) > 0) rc = ewb_mm_raw(a, b, c, 0, NULL);
    ewb_tensor *ins[2] = {a, b};
    ewb_node *n = rc ? NULL : ewb_record("matmul", matmul_backward, 2, ins, c);
    if (n) { ewb_save(n, 0, a); ewb_save(n, 1, b); }
    return ewb_finish("matmul", c, rc, out);
}

int ewb_matmul(ewb_tensor *a, ewb_tensor *b, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("matmul", a));
    EWB_TRY(ewb_check_f32("matmul", b));
    if (a->ndim == 0 || b->ndim == 0) return ewb_error("matmul: both arguments need at least 1 dim, got %s @ %s", ewb_s(a), ewb_s(b));
    /* vectors become matrices and the added dim is removed afterwards, as in torch.matmul */
    ewb_tensor *a2 = a, *b2 = b, *c = NULL;
    int rc = 0;
    if (a->ndim == 1) rc = ewb_unsqueeze(a, 0, &a2);
    if (rc == 0 && b->ndim == 1) rc = ewb_unsqueeze(b, 1, &b2);
    if (rc == 0) rc = matmul2(a2, b2, &c);
    if (a2 != a) ewb_tensor_free(a2);
    if (b2 != b) ewb_tensor_free(b2);
    if (rc) return -1;
    if (a->ndim == 1 || b->ndim == 1) {
        ewb_tensor *s = c;
        if (a->ndim == 1) { rc = ewb_squeeze(s, -2, &c); ewb_tensor_free(s); s = c; }
        if (rc == 0 && b->ndim == 1) { rc = ewb_squeeze(s, -1, &c); ewb_tensor_free(s); }
        if (rc) return -1;
    }
    *out = c;
    return 0;
}

/* ---------------- small-M GEMV (see the header comment) ---------------- */
/* out[j] = x · w[j] for 8 contiguous rows w[0..7] of length K: eight
   independent sums keep the vector units busy, read x once and keep eight
   weight streams in flight (measured faster than 4 when the weights come
   from L3/DRAM, as in decoding). omp simd lets the compiler reassociate each
   sum into vector lanes; target_clones builds an AVX-512, an AVX2 and a
   baseline copy, picked at load time for the CPU. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dot8_f32(const float *x, const float *w, int64_t K, float *out) {
    const float *w0 = w, *w1 = w + K, *w2 = w + 2 * K, *w3 = w + 3 * K;
    const float *w4 = w + 4 * K, *w5 = w + 5 * K, *w6 = w + 6 * K, *w7 = w + 7 * K;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    #pragma omp simd reduction(+:s0, s1, s2, s3, s4, s5, s6, s7)
    for (int64_t k = 0; k < K; k++) {
        float xk = x[k];
        s0 += xk * w0[k]; s1 += xk * w1[k]; s2 += xk * w2[k]; s3 += xk * w3[k];
        s4 += xk * w4[k]; s5 += xk * w5[k]; s6 += xk * w6[k]; s7 += xk * w7[k];
    }
    out[0] = s0; out[1] = s1; out[2] = s2; out[3] = s3;
    out[4] = s4; out[5] = s5; out[6] = s6; out[7] = s7;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static float dot_f32(const float *a, const float *b, int64_t K) {
    float s = 0;
    #pragma omp simd reduction(+:s)
    for (int64_t k = 0; k < K; k++) s += a[k] * b[k];
    return s;
}

/* y (M, N) = x (M, K) · wᵀ + bias, w (N, K) row-major, x rows contiguous
   with row stride xs, y rows contiguous with row stride ys. Output columns
   go in blocks of 8 (8 rows of w, read once; they stay in L1 across the
   M <= 4 rows of x); chunks of GEMV_CHUNK blocks are shared among threads
   by ewb_run_blocks (core/threads.c), which does not stall the caller on a
   helper thread that the scheduler has not run yet. */
enum { GEMV_CHUNK = 4 };
typedef struct {
    const float *x, *w, *bias;
    float *y;
    int64_t xs, M, K, bs, ys, N;
} gemv_args;

static void gemv_chunk(void *ctx, int64_t chunk) {
    const gemv_args *a = ctx;
    int64_t K = a->K, N = a->N;
    for (int64_t j = chunk * GEMV_CHUNK; j < (chunk + 1) * GEMV_CHUNK && 8 * j < N; j++) {
        int64_t n0 = 8 * j, cnt = N - n0 < 8 ? N - n0 : 8;
        for (int64_t m = 0; m < a->M; m++) {
            const float *xm = a->x + m * a->xs;   // (K)
            float d[8];
            if (cnt == 8) dot8_f32(xm, a->w + n0 * K, K, d);
            else for (int64_t c = 0; c < cnt; c++) d[c] = dot_f32(xm, a->w + (n0 + c) * K, K);
            for (int64_t c = 0; c < cnt; c++) a->y[m * a->ys + n0 + c] = (a->bias ? a->bias[(n0 + c) * a->bs] : 0.0f) + d[c];
        }
    }
}

int ewb_gemv_rows(const float *x, int64_t xs, int64_t M, int64_t K, const float *w, const float *bias, int64_t bs,
                  float *y, int64_t ys, int64_t N) {
    gemv_args a = {x, w, bias, y, xs, M, K, bs, ys, N};
    int64_t chunks = ((N + 7) / 8 + GEMV_CHUNK - 1) / GEMV_CHUNK;
    if (N * K > ewb_parallel_threshold()) ewb_run_blocks(gemv_chunk, &a, chunks);
    else for (int64_t c = 0; c < chunks; c++) gemv_chunk(&a, c);
    return 0;
}

/* ---------------- linear: y = x wᵀ + b ---------------- */
/* x as a (M, in) matrix without copying when its leading dims collapse */
static ewb_tensor *as_2d(ewb_tensor *x) {
    ewb_tensor *c = ewb_contig_or_self(x);
    if (!c) return NULL;
    ewb_tensor *v = ewb_alias(c);
    ewb_tensor_free(c);
    int64_t in = x->shape[x->ndim - 1];
    v->ndim = 2;
    v->shape[0] = in ? ewb_tensor_numel(x) / in : 0;
    v->shape[1] = in;
    v->stride[0] = in;
    v->stride[1] = 1;
    return v;
}

/* gb (O) += column sums of g (M, O). Rows are split among threads, each
   summing whole rows (contiguous, vectorised) into its own partial sums in
   double; a loop down the columns would stride by O floats per element. */
static int bias_grad(const ewb_tensor *g, ewb_tensor *gb) {
    int64_t M = g->shape[0], O = g->shape[1];
    const float *gp = ewb_f32(g);
    float *bp = ewb_f32(gb);
    int nt = M * O > ewb_parallel_threshold() ? omp_get_max_threads() : 1;
    if (nt > M) nt = (int)(M > 0 ? M : 1);
    double *part = calloc((size_t)nt * O, sizeof *part); /* (nt, O) */
    if (!part) return ewb_error("linear: out of memory for the bias gradient of %s", ewb_s(g));
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num();
        int64_t m0 = M * t / nt, m1 = M * (t + 1) / nt;
        double *acc = part + (size_t)t * O;
        for (int64_t m = m0; m < m1; m++) {
            const float *row = gp + m * O;
            for (int64_t o = 0; o < O; o++) acc[o] += row[o];
        }
    }
    for (int64_t o = 0; o < O; o++) {
        double s = 0;
        for (int t = 0; t < nt; t++) s += part[(size_t)t * O + o];
        bp[o] += (float)s;
    }
    free(part);
    return 0;
}

static int linear_backward(ewb_node *n) {
    ewb_tensor *x2 = n->saved[0], *w = n->saved[1];
    ewb_tensor *gx = ewb_grad_slot(n, 0), *gw = ewb_grad_slot(n, 1), *gb = ewb_grad_slot(n, 2);
    ewb_tensor *g2 = as_2d(n->gout); /* (M, out) */
    int rc = 0;
    if (gx) { /* (M,in) += (M,out) @ (out,in) */
        ewb_tensor *gx2 = as_2d(gx);
        rc = ewb_mm_raw(g2, w, gx2, 1, NULL);
        ewb_tensor_free(gx2);
    }
    if (gw && rc == 0) { /* (out,in) += (out,M) @ (M,in) */
        ewb_tensor *gt = ewb_t_last2(g2);
        rc = ewb_mm_raw(gt, x2, gw, 1, NULL);
        ewb_tensor_free(gt);
    }
    if (gb && rc == 0) rc = bias_grad(g2, gb);
    ewb_tensor_free(g2);
    return rc;
}

int ewb_linear(ewb_tensor *x, ewb_tensor *w, ewb_tensor *b, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("linear", x));
    EWB_TRY(ewb_check_f32("linear", w));
    if (b) EWB_TRY(ewb_check_f32("linear", b));
    if (w->ndim != 2) return ewb_error("linear: weight must be (out, in), got %s", ewb_s(w));
    if (x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1])
        return ewb_error("linear: input %s does not match weight %s (expects last dim %lld)", ewb_s(x), ewb_s(w), (long long)w->shape[1]);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return ewb_error("linear: bias %s does not match weight %s", ewb_s(b), ewb_s(w));
    int64_t shape[EWB_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = w->shape[0];
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, shape), *x2 = as_2d(x);
    if (!y || !x2) { ewb_tensor_free(y); ewb_tensor_free(x2); return -1; }
    ewb_tensor *y2 = as_2d(y), *wt = ewb_t_last2(w), *bc = b ? ewb_contig_or_self(b) : NULL;
    int rc = 0;
    if (w->shape[1] == 0) { memset(ewb_f32(y), 0, (size_t)ewb_tensor_numel(y) * 4); if (b) rc = ewb_add_(y, b, 1.0); }
    else if (ewb_tensor_numel(y) > 0 && x2->shape[0] <= EWB_GEMV_MAX_ROWS && ewb_tensor_is_contiguous(w))
        rc = ewb_gemv_rows(ewb_f32(x2), x2->shape[1], x2->shape[0], w->shape[1], ewb_f32(w), bc ? ewb_f32(bc) : NULL,
                           1, ewb_f32(y2), y2->shape[1], w->shape[0]);
    else if (ewb_tensor_numel(y) > 0) rc = ewb_mm_raw(x2, wt, y2, 0, bc);
    ewb_tensor *ins[3] = {x, w, b};
    ewb_node *n = rc ? NULL : ewb_record("linear", linear_backward, b ? 3 : 2, ins, y);
    if (n) { ewb_save(n, 0, x2); ewb_save(n, 1, w); }
    ewb_tensor_free(x2); ewb_tensor_free(y2); ewb_tensor_free(wt); ewb_tensor_free(bc);
    return ewb_finish("linear", y, rc, out);
}
