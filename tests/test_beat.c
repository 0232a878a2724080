/* test_beat.c: kernels/beat.c (ewb_beat_synth). The forward against a naive
 * double-loop reference of the closed form, against ECGSYN's ODE integrated
 * with RK4 (limit cycle plus z-equation, no baseline pull, constant RR), and
 * against hand-computed values; every gradient by finite differences
 * (including a tensor passed as two inputs, so the backward must accumulate);
 * strided inputs; and the errors for bad shapes, dtypes and values. */
#include "check.h"

static const double PI = 3.14159265358979323846;
/* ECGSYN (McSharry 2003, NeuroKit2's defaults), P Q R S T */
static const double TH_DEG[5] = {-70, -15, 0, 15, 100};
static const double A_SYN[5] = {1.2, -5, 30, -7.5, 0.75};
static const double B_SYN[5] = {0.25, 0.1, 0.1, 0.1, 0.4};

static ewb_tensor *F32(int nd, const int64_t *shape, const float *data) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_from_data(&t, EWB_DTYPE_F32, nd, shape, data)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    return t;
}

static double uniform(double lo, double hi) { return lo + (hi - lo) * (double)rand() / RAND_MAX; }

/* ECGSYN's morphology at heart rate hr (bpm), with its heart-rate scaling */
static void ecgsyn_params(double hr, float *a, float *b, float *th) {
    double h = sqrt(hr / 60), sh = sqrt(h), ts[5] = {sh, h, 1, h, sh};
    for (int i = 0; i < 5; i++) {
        a[i] = (float)A_SYN[i];
        b[i] = (float)(B_SYN[i] * h);
        th[i] = (float)(TH_DEG[i] * PI / 180 * ts[i]);
    }
}

/* naive reference: z = Σ a b² exp(−Δ²/2b²) / ω, Δ wrapped by repeated ±2π */
static double ref_z(const float *a, int64_t astride, const float *b, const float *th, double rr, double phi) {
    double omega = 2 * PI / rr, z = 0;
    for (int i = 0; i < 5; i++) {
        double d = phi - th[i];
        while (d > PI) d -= 2 * PI;
        while (d <= -PI) d += 2 * PI;
        z += a[i * astride] * b[i] * b[i] * exp(-d * d / (2.0 * b[i] * b[i])) / omega;
    }
    return z;
}

/* ECGSYN's ODE, state (x, y, z): the limit cycle and the z-equation without
   the baseline pull, at angular speed ω */
static void ecgsyn_deriv(const float *a, const float *b, const float *th, double omega, const double *s, double *ds) {
    double x = s[0], y = s[1], alpha = 1 - sqrt(x * x + y * y), t = atan2(y, x), dz = 0;
    ds[0] = alpha * x - omega * y;
    ds[1] = alpha * y + omega * x;
    for (int i = 0; i < 5; i++) {
        double d = t - th[i];
        while (d > PI) d -= 2 * PI;
        while (d <= -PI) d += 2 * PI;
        dz -= a[i] * d * exp(-d * d / (2.0 * b[i] * b[i]));
    }
    ds[2] = dz;
}

/* z at t_k = k·RR/n, RK4 with m steps per sample, from (x, y) = (−1, 0), θ = π,
   and the integration constant z0 (the ODE fixes z only up to a constant) */
static void ecgsyn_rk4(const float *a, const float *b, const float *th, double rr, int64_t n, int m, double z0, float *z) {
    double omega = 2 * PI / rr, dt = rr / (double)(n * m), s[3] = {-1, 0, z0};
    for (int64_t k = 0; k < n; k++) {
        z[k] = (float)s[2];
        for (int j = 0; j < m; j++) {
            double k1[3], k2[3], k3[3], k4[3], t[3];
            ecgsyn_deriv(a, b, th, omega, s, k1);
            for (int c = 0; c < 3; c++) t[c] = s[c] + 0.5 * dt * k1[c];
            ecgsyn_deriv(a, b, th, omega, t, k2);
            for (int c = 0; c < 3; c++) t[c] = s[c] + 0.5 * dt * k2[c];
            ecgsyn_deriv(a, b, th, omega, t, k3);
            for (int c = 0; c < 3; c++) t[c] = s[c] + dt * k3[c];
            ecgsyn_deriv(a, b, th, omega, t, k4);
            for (int c = 0; c < 3; c++) s[c] += dt / 6 * (k1[c] + 2 * k2[c] + 2 * k3[c] + k4[c]);
        }
    }
}

