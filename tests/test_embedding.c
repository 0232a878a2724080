/* test_embedding.c: embedding and dropout (kernels/embedding.c).
 * Embedding: forward against a naive row copy, weight gradient against finite
 * differences and against counts of repeated ids, out-of-range ids as errors.
 * Dropout: keep rate within 4 sigma over 1e5 elements, kept values scaled,
 * the same mask for the same seed and at any thread count, the backward
 * using the forward's mask, and finite differences with the RNG state held. */
#include "check.h"

static double get(const ewb_tensor *t, const int64_t *idx) {
    double v = NAN;
    ewb_tensor_get(t, idx, &v);
    return v;
}
static ewb_tensor *ids(int dtype, int ndim, const int64_t *shape, const int64_t *v) {
    ewb_tensor *t = NULL;
    ewb_tensor_new(&t, dtype, ndim, shape);
    for (int64_t i = 0; i < ewb_tensor_numel(t); i++) {
        if (dtype == EWB_DTYPE_I64) ((int64_t *)ewb_tensor_data(t))[i] = v[i];
        else ((int32_t *)ewb_tensor_data(t))[i] = (int32_t)v[i];
    }
    return t;
}
static float *values(const ewb_tensor *t) { /* malloc'd row-major copy */
    int64_t n = ewb_tensor_numel(t);
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    ewb_tensor_copy_to(t, p, n * 4);
    return p;
}

/* ================================================================ embedding */
static void check_embedding(ewb_tensor *w, ewb_tensor *index, const char *what) {
    ewb_tensor *o = NULL;
    OK(ewb_embedding(w, index, &o));
    if (!o) return;
    int64_t D = w->shape[1], N = ewb_tensor_numel(index);
    int ok = o->ndim == index->ndim + 1 && o->shape[o->ndim - 1] == D;
    for (int i = 0; ok && i < index->ndim; i++) ok = o->shape[i] == index->shape[i];
    CHECK(ok, "%s: shape %s for index %s", what, ewb_s(o), ewb_s(index));
    ewb_tensor *ic = ewb_contig_or_self(index);
    float *got = values(o);
    double worst = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t id = ic->dtype == EWB_DTYPE_I64 ? ((int64_t *)ewb_tensor_data(ic))[n] : ((int32_t *)ewb_tensor_data(ic))[n];
        for (int64_t d = 0; d < D; d++) {
            double diff = fabs(got[n * D + d] - get(w, (int64_t[]){id, d}));
            if (!(diff <= worst)) worst = diff;
        }
    }
    CHECK(worst == 0, "%s: differs from the naive row copy by %g", what, worst);
    free(got);
    ewb_tensor_free(ic);
    ewb_tensor_free(o);
}

static int gc_embedding(ewb_tensor **in, ewb_tensor **out, void *ud) { return ewb_embedding(in[0], ud, out); }

static void test_embedding(void) {
    int64_t sw[2] = {5, 3}, si[2] = {2, 3}, v[6] = {4, 0, 4, 2, 4, 1};
    ewb_tensor *w = T_req(2, sw), *i64 = ids(EWB_DTYPE_I64, 2, si, v), *i32 = ids(EWB_DTYPE_I32, 2, si, v), *o = NULL;
    check_embedding(w, i64, "embedding i64 (2,3)");
    check_embedding(w, i32, "embedding i32 (2,3)");
    ewb_tensor *i0 = ids(EWB_DTYPE_I64, 0, NULL, (int64_t[]){3});
    check_embedding(w, i0, "embedding 0-d index");
    ewb_tensor *wt = NULL, *wbase = T(2, (int64_t[]){3, 5}), *it = NULL;
    ewb_transpose(wbase, 0, 1, &wt); /* strided weight (5, 3) */
    check_embedding(wt, i64, "embedding strided weight");
    ewb_transpose(i64, 0, 1, &it);  /* strided index (3, 2) */
    check_embedding(w, it, "embedding strided index");

    double e = gradcheck("embedding", gc_embedding, 1, &w, i64, 1e-2, 1e-3);
    CHECK(e < 1e-3, "embedding gradcheck %g", e);

    /* repeated ids accumulate: id 4 appears three times */
    ewb_tensor_set_grad(w, NULL);
    OK(ewb_embedding(w, i32, &o));
    ewb_tensor *ones = NULL, *g = NULL;
    ewb_full(&ones, EWB_DTYPE_F32, 3, (int64_t[]){2, 3, 3}, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(w, &g);
    double want[5] = {1, 1, 1, 0, 3};
    int bad = 0;
    for (int64_t r = 0; g && r < 5; r++)
        for (int64_t d = 0; d < 3; d++) bad += get(g, (int64_t[]){r, d}) != want[r];
    CHECK(g && bad == 0, "embedding grad rows count the ids (%d wrong)", bad);
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(g);

    /* large enough for the parallel column split */
    int64_t V = 10, D = 96, N = 2000;
    ewb_tensor *wl = T_req(2, (int64_t[]){V, D}), *il = NULL;
    int64_t *lv = malloc(sizeof(int64_t) * N), count[10] = {0};
    for (int64_t n = 0; n < N; n++) { lv[n] = (n * 7 + n / 3) % V; count[lv[n]]++; }
    il = ids(EWB_DTYPE_I64, 1, &N, lv);
    check_embedding(wl, il, "embedding large");
    OK(ewb_embedding(wl, il, &o));
    ewb_full(&ones, EWB_DTYPE_F32, 2, (int64_t[]){N, D}, 1.0);
    OK(ewb_backward(o, ones, 0));
    ewb_tensor_grad(wl, &g);
    bad = 0;
    for (int64_t r = 0; g && r < V; r++)
        for (int64_t d = 0; d < D; d++) bad += get(g, (int64_t[]){r, d}) != (double)count[r];
    CHECK(g && bad == 0, "embedding large grads count the ids (%d wrong)", bad);
    ewb_tensor_free(o); ewb_tensor_free(ones); ewb_tensor_free(g); free(lv);

    /* errors */
    ewb_tensor *ib = ids(EWB_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){0, 5, 1});
    FAILS(ewb_embedding(w, ib, &o), "embedding: id 5 is out of range for 5 embeddings");
    ewb_tensor *in = ids(EWB_DTYPE_I32, 1, (int64_t[]){2}, (int64_t[]){-1, 0});
    FAILS(ewb_embedding(w, in, &o), "embedding: id -1 is out of range for 5 embeddings");
    ewb_tensor *fi = T(1, (int64_t[]){2});
    FAILS(ewb_embedding(w, fi, &o), "embedding: index must be an i64 or i32 tensor, got f32[2]");
    ewb_tensor *w1 = T(1, (int64_t[]){5});
    FAILS(ewb_embedding(w1, i64, &o), "embedding: weight must be (V, D), got f32[5]");
    FAILS(ewb_embedding(i64, i64, &o), "embedding: expected an f32 tensor");

    ewb_tensor_free(w); ewb_tensor_free(i64); ewb_tensor_free(i32); ewb_tensor_free(i0); ewb_tensor_free(wt);
    ewb_tensor_free(wbase); ewb_tensor_free(it); ewb_tensor_free(wl); ewb_tensor_free(il); ewb_tensor_free(ib);
    ewb_tensor_free(in); ewb_tensor_free(fi); ewb_tensor_free(w1);
}

