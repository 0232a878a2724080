/* sgemm_peak.c: the machine's single-precision matmul peak, as the yardstick
 * for tests/bench/run.sh. Calls oneDNN's dnnl_sgemm directly (a bench tool,
 * not part of the library) on square row-major matrices of 512..2048 and
 * prints the best GFLOP/s over sizes and repetitions, with 2*N^3 FLOPs per
 * product. Threads: OMP_NUM_THREADS (run.sh sets 2).
 *   usage: sgemm_peak [-v]     (-v: one line per size) */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

int main(int argc, char **argv) {
    int verbose = argc > 1 && !strcmp(argv[1], "-v");
    const int sizes[] = {512, 768, 1024, 1536, 2048};
    double best = 0;
    int best_n = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int n = sizes[s];
        float *a = aligned_alloc(64, (size_t)n * n * 4), *b = aligned_alloc(64, (size_t)n * n * 4),
              *c = aligned_alloc(64, (size_t)n * n * 4);
        if (!a || !b || !c) { fprintf(stderr, "sgemm_peak: out of memory at n=%d\n", n); return 1; }
        for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; c[i] = 0; }
        /* products per timed repetition: about 0.3 GFLOP each */
        int inner = (int)(3e8 / (2.0 * n * n * n)) + 1;
        double best_n_gf = 0;
        for (int rep = 0; rep < 6; rep++) { /* rep 0 is warmup (JIT, page faults) */
            double t0 = now();
            for (int i = 0; i < inner; i++)
                if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, a, n, b, n, 0.0f, c, n) != dnnl_success) {
                    fprintf(stderr, "sgemm_peak: dnnl_sgemm failed at n=%d\n", n);
                    return 1;
                }
            double gf = 2.0 * n * n * n * inner / (now() - t0) / 1e9;
            if (rep > 0 && gf > best_n_gf) best_n_gf = gf;
        }
        if (verbose) printf("n=%d %.1f GFLOP/s\n", n, best_n_gf);
        if (best_n_gf > best) { best = best_n_gf; best_n = n; }
        free(a); free(b); free(c);
    }
    printf("sgemm_peak %.1f GFLOP/s (n=%d)\n", best, best_n);
    return 0;
}