static void test_ecgsyn(void) {
    /* ECGSYN's beats at 60, 75 and 120 bpm, one per row */
    enum { B = 3, N = 500 };
    const double hrs[B] = {60, 75, 120};
    float a[B * 5], b[B * 5], th[B * 5], rr[B], zr[N];
    for (int r = 0; r < B; r++) {
        ecgsyn_params(hrs[r], a + 5 * r, b + 5 * r, th + 5 * r);
        rr[r] = (float)(60 / hrs[r]);
    }
    int64_t s2[2] = {B, 5}, s1[1] = {B}, sn[1] = {N};
    ewb_tensor *ta = F32(2, s2, a), *tb = F32(2, s2, b), *tt = F32(2, s2, th), *tr = F32(1, s1, rr), *out = NULL;
    OK(ewb_beat_synth(ta, tb, tt, tr, N, &out));
    CHECK(out && ewb_tensor_ndim(out) == 2 && ewb_tensor_size(out, 0) == B && ewb_tensor_size(out, 1) == N,
          "shape of out: %s", ewb_s(out));
    for (int r = 0; out && r < B; r++) {
        double z0 = ref_z(a + 5 * r, 1, b + 5 * r, th + 5 * r, rr[r], -PI);
        ecgsyn_rk4(a + 5 * r, b + 5 * r, th + 5 * r, rr[r], N, 4, z0, zr);
        ewb_tensor *want = F32(1, sn, zr), *row = NULL;
        OK(ewb_select(out, 0, r, &row));
        double e = max_rel_err(row, want);
        fprintf(stderr, "ECGSYN RK4 vs closed form at %g bpm: normalised error %.2e\n", hrs[r], e);
        CHECK(e < 1e-3, "RK4 at %g bpm: normalised error %g", hrs[r], e);
        /* the R wave peaks at sample n/2 (θ_R = 0) */
        const float *o = ewb_f32(row);
        int64_t kmax = 0;
        for (int64_t k = 1; k < N; k++) if (o[k] > o[kmax]) kmax = k;
        CHECK(kmax == N / 2, "R peak at sample %lld, want %d", (long long)kmax, N / 2);
        ewb_tensor_free(want);
        ewb_tensor_free(row);
    }
    /* a random morphology, far from ECGSYN's, and angles outside (−π, π] */
    for (int i = 0; i < 5; i++) {
        a[i] = (float)uniform(-3, 3);
        b[i] = (float)uniform(0.15, 0.6);
        th[i] = (float)(uniform(-PI, PI) + 2 * PI * (i % 3 - 1));
    }
    rr[0] = 0.8f;
    int64_t one2[2] = {1, 5}, one1[1] = {1};
    ewb_tensor *ra = F32(2, one2, a), *rb = F32(2, one2, b), *rt = F32(2, one2, th), *rrr = F32(1, one1, rr), *ro = NULL;
    OK(ewb_beat_synth(ra, rb, rt, rrr, N, &ro));
    ecgsyn_rk4(a, b, th, rr[0], N, 4, ref_z(a, 1, b, th, rr[0], -PI), zr);
    int64_t s1n[2] = {1, N};
    ewb_tensor *want = F32(2, s1n, zr);
    double e = max_rel_err(ro, want);
    fprintf(stderr, "ECGSYN RK4 vs closed form, random morphology: normalised error %.2e\n", e);
    CHECK(e < 1e-3, "RK4, random morphology: normalised error %g", e);
    ewb_tensor_free(want);
    ewb_tensor_free(ra); ewb_tensor_free(rb); ewb_tensor_free(rt); ewb_tensor_free(rrr); ewb_tensor_free(ro);
    ewb_tensor_free(ta); ewb_tensor_free(tb); ewb_tensor_free(tt); ewb_tensor_free(tr); ewb_tensor_free(out);
}