/* ================================================================ dropout */
static int gc_dropout(ewb_tensor **in, ewb_tensor **out, void *ud) {
    ewb_rng_set_state(99, 0); /* the same mask at every evaluation */
    return ewb_dropout(in[0], *(double *)ud, 1, out);
}

static void test_dropout(void) {
    const int64_t n = 100000;
    const double p = 0.3;
    ewb_tensor *ones = NULL, *o = NULL, *o2 = NULL;
    ewb_full(&ones, EWB_DTYPE_F32, 1, &n, 1.0);

    /* keep rate and scale */
    ewb_manual_seed(1234);
    OK(ewb_dropout(ones, p, 1, &o));
    float *a = values(o);
    int64_t kept = 0, badv = 0;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] != 0) kept++;
        if (a[i] != 0 && fabsf(a[i] - (float)(1 / (1 - p))) > 1e-6f) badv++;
    }
    double rate = (double)kept / n, sigma = sqrt(p * (1 - p) / n);
    CHECK(fabs(rate - (1 - p)) < 4 * sigma, "keep rate %.5f, expected %.5f +- %.5f", rate, 1 - p, 4 * sigma);
    CHECK(badv == 0, "%lld kept values are not 1/(1-p)", (long long)badv);

    /* the same seed gives the same mask, at any thread count; the next call another */
    int threads = ewb_num_threads();
    ewb_set_num_threads(1);
    ewb_manual_seed(1234);
    OK(ewb_dropout(ones, p, 1, &o2));
    ewb_set_num_threads(threads > 1 ? threads : 2);
    float *b = values(o2);
    CHECK(memcmp(a, b, sizeof(float) * n) == 0, "same seed, 1 thread vs %d: masks differ", threads);
    ewb_tensor_free(o2);
    OK(ewb_dropout(ones, p, 1, &o2));
    free(b);
    b = values(o2);
    CHECK(memcmp(a, b, sizeof(float) * n) != 0, "two successive dropouts drew the same mask");
    free(a); free(b);
    ewb_tensor_free(o); ewb_tensor_free(o2);

    /* the mask is the documented draw: element i keeps when u01(word i%4 of
       Philox block (seed, offset + i/4)) >= p, checked on a reference loop */
    const int64_t nr = 1001;
    ewb_tensor *onesr = NULL;
    ewb_full(&onesr, EWB_DTYPE_F32, 1, &nr, 1.0);
    for (int k = 0; k < 3; k++) {
        double pr = (double[]){0.4, 0.05, 0.999}[k];
        ewb_rng_set_state(21, 5);
        OK(ewb_dropout(onesr, pr, 1, &o));
        float *r = values(o);
        int64_t wrong = 0;
        for (int64_t i = 0; i < nr; i++) {
            uint32_t w[4];
            ewb_philox(21, 5 + (uint64_t)(i / 4), w);
            float want = ewb_u01(w[i % 4]) >= pr ? (float)(1 / (1 - pr)) : 0.0f;
            wrong += r[i] != want;
        }
        uint64_t seed, off;
        ewb_rng_get_state(&seed, &off);
        CHECK(wrong == 0 && off == 5 + (nr + 3) / 4, "p=%g: %lld elements differ from the reference draw (offset %llu)", pr,
              (long long)wrong, (unsigned long long)off);
        free(r);
        ewb_tensor_free(o);
    }
    ewb_tensor_free(onesr);

    /* the backward uses the forward's mask: dx = dy * scale where kept, 0 elsewhere */
    ewb_tensor *x = T_req(1, &n), *gy = T(1, &n), *gx = NULL;
    OK(ewb_dropout(x, p, 1, &o));
    float *y = values(o);
    ewb_rng_set_state(5, 77); /* the stream moving on must not change the backward */
    OK(ewb_backward(o, gy, 0));
    ewb_tensor_grad(x, &gx);
    float *gyv = values(gy), *gxv = gx ? values(gx) : NULL;
    int64_t mism = 0, nz = 0;
    for (int64_t i = 0; gxv && i < n; i++) {
        float want = y[i] != 0 ? gyv[i] * (float)(1 / (1 - p)) : 0.0f;
        if (fabsf(gxv[i] - want) > 1e-6f * (1 + fabsf(want))) mism++;
        nz += y[i] != 0;
    }
    CHECK(gxv && mism == 0 && nz > 0, "dropout backward differs from the forward mask at %lld of %lld", (long long)mism, (long long)n);
    free(y); free(gyv); free(gxv);
    ewb_tensor_free(o); ewb_tensor_free(gx);

    /* finite differences (the RNG state is reset before each evaluation) */
    ewb_tensor *xs = T_req(2, (int64_t[]){4, 5});
    double ps[2] = {0.5, 0.0};
    for (int k = 0; k < 2; k++) {
        double e = gradcheck("dropout", gc_dropout, 1, &xs, &ps[k], 1e-2, 1e-3);
        CHECK(e < 1e-3, "dropout p=%g gradcheck %g", ps[k], e);
    }

    /* a strided input is masked in its logical element order */
    ewb_tensor *base = T(2, (int64_t[]){5, 4}), *xt = NULL, *xc = NULL;
    ewb_transpose(base, 0, 1, &xt);
    ewb_clone(xt, &xc);
    ewb_rng_set_state(3, 10);
    OK(ewb_dropout(xt, 0.5, 1, &o));
    ewb_rng_set_state(3, 10);
    OK(ewb_dropout(xc, 0.5, 1, &o2));
    CHECK(max_rel_err(o, o2) == 0, "strided dropout differs from contiguous");
    ewb_tensor_free(o); ewb_tensor_free(o2);

    /* train = 0 is the identity; p = 1 gives zeros and zero gradients */
    OK(ewb_dropout(x, 0.9, 0, &o));
    CHECK(o && o != x && max_rel_err(o, x) == 0, "eval dropout changed its input");
    ewb_tensor_set_grad(x, NULL);
    OK(ewb_backward(o, gy, 0));
    ewb_tensor_grad(x, &gx);
    CHECK(gx && max_rel_err(gx, gy) == 0, "eval dropout passes the gradient through");
    ewb_tensor_free(gx);
    ewb_tensor_dispose(o); /* t:free() of the result leaves the input alive */
    ewb_tensor_free(o);
    CHECK(ewb_tensor_is_alive(x), "freeing the eval dropout output freed its input");
    ewb_tensor_set_grad(x, NULL);
    OK(ewb_dropout(x, 1.0, 1, &o));
    OK(ewb_backward(o, gy, 0));
    ewb_tensor_grad(x, &gx);
    float *zo = values(o), *zg = gx ? values(gx) : NULL;
    int64_t nonzero = 0;
    for (int64_t i = 0; zg && i < n; i++) nonzero += zo[i] != 0 || zg[i] != 0;
    CHECK(zg && nonzero == 0, "p=1: %lld non-zero outputs or gradients", (long long)nonzero);
    free(zo); free(zg);
    ewb_tensor_free(o); ewb_tensor_free(gx);

    FAILS(ewb_dropout(x, -0.1, 1, &o), "dropout: p must be in [0, 1], got -0.1");
    FAILS(ewb_dropout(x, 1.5, 1, &o), "dropout: p must be in [0, 1]");
    FAILS(ewb_dropout(x, NAN, 1, &o), "dropout: p must be in [0, 1]");
    ewb_tensor *ii = ids(EWB_DTYPE_I64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    FAILS(ewb_dropout(ii, 0.5, 1, &o), "dropout: expected an f32 tensor");

    ewb_tensor_free(ones); ewb_tensor_free(x); ewb_tensor_free(gy); ewb_tensor_free(xs); ewb_tensor_free(base);
    ewb_tensor_free(xt); ewb_tensor_free(xc); ewb_tensor_free(ii);
}

int main(void) {
    ewb_manual_seed(11);
    test_embedding();
    test_dropout();
    return check_report();
}
