/* test_rng.c: Philox streams: reproducible from a seed and a saved state,
 * identical at 1 and 2 threads, and with the right distributions. */
#include "check.h"

static ewb_tensor *randn_n(int64_t n) { return T(1, &n); }

int main(void) {
    /* Philox4x32-10 known-answer test (Random123's kat_vectors: counter 0, key 0) */
    uint32_t w[4];
    ewb_philox(0, 0, w);
    CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u,
          "philox(0,0) = %08x %08x %08x %08x", w[0], w[1], w[2], w[3]);

    /* the vectorised block generator gives exactly ewb_philox's numbers, for
       counts that are not a multiple of its 16 lanes and a counter that
       crosses 2^32 (the high word of the counter changes inside a chunk) */
    {
        uint64_t seeds[2] = {0, 0x9E3779B97F4A7C15ull}, starts[2] = {0, 0xFFFFFFF5ull};
        int bad = 0;
        for (int si = 0; si < 2; si++)
            for (int ci = 0; ci < 2; ci++) {
                uint32_t blk[4 * 37], one[4];
                ewb_philox_blocks(seeds[si], starts[ci], 37, blk);
                for (int i = 0; i < 37; i++) {
                    ewb_philox(seeds[si], starts[ci] + (uint64_t)i, one);
                    bad += memcmp(one, blk + 4 * i, sizeof one) != 0;
                }
            }
        CHECK(bad == 0, "ewb_philox_blocks differs from ewb_philox in %d of 148 blocks", bad);
    }

    int64_t n = 1 << 18; /* above the parallel threshold */
    ewb_manual_seed(42);
    ewb_set_num_threads(1);
    ewb_tensor *a = randn_n(n);
    ewb_manual_seed(42);
    ewb_set_num_threads(2);
    ewb_tensor *b = randn_n(n);
    CHECK(max_rel_err(a, b) == 0, "same seed, 1 vs 2 threads: identical");
    /* moments of N(0,1) over 2^18 samples: 5-sigma bounds */
    const float *p = ewb_f32(a);
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; i++) m += p[i];
    m /= n;
    for (int64_t i = 0; i < n; i++) v += (p[i] - m) * (p[i] - m);
    v /= n - 1;
    CHECK(fabs(m) < 5 / sqrt((double)n), "randn mean %g", m);
    CHECK(fabs(v - 1) < 5 * sqrt(2.0 / n), "randn var %g", v);
    /* saved state reproduces the continuation */
    uint64_t seed, off;
    ewb_rng_get_state(&seed, &off);
    ewb_tensor *c = randn_n(1000);
    ewb_rng_set_state(seed, off);
    ewb_tensor *d = randn_n(1000);
    CHECK(max_rel_err(c, d) == 0, "state restore reproduces numbers");
    CHECK(max_rel_err(a, c) > 0, "the stream moves on");
    /* uniform in [0,1) with mean 1/2 */
    ewb_tensor *u;
    OK(ewb_rand(&u, 1, &n));
    const float *q = ewb_f32(u);
    double mu = 0, lo = 1, hi = 0;
    for (int64_t i = 0; i < n; i++) { mu += q[i]; if (q[i] < lo) lo = q[i]; if (q[i] > hi) hi = q[i]; }
    mu /= n;
    CHECK(lo >= 0 && hi < 1 && fabs(mu - 0.5) < 5 * sqrt(1.0 / 12 / n), "uniform range [%g,%g] mean %g", lo, hi, mu);
    /* randint bounds and coverage; randperm is a permutation */
    ewb_tensor *ri, *rp;
    int64_t k = 10000;
    OK(ewb_randint(&ri, -3, 4, 1, &k));
    int seen[7] = {0}, inrange = 1;
    for (int64_t i = 0; i < k; i++) {
        int64_t x = ((int64_t *)ewb_tensor_data(ri))[i];
        if (x < -3 || x >= 4) inrange = 0; else seen[x + 3]++;
    }
    CHECK(inrange, "randint in [-3,4)");
    for (int i = 0; i < 7; i++) CHECK(seen[i] > 1200, "randint value %d drawn %d times of 10000", i - 3, seen[i]);
    FAILS(ewb_randint(&ri, 5, 5, 1, &k), "randint: need lo < hi");
    OK(ewb_randperm(&rp, 1000));
    int hit[1000] = {0}, perm = 1;
    for (int i = 0; i < 1000; i++) {
        int64_t x = ((int64_t *)ewb_tensor_data(rp))[i];
        if (x < 0 || x >= 1000 || hit[x]++) perm = 0;
    }
    CHECK(perm, "randperm is a permutation");
    ewb_tensor *list[] = {a, b, c, d, u, ri, rp};
    for (size_t i = 0; i < 7; i++) ewb_tensor_free(list[i]);
    return check_report();
}