static void test_reference(void) {
    /* multi-lead, strided a: (B,5,L) as a transposed view of a (B,L,5) tensor */
    enum { B = 4, L = 3, N = 37 };
    float al[B * L * 5], b[B * 5], th[B * 5], rr[B];
    for (int j = 0; j < B * L * 5; j++) al[j] = (float)uniform(-2, 2);
    for (int j = 0; j < B * 5; j++) {
        b[j] = (float)(uniform(0.05, 0.8) * (j % 4 == 3 ? -1 : 1)); /* z is even in b */
        th[j] = (float)uniform(-4, 4);
    }
    for (int r = 0; r < B; r++) rr[r] = (float)uniform(0.3, 2);
    int64_t sl[3] = {B, L, 5}, s2[2] = {B, 5}, s1[1] = {B};
    ewb_tensor *tl = F32(3, sl, al), *ta = NULL, *tb = F32(2, s2, b), *tt = F32(2, s2, th), *tr = F32(1, s1, rr), *out = NULL;
    OK(ewb_transpose(tl, 1, 2, &ta));
    CHECK(!ewb_tensor_is_contiguous(ta), "the (B,5,L) view should be strided");
    OK(ewb_beat_synth(ta, tb, tt, tr, N, &out));
    int64_t so[3] = {B, L, N};
    float want[B * L * N];
    for (int r = 0; r < B; r++)
        for (int l = 0; l < L; l++)
            for (int k = 0; k < N; k++)
                want[(r * L + l) * N + k] = (float)ref_z(al + (r * L + l) * 5, 1, b + 5 * r, th + 5 * r, rr[r], -PI + 2 * PI * k / N);
    ewb_tensor *tw = F32(3, so, want);
    CHECK(out && ewb_tensor_ndim(out) == 3 && ewb_tensor_size(out, 1) == L && ewb_tensor_size(out, 2) == N, "out %s", ewb_s(out));
    double e = max_rel_err(out, tw);
    fprintf(stderr, "naive reference, (4,5,3) strided a, n = 37: normalised error %.2e\n", e);
    CHECK(e < 1e-6, "against the naive reference: %g", e);
    /* one lead of the multi-lead op equals the (B,5) op on that lead's amplitudes */
    ewb_tensor *a1 = NULL, *o1 = NULL, *ol = NULL;
    OK(ewb_select(ta, 2, 1, &a1)); /* (B,5) */
    OK(ewb_beat_synth(a1, tb, tt, tr, N, &o1));
    OK(ewb_select(out, 1, 1, &ol));
    CHECK(max_rel_err(o1, ol) == 0, "(B,5) vs lead 1 of (B,5,L): %g", max_rel_err(o1, ol));
    ewb_tensor_free(a1); ewb_tensor_free(o1); ewb_tensor_free(ol);
    ewb_tensor_free(tw); ewb_tensor_free(out);
    ewb_tensor_free(tl); ewb_tensor_free(ta); ewb_tensor_free(tb); ewb_tensor_free(tt); ewb_tensor_free(tr);

    /* by hand: one R wave (a = 2, b = 0.5, θ = 0), RR = 1.5 s, n = 4 samples at
       φ = −π, −π/2, 0, π/2: z = (1.5/2π)·2·0.25·exp(−φ²/0.5) */
    int64_t h2[2] = {1, 5}, h1[1] = {1};
    float ha[5] = {0, 0, 2, 0, 0}, hb[5] = {1, 1, 0.5f, 1, 1}, ht[5] = {0}, hr[1] = {1.5f};
    ewb_tensor *xa = F32(2, h2, ha), *xb = F32(2, h2, hb), *xt = F32(2, h2, ht), *xr = F32(1, h1, hr), *xo = NULL;
    OK(ewb_beat_synth(xa, xb, xt, xr, 4, &xo));
    const double phis[4] = {-PI, -PI / 2, 0, PI / 2};
    for (int k = 0; xo && k < 4; k++) {
        double w = 1.5 / (2 * PI) * 2 * 0.25 * exp(-phis[k] * phis[k] / 0.5);
        CHECK(fabs(ewb_f32(xo)[k] - w) <= 1e-7 * (fabs(w) + 1e-3), "hand value %d: %.9g vs %.9g", k, ewb_f32(xo)[k], w);
    }
    ewb_tensor_free(xa); ewb_tensor_free(xb); ewb_tensor_free(xt); ewb_tensor_free(xr); ewb_tensor_free(xo);
}

