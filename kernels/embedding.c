/* embedding.c: the two nn ops that are not arithmetic: embedding lookup
 * (rows of a weight table picked by integer ids) and dropout, forward and
 * backward.
 *
 * Dropout draws its mask from the counter-based Philox stream (core/rng.c):
 * element i keeps its value when u01(word i%4 of block base + i/4) >= p, so
 * the mask depends only on (seed, base) and is the same at any thread count.
 * The backward regenerates the mask from (seed, base) instead of storing it. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

/* ================================================================ embedding */
static inline int64_t load_id(const void *p, int dtype, int64_t i) {
    return dtype == EWB_DTYPE_I64 ? ((const int64_t *)p)[i] : ((const int32_t *)p)[i];
}

static int embedding_backward(ewb_node *n) {
    ewb_tensor *gw = ewb_grad_slot(n, 0); // (V, D)
    if (!gw) return 0;
    ewb_tensor *idx = n->saved[0]; // (N) ids, contiguous
    int64_t N = ewb_tensor_numel(idx), D = gw->shape[1];
    const void *ip = ewb_tensor_data(idx);
    const float *go = ewb_f32(n->gout); // (N, D)
    float *gp = ewb_f32(gw);
    /* repeated ids add into the same row: threads split the columns */
    #pragma omp parallel for if (N * D > 1 << 15 && D >= 64)
    for (int64_t c0 = 0; c0 < D; c0 += 16) {
        int64_t c1 = c0 + 16 < D ? c0 + 16 : D;
        for (int64_t i = 0; i < N; i++) {
            float *dst = gp + load_id(ip, idx->dtype, i) * D;
            const float *src = go + i * D;
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
    return 0;
}

int ewb_embedding(ewb_tensor *weight, ewb_tensor *index, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("embedding", weight));
    EWB_TRY(ewb_check_alive("embedding", index));
    if (weight->ndim != 2) return ewb_error("embedding: weight must be (V, D), got %s", ewb_s(weight));
    if (index->dtype != EWB_DTYPE_I64 && index->dtype != EWB_DTYPE_I32)
        return ewb_error("embedding: index must be an i64 or i32 tensor, got %s", ewb_s(index));
    if (index->ndim >= EWB_MAX_DIMS)
        return ewb_error("embedding: index %s has too many dims (the output adds one, at most %d)", ewb_s(index), EWB_MAX_DIMS);
    int64_t V = weight->shape[0], D = weight->shape[1];
    ewb_tensor *ic = ewb_contig_or_self(index); // (N)
    if (!ic) return -1;
    int64_t N = ewb_tensor_numel(ic);
    const void *ip = ewb_tensor_data(ic);
    for (int64_t i = 0; i < N; i++) {
        int64_t id = load_id(ip, ic->dtype, i);
        if (id < 0 || id >= V) {
            ewb_tensor_free(ic);
            return ewb_error("embedding: id %lld is out of range for %lld embeddings (weight %s, index %s)", (long long)id,
                             (long long)V, ewb_s(weight), ewb_s(index));
        }
    }
    int64_t shape[EWB_MAX_DIMS];
    memcpy(shape, index->shape, sizeof(int64_t) * index->ndim);
    shape[index->ndim] = D;
    ewb_tensor *wc = ewb_contig_or_self(weight);           // (V, D)
    ewb_tensor *o = wc ? ewb_empty(EWB_DTYPE_F32, index->ndim + 1, shape) : NULL; // (..., D) = (N, D)
    if (!o) { ewb_tensor_free(ic); ewb_tensor_free(wc); return -1; }
    const float *wp = ewb_f32(wc);
    float *op = ewb_f32(o);
    #pragma omp parallel for if (N * D > 1 << 15)
    for (int64_t i = 0; i < N; i++) memcpy(op + i * D, wp + load_id(ip, ic->dtype, i) * D, sizeof(float) * (size_t)D);
    ewb_tensor_free(wc);
    ewb_node *n = ewb_record("embedding", embedding_backward, 1, &weight, o);
    if (n) ewb_save(n, 0, ic);
    ewb_tensor_free(ic);
    return ewb_finish("embedding", o, 0, out);
}

/* ================================================================ dropout */
/* y[i] = keep(i) ? x[i] * scale : 0, for the n elements of a contiguous buffer;
   y += when accumulate (the backward), = otherwise. keep(i) is
   u01(w) >= p, computed exactly on the 24 bits u01 uses: (w >> 8) >= ceil(p * 2^24). */
/* y[j] (+)= keep(j) ? x[j] * scale : 0 over m numbers w (m elements); the
   24-bit values compare as signed ints so that the loop vectorises */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void dropout_chunk(const uint32_t *w, const float *x, float *y, int64_t m, int32_t thr, float scale, int accumulate) {
    if (accumulate) {
        #pragma omp simd
        for (int64_t j = 0; j < m; j++) y[j] += (int32_t)(w[j] >> 8) >= thr ? x[j] * scale : 0.0f;
    } else {
        #pragma omp simd
        for (int64_t j = 0; j < m; j++) y[j] = (int32_t)(w[j] >> 8) >= thr ? x[j] * scale : 0.0f;
    }
}

static void dropout_apply(const float *x, float *y, int64_t n, uint64_t seed, uint64_t base, double p, int accumulate) {
    enum { CHUNK = 64 }; /* blocks of 4 numbers generated at a time (ewb_philox_blocks, vectorised) */
    float scale = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
    uint32_t thr = (uint32_t)ceil(p * 16777216.0); /* 2^24 when p = 1: nothing is kept */
    int64_t blocks = (n + 3) / 4, chunks = (blocks + CHUNK - 1) / CHUNK;
    #pragma omp parallel for if (n > 1 << 16)
    for (int64_t c = 0; c < chunks; c++) {
        uint32_t w[4 * CHUNK];
        int64_t k0 = c * CHUNK, nb = blocks - k0 < CHUNK ? blocks - k0 : CHUNK;
        ewb_philox_blocks(seed, base + (uint64_t)k0, nb, w);
        int64_t i0 = 4 * k0, m = n - i0 < 4 * nb ? n - i0 : 4 * nb;
        dropout_chunk(w, x + i0, y + i0, m, (int32_t)thr, scale, accumulate);
    }
}

static int dropout_backward(ewb_node *n) { /* iarg = seed, base; farg = p */
    ewb_tensor *g = ewb_grad_slot(n, 0);
    if (!g) return 0;
    dropout_apply(ewb_f32(n->gout), ewb_f32(g), ewb_tensor_numel(g), (uint64_t)n->iarg[0], (uint64_t)n->iarg[1],
                  n->farg[0], 1);
    return 0;
}

int ewb_dropout(ewb_tensor *x, double p, int train, ewb_tensor **out) {
    EWB_TRY(ewb_check_f32("dropout", x));
    if (!(p >= 0 && p <= 1)) return ewb_error("dropout: p must be in [0, 1], got %g (input %s)", p, ewb_s(x));
    /* identity: a differentiable view of x (its own header, so freeing the
       result never frees x) */
    if (!train) return ewb_reshape(x, x->ndim, x->shape, out);
    ewb_tensor *xc = ewb_contig_or_self(x);
    ewb_tensor *o = xc ? ewb_empty_like(x) : NULL;
    if (!o) { ewb_tensor_free(xc); return -1; }
    int64_t n = ewb_tensor_numel(x);
    uint64_t seed, offset;
    ewb_rng_get_state(&seed, &offset);
    uint64_t base = ewb_rng_reserve((uint64_t)(n + 3) / 4);
    dropout_apply(ewb_f32(xc), ewb_f32(o), n, seed, base, p, 0);
    ewb_tensor_free(xc);
    ewb_node *node = ewb_record("dropout", dropout_backward, 1, &x, o);
    if (node) {
        node->iarg[0] = (int64_t)seed;
        node->iarg[1] = (int64_t)base;
        node->farg[0] = p;
    }
    return ewb_finish("dropout", o, 0, out);
}
