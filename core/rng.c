/* rng.c: counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 * A tensor of n values takes a fresh range of counters from the global
 * stream, and element i depends only on (seed, first counter + i / 4), so
 * the numbers are identical at any thread count. */
#include "internal.h"
#include <string.h>

static uint64_t g_seed = 0x2545F4914F6CDD1Dull, g_offset;

void ewb_manual_seed(uint64_t seed) { g_seed = seed; g_offset = 0; }
void ewb_rng_get_state(uint64_t *seed, uint64_t *offset) { *seed = g_seed; *offset = g_offset; }
void ewb_rng_set_state(uint64_t seed, uint64_t offset) { g_seed = seed; g_offset = offset; }
uint64_t ewb_rng_reserve(uint64_t n) { uint64_t c = g_offset; g_offset += n; return c; }

void ewb_philox(uint64_t seed, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1; c3 = (uint32_t)p0; c0 = n0; c2 = n2;
        /* after the swap: (c0,c1,c2,c3) = (hi1^c1^k0, lo1, hi0^c3^k1, lo0) */
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* out[4i .. 4i+3] = ewb_philox(seed, counter + i) for i < n, 16 counters
   at a time in vector lanes (the 32x32->64 multiplies vectorise); the same
   numbers, several times faster than one block at a time. target_clones
   builds an AVX-512, an AVX2 and a baseline copy, picked for the CPU. */
__attribute__((target_clones("avx512f", "avx2", "default")))
void ewb_philox_blocks(uint64_t seed, uint64_t counter, int64_t n, uint32_t *out) {
    enum { W = 16 };
    for (int64_t i0 = 0; i0 < n; i0 += W) {
        int m = n - i0 < W ? (int)(n - i0) : W;
        uint32_t c0[W], c1[W], c2[W], c3[W];
        for (int j = 0; j < W; j++) {
            uint64_t c = counter + (uint64_t)(i0 + j);
            c0[j] = (uint32_t)c; c1[j] = (uint32_t)(c >> 32); c2[j] = 0; c3[j] = 0;
        }
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int r = 0; r < 10; r++) {
            #pragma omp simd
            for (int j = 0; j < W; j++) {
                uint64_t p0 = (uint64_t)0xD2511F53u * c0[j], p1 = (uint64_t)0xCD9E8D57u * c2[j];
                uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
                c1[j] = (uint32_t)p1; c3[j] = (uint32_t)p0; c0[j] = n0; c2[j] = n2;
            }
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        for (int j = 0; j < m; j++) {
            uint32_t *o = out + 4 * (i0 + j);
            o[0] = c0[j]; o[1] = c1[j]; o[2] = c2[j]; o[3] = c3[j];
        }
    }
}

float ewb_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* fills a contiguous f32 buffer: uniform (normal = 0) or standard normal */
static void fill_f32(float *p, int64_t n, int normal, double a, double b) {
    int64_t blocks = (n + 3) / 4;
    uint64_t base = ewb_rng_reserve((uint64_t)blocks);
    uint64_t seed = g_seed;
    #pragma omp parallel for if (n > 1 << 16)
    for (int64_t k = 0; k < blocks; k++) {
        uint32_t w[4];
        float v[4];
        ewb_philox(seed, base + (uint64_t)k, w);
        if (normal) { /* Box-Muller on two pairs */
            for (int j = 0; j < 4; j += 2) {
                double u1 = ((double)(w[j] >> 8) + 1.0) / 16777217.0, u2 = ewb_u01(w[j + 1]);
                double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
                v[j] = (float)(a + b * r * cos(th));
                v[j + 1] = (float)(a + b * r * sin(th));
            }
        } else {
            for (int j = 0; j < 4; j++) v[j] = (float)(a + (b - a) * ewb_u01(w[j]));
        }
        int64_t m = n - 4 * k < 4 ? n - 4 * k : 4;
        memcpy(p + 4 * k, v, (size_t)m * sizeof(float));
    }
}

static int fill_tensor(ewb_tensor *t, int normal, double a, double b) {
    EWB_TRY(ewb_check_f32(normal ? "normal_" : "uniform_", t));
    ewb_tensor *c = ewb_contig_or_self(t);
    if (!c) return -1;
    fill_f32(ewb_f32(c), ewb_tensor_numel(c), normal, a, b);
    int rc = c == t ? 0 : ewb_copy_(t, c);
    ewb_tensor_free(c);
    return rc;
}
int ewb_uniform_(ewb_tensor *t, double lo, double hi) { return fill_tensor(t, 0, lo, hi); }
int ewb_normal_(ewb_tensor *t, double mean, double std) { return fill_tensor(t, 1, mean, std); }

int ewb_rand(ewb_tensor **out, int ndim, const int64_t *shape) {
    ewb_tensor *t = ewb_empty(EWB_DTYPE_F32, ndim, shape);
    if (!t) return -1;
    fill_f32(ewb_f32(t), ewb_tensor_numel(t), 0, 0.0, 1.0);
    *out = t;
    return 0;
}
int ewb_randn(ewb_tensor **out, int ndim, const int64_t *shape) {
    ewb_tensor *t = ewb_empty(EWB_DTYPE_F32, ndim, shape);
    if (!t) return -1;
    fill_f32(ewb_f32(t), ewb_tensor_numel(t), 1, 0.0, 1.0);
    *out = t;
    return 0;
}
int ewb_randint(ewb_tensor **out, int64_t lo, int64_t hi, int ndim, const int64_t *shape) {
    if (hi <= lo) return ewb_error("randint: need lo < hi, got [%lld, %lld)", (long long)lo, (long long)hi);
    ewb_tensor *t = ewb_empty(EWB_DTYPE_I64, ndim, shape);
    if (!t) return -1;
    int64_t n = ewb_tensor_numel(t), *p = ewb_tensor_data(t);
    uint64_t range = (uint64_t)(hi - lo), base = ewb_rng_reserve((uint64_t)n);
    for (int64_t i = 0; i < n; i++) { /* 64 random bits per element, modulo range */
        uint32_t w[4];
        ewb_philox(g_seed, base + (uint64_t)i, w);
        uint64_t r = ((uint64_t)w[0] << 32) | w[1];
        p[i] = lo + (int64_t)(r % range);
    }
    *out = t;
    return 0;
}
int ewb_randperm(ewb_tensor **out, int64_t n) {
    if (n < 0) return ewb_error("randperm: n must be >= 0, got %lld", (long long)n);
    ewb_tensor *t = ewb_empty(EWB_DTYPE_I64, 1, &n);
    if (!t) return -1;
    int64_t *p = ewb_tensor_data(t);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    uint64_t base = ewb_rng_reserve((uint64_t)(n > 0 ? n : 0));
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint32_t w[4];
        ewb_philox(g_seed, base + (uint64_t)i, w);
        uint64_t r = ((uint64_t)w[0] << 32) | w[1];
        int64_t j = (int64_t)(r % (uint64_t)(i + 1)), tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    *out = t;
    return 0;
}