/* ---------------- gradients ---------------- */
typedef struct { int64_t n; int shared; } gc_args;
static int beat_fn(ewb_tensor **in, ewb_tensor **out, void *ud) {
    gc_args *g = ud;
    /* shared: in[1] is both b and theta, so their gradients meet in one buffer */
    return ewb_beat_synth(in[0], in[1], g->shared ? in[1] : in[2], in[3], g->n, out);
}

static void fill(ewb_tensor *t, double lo, double hi) {
    float *p = ewb_f32(t);
    for (int64_t i = 0; i < ewb_tensor_numel(t); i++) p[i] = (float)uniform(lo, hi);
}

static void test_gradcheck(void) {
    const double tol = 2e-2;
    for (int multi = 0; multi < 2; multi++) {
        int64_t B = 2, L = 3, s3[3] = {B, 5, L}, s2[2] = {B, 5}, s1[1] = {B};
        ewb_tensor *in[4] = {T_req(multi ? 3 : 2, multi ? s3 : s2), T_req(2, s2), T_req(2, s2), T_req(1, s1)};
        fill(in[0], -2, 2);
        fill(in[1], 0.3, 0.9);
        fill(in[2], -2.5, 2.5);
        fill(in[3], 0.5, 1.5);
        gc_args g = {24, 0};
        double e = gradcheck(multi ? "beat_synth (B,5,L)" : "beat_synth (B,5)", beat_fn, 4, in, &g, 1e-3, 1e-2);
        fprintf(stderr, "gradcheck %s: worst error %.2e\n", multi ? "(B,5,L)" : "(B,5)", e);
        CHECK(e < tol, "gradcheck %s: %g", multi ? "(B,5,L)" : "(B,5)", e);
        if (multi) {
            /* only rr needs a gradient: the other slots are NULL */
            for (int i = 0; i < 3; i++) ewb_tensor_set_requires_grad(in[i], 0);
            e = gradcheck("beat_synth rr only", beat_fn, 4, in, &g, 1e-3, 1e-2);
            CHECK(e < tol, "gradcheck rr only: %g", e);
            /* one tensor as b and theta: its gradient is the sum of both */
            ewb_tensor_set_requires_grad(in[1], 1);
            g.shared = 1;
            fill(in[1], 0.3, 0.9);
            e = gradcheck("beat_synth b = theta", beat_fn, 4, in, &g, 1e-3, 1e-2);
            fprintf(stderr, "gradcheck b = theta (accumulation): worst error %.2e\n", e);
            CHECK(e < tol, "gradcheck b = theta: %g", e);
        }
        for (int i = 0; i < 4; i++) ewb_tensor_free(in[i]);
    }
    { /* ECGSYN's own parameters at 75 bpm, narrow waves on a 128-sample grid */
        float a[5], b[5], th[5], rr[1] = {0.8f};
        ecgsyn_params(75, a, b, th);
        int64_t s2[2] = {1, 5}, s1[1] = {1};
        ewb_tensor *in[4] = {F32(2, s2, a), F32(2, s2, b), F32(2, s2, th), F32(1, s1, rr)};
        for (int i = 0; i < 4; i++) ewb_tensor_set_requires_grad(in[i], 1);
        gc_args g = {128, 0};
        double e = gradcheck("beat_synth ECGSYN", beat_fn, 4, in, &g, 1e-3, 1e-2);
        fprintf(stderr, "gradcheck ECGSYN parameters: worst error %.2e\n", e);
        CHECK(e < tol, "gradcheck ECGSYN parameters: %g", e);
        for (int i = 0; i < 4; i++) ewb_tensor_free(in[i]);
    }
}

/* a batch big enough for the OpenMP loops (B·L·n > 2^15): each row, forward
   and gradients, equals the op run on that row alone */
static void test_batch(void) {
    enum { B = 64, L = 12, N = 256 };
    int64_t sa[3] = {B, 5, L}, s2[2] = {B, 5}, s1[1] = {B}, so[3] = {B, L, N};
    ewb_tensor *in[4] = {T_req(3, sa), T_req(2, s2), T_req(2, s2), T_req(1, s1)}, *R = T(3, so), *out = NULL;
    fill(in[1], 0.05, 0.5);
    fill(in[2], -PI, PI);
    fill(in[3], 0.4, 1.5);
    double t0 = ewb_now();
    OK(ewb_beat_synth(in[0], in[1], in[2], in[3], N, &out));
    double t1 = ewb_now();
    OK(ewb_backward(out, R, 0));
    double t2 = ewb_now();
    fprintf(stderr, "(64,5,12) -> (64,12,256): forward %.2f ms, backward %.2f ms\n", 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    ewb_tensor *g[4] = {NULL};
    for (int i = 0; i < 4; i++) ewb_tensor_grad(in[i], &g[i]);
    const int64_t rows[3] = {0, 37, 63};
    const int64_t per[4] = {5 * L, 5, 5, 1}; /* elements of one row of each input */
    for (int j = 0; j < 3; j++) {
        int64_t r = rows[j], ra[3] = {1, 5, L}, r2[2] = {1, 5}, r1[1] = {1}, ro[3] = {1, L, N};
        ewb_tensor *x[4] = {F32(3, ra, ewb_f32(in[0]) + r * per[0]), F32(2, r2, ewb_f32(in[1]) + r * per[1]),
                            F32(2, r2, ewb_f32(in[2]) + r * per[2]), F32(1, r1, ewb_f32(in[3]) + r)};
        ewb_tensor *Rr = F32(3, ro, ewb_f32(R) + r * L * N), *o = NULL;
        for (int i = 0; i < 4; i++) ewb_tensor_set_requires_grad(x[i], 1);
        OK(ewb_beat_synth(x[0], x[1], x[2], x[3], N, &o));
        ewb_tensor *ob = F32(3, ro, ewb_f32(out) + r * L * N);
        CHECK(max_rel_err(ob, o) == 0, "row %lld of the batch: forward differs by %g", (long long)r, max_rel_err(ob, o));
        OK(ewb_backward(o, Rr, 0));
        for (int i = 0; i < 4; i++) {
            ewb_tensor *gx = NULL;
            ewb_tensor_grad(x[i], &gx);
            ewb_tensor *gb = g[i] ? F32(x[i]->ndim, x[i]->shape, ewb_f32(g[i]) + r * per[i]) : NULL;
            CHECK(gx && gb && max_rel_err(gb, gx) == 0, "row %lld, gradient of input %d differs", (long long)r, i);
            ewb_tensor_free(gx);
            ewb_tensor_free(gb);
            ewb_tensor_free(x[i]);
        }
        ewb_tensor_free(o); ewb_tensor_free(ob); ewb_tensor_free(Rr);
    }
    for (int i = 0; i < 4; i++) { ewb_tensor_free(in[i]); ewb_tensor_free(g[i]); }
    ewb_tensor_free(R);
    ewb_tensor_free(out);
}

/* ---------------- bad input ---------------- */
static void test_errors(void) {
    int64_t s2[2] = {2, 5}, s4[2] = {2, 4}, s3[2] = {3, 5}, s1[1] = {2}, s11[2] = {2, 1}, s5[3] = {2, 5, 2};
    float ones[20], bad[10];
    for (int i = 0; i < 20; i++) ones[i] = 1;
    ewb_tensor *a = F32(2, s2, ones), *b = F32(2, s2, ones), *th = F32(2, s2, ones), *rr = F32(1, s1, ones);
    ewb_tensor *a4 = F32(2, s4, ones), *b3 = F32(2, s3, ones), *rr2 = F32(2, s11, ones), *a3 = F32(3, s5, ones), *out = NULL;
    ewb_tensor *ai = NULL;
    OK(ewb_to_dtype(a, EWB_DTYPE_I32, &ai));
    FAILS(ewb_beat_synth(a4, b, th, rr, 8, &out), "amplitudes a must be (B,5) or (B,5,L)");
    FAILS(ewb_beat_synth(a4, b, th, rr, 8, &out), "f32[2,4]");
    FAILS(ewb_beat_synth(rr, b, th, rr, 8, &out), "amplitudes a must be");
    FAILS(ewb_beat_synth(a, b3, th, rr, 8, &out), "widths b must be (B,5) = (2,5)");
    FAILS(ewb_beat_synth(a3, b, b3, rr, 8, &out), "angles theta must be (B,5) = (2,5) like a f32[2,5,2], got f32[3,5]");
    FAILS(ewb_beat_synth(a, b, th, rr2, 8, &out), "rr must be (B) = (2)");
    FAILS(ewb_beat_synth(a, b, th, a, 8, &out), "rr must be (B)");
    FAILS(ewb_beat_synth(ai, b, th, rr, 8, &out), "beat_synth: expected an f32 tensor, got i32[2,5]");
    FAILS(ewb_beat_synth(a, b, th, NULL, 8, &out), "beat_synth: tensor argument is nil");
    FAILS(ewb_beat_synth(a, b, th, rr, 0, &out), "n must be in [1, 2^24] samples, got 0");
    /* values */
    memcpy(bad, ones, sizeof bad);
    bad[7] = 0;
    ewb_tensor *b0 = F32(2, s2, bad);
    FAILS(ewb_beat_synth(a, b0, th, rr, 8, &out), "widths must be finite and nonzero, got b[1,2] = 0");
    bad[7] = NAN;
    ewb_tensor *bn = F32(2, s2, bad);
    FAILS(ewb_beat_synth(a, bn, th, rr, 8, &out), "b[1,2] = nan");
    float rbad[2] = {1, -0.5f};
    ewb_tensor *rneg = F32(1, s1, rbad);
    FAILS(ewb_beat_synth(a, b, th, rneg, 8, &out), "RR interval must be finite and > 0 s, got rr[1] = -0.5");
    CHECK(out == NULL, "a failed call leaves out untouched");
    /* an empty batch is fine */
    int64_t e2[2] = {0, 5}, e1[1] = {0};
    ewb_tensor *ea = NULL, *eb = NULL, *er = NULL;
    OK(ewb_tensor_new(&ea, EWB_DTYPE_F32, 2, e2));
    OK(ewb_tensor_new(&eb, EWB_DTYPE_F32, 2, e2));
    OK(ewb_tensor_new(&er, EWB_DTYPE_F32, 1, e1));
    OK(ewb_beat_synth(ea, eb, eb, er, 8, &out));
    CHECK(out && ewb_tensor_numel(out) == 0 && ewb_tensor_size(out, 1) == 8, "empty batch: %s", ewb_s(out));
    ewb_tensor_free(out);
    ewb_tensor_free(ea); ewb_tensor_free(eb); ewb_tensor_free(er);
    ewb_tensor_free(b0); ewb_tensor_free(bn); ewb_tensor_free(rneg); ewb_tensor_free(ai);
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(th); ewb_tensor_free(rr);
    ewb_tensor_free(a4); ewb_tensor_free(b3); ewb_tensor_free(rr2); ewb_tensor_free(a3);
}

int main(void) {
    srand(7);
    ewb_manual_seed(7);
    test_ecgsyn();
    test_reference();
    test_gradcheck();
    test_batch();
    test_errors();
    return check_report();
}
