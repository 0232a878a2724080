/* beat.c: the differentiable beat synthesiser. One ECGSYN beat per batch row,
 * in closed form, as an autograd op (for SE-Diff's simulator-consistency loss:
 * a beat decoder predicts ECGSYN parameters, this op turns them into beats).
 *
 * Derivation. ECGSYN's z-equation (McSharry et al. 2003) without the baseline
 * pull −(z − z0) is
 *     dz/dt = −Σ_i a_i Δθ_i exp(−Δθ_i² / (2 b_i²)),   Δθ_i = θ − θ_i wrapped to (−π, π],
 * for the waves i = P, Q, R, S, T. On the limit cycle with a constant RR the
 * phase turns at a constant speed, θ(t) = θ(0) + ω t with ω = 2π/RR, so
 * dz/dθ = (dz/dt) / ω. Since d/dΔ [b² exp(−Δ²/2b²)] = −Δ exp(−Δ²/2b²) and
 * dΔθ_i/dθ = 1,
 *     z(θ) = (1/ω) Σ_i a_i b_i² exp(−Δθ_i² / (2 b_i²)) + c
 *          = (RR / 2π) Σ_i a_i b_i² exp(−Δθ_i² / (2 b_i²)) + c.
 * Δθ_i² is continuous where Δθ_i wraps from π to −π, so this z is continuous
 * all round the cycle and solves the wrapped ODE exactly (the ODE's dz/dt has
 * a tiny jump there, and so does the derivative of this z). The constant is
 * c = 0: the level between waves to which ECGSYN's baseline pull (z0 = 0)
 * relaxes z. z is even in b (only b² appears), so |b| is the width; b = 0 is
 * an error.
 *
 * Grid. n samples span one RR: phase φ_k = −π + 2πk/n, time t_k = k·RR/n,
 * k = 0 … n−1 (the endpoint φ = π is the next beat's first sample). The beat
 * starts in diastole at θ = −π, where core/sim.c also switches RR, and an R
 * wave at θ_R = 0 peaks at sample n/2.
 *
 * Leads. a is (B,5) for one lead, out (B,n); or (B,5,L) with an amplitude per
 * wave and lead, out (B,L,n). b and θ are shared by the leads, as in
 * core/sim.c, whose 12 leads are a linear projection of a 3-D dipole whose
 * components each follow the z-equation: its beats are of this multi-lead form
 * with a_il = gain·|a_i|·(Dower·v_i)_l (and its baseline pull λ = 0.1/s).
 *
 * Gradients, with s = RR/2π and g_ik = exp(−Δ_ik² / (2 b_i²)):
 *     ∂z_lk/∂a_il = s b_i² g_ik
 *     ∂z_lk/∂b_i  = s a_il g_ik (2 b_i + Δ_ik² / b_i)
 *     ∂z_lk/∂θ_i  = s a_il g_ik Δ_ik            (∂Δ_ik/∂θ_i = −1)
 *     ∂z_lk/∂RR   = z_lk / RR
 * The backward forms A_il = Σ_k gout_lk g_ik and h_ik = Σ_l gout_lk a_il, so
 * it needs neither the output nor a (B,5,n) buffer. ∂/∂θ_i is undefined where
 * Δθ_i = ±π, at the wrap (the one-sided values differ by 2π s a_i g, about
 * e^(−π²/2b²), below 1e-13 for ECGSYN's widths).
 *
 * Units: θ, b and phases in rad, RR in s; z is in ECGSYN's units, linear in a,
 * so a gain folded into a gives mV. Arithmetic is in double. */
#include "../core/internal.h"
#include <stdlib.h>
#include <string.h>

enum { NWAVE = 5, PAR_MIN = 1 << 15 };
static const double PI = 3.14159265358979323846;

/* x wrapped to (−π, π] */
static inline double wrap_pi(double x) {
    double r = fmod(x + PI, 2 * PI);
    if (r <= 0) r += 2 * PI;
    return r - PI;
}

/* Δ_i = wrap(φ − θ_i) and g_i = exp(−Δ_i² / 2b_i²) for the five waves */
static inline void wave_terms(double phi, const float *theta, const float *b, double *d, double *g) {
    for (int i = 0; i < NWAVE; i++) {
        d[i] = wrap_pi(phi - theta[i]);
        double u = d[i] / b[i];
        g[i] = exp(-0.5 * u * u);
    }
}

static void beat_forward(float *out, const float *a, const float *b, const float *theta, const float *rr,
                         int64_t B, int64_t L, int64_t n) {
    // out (B,L,n), a (B,5,L), b (B,5), theta (B,5), rr (B)
    #pragma omp parallel for if (B * L * n > PAR_MIN)
    for (int64_t r = 0; r < B; r++) {
        const float *ar = a + r * NWAVE * L, *br = b + r * NWAVE, *tr = theta + r * NWAVE;
        float *o = out + r * L * n;
        double s = rr[r] / (2 * PI), d[NWAVE], g[NWAVE], w[NWAVE];
        for (int64_t k = 0; k < n; k++) {
            wave_terms(-PI + 2 * PI * (double)k / (double)n, tr, br, d, g);
            for (int i = 0; i < NWAVE; i++) w[i] = s * br[i] * br[i] * g[i];
            for (int64_t l = 0; l < L; l++) {
                double z = 0;
                for (int i = 0; i < NWAVE; i++) z += ar[i * L + l] * w[i];
                o[l * n + k] = (float)z;
            }
        }
    }
}

/* gradient buffers may be NULL (that input needs none); they accumulate */
static int beat_backward_raw(const float *gout, const float *a, const float *b, const float *theta, const float *rr,
                             int64_t B, int64_t L, int64_t n, float *ga, float *gb, float *gth, float *grr) {
    // gout (B,L,n); ga (B,5,L), gb (B,5), gth (B,5), grr (B)
    double *acc = malloc(sizeof(double) * (size_t)(B * NWAVE * L > 0 ? B * NWAVE * L : 1)); // A (B,5,L)
    if (!acc) return ewb_error("beat_synth backward: out of memory for %lld doubles", (long long)(B * NWAVE * L));
    #pragma omp parallel for if (B * L * n > PAR_MIN)
    for (int64_t r = 0; r < B; r++) {
        const float *ar = a + r * NWAVE * L, *br = b + r * NWAVE, *tr = theta + r * NWAVE, *go = gout + r * L * n;
        double *A = acc + r * NWAVE * L; // (5,L)
        double s = rr[r] / (2 * PI), d[NWAVE], g[NWAVE], h[NWAVE], db[NWAVE] = {0}, dth[NWAVE] = {0};
        for (int64_t j = 0; j < NWAVE * L; j++) A[j] = 0;
        for (int64_t k = 0; k < n; k++) {
            wave_terms(-PI + 2 * PI * (double)k / (double)n, tr, br, d, g);
            for (int i = 0; i < NWAVE; i++) h[i] = 0;
            for (int64_t l = 0; l < L; l++) {
                double G = go[l * n + k];
                for (int i = 0; i < NWAVE; i++) {
                    A[i * L + l] += G * g[i];
                    h[i] += G * ar[i * L + l];
                }
            }
            for (int i = 0; i < NWAVE; i++) {
                db[i] += h[i] * g[i] * (2 * br[i] + d[i] * d[i] / br[i]);
                dth[i] += h[i] * g[i] * d[i];
            }
        }
        double dr = 0;
        for (int i = 0; i < NWAVE; i++) {
            double w = s * br[i] * br[i];
            for (int64_t l = 0; l < L; l++) {
                if (ga) ga[r * NWAVE * L + i * L + l] += (float)(w * A[i * L + l]);
                dr += ar[i * L + l] * w * A[i * L + l];
            }
            if (gb) gb[r * NWAVE + i] += (float)(s * db[i]);
            if (gth) gth[r * NWAVE + i] += (float)(s * dth[i]);
        }
        if (grr) grr[r] += (float)(dr / rr[r]);
    }
    free(acc);
    return 0;
}

static float *slot_f32(ewb_node *nd, int i) {
    ewb_tensor *t = ewb_grad_slot(nd, i);
    return t ? ewb_f32(t) : NULL;
}

static int beat_backward(ewb_node *nd) {
    ewb_tensor *a = nd->saved[0], *b = nd->saved[1], *th = nd->saved[2], *rr = nd->saved[3]; // contiguous
    int64_t B = nd->iarg[0], L = nd->iarg[1], n = nd->iarg[2];
    return beat_backward_raw(ewb_f32(nd->gout), ewb_f32(a), ewb_f32(b), ewb_f32(th), ewb_f32(rr), B, L, n,
                             slot_f32(nd, 0), slot_f32(nd, 1), slot_f32(nd, 2), slot_f32(nd, 3));
}

static int check_args(ewb_tensor *a, ewb_tensor *b, ewb_tensor *theta, ewb_tensor *rr, int64_t n) {
    const char *op = "beat_synth";
    EWB_TRY(ewb_check_f32(op, a));
    EWB_TRY(ewb_check_f32(op, b));
    EWB_TRY(ewb_check_f32(op, theta));
    EWB_TRY(ewb_check_f32(op, rr));
    EWB_CHECK((a->ndim == 2 || a->ndim == 3) && a->shape[1] == NWAVE,
              "%s: amplitudes a must be (B,5) or (B,5,L) for P Q R S T, got %s", op, ewb_s(a));
    int64_t B = a->shape[0];
    EWB_CHECK(b->ndim == 2 && b->shape[0] == B && b->shape[1] == NWAVE,
              "%s: widths b must be (B,5) = (%lld,5) like a %s, got %s", op, (long long)B, ewb_s(a), ewb_s(b));
    EWB_CHECK(theta->ndim == 2 && theta->shape[0] == B && theta->shape[1] == NWAVE,
              "%s: angles theta must be (B,5) = (%lld,5) like a %s, got %s", op, (long long)B, ewb_s(a), ewb_s(theta));
    EWB_CHECK(rr->ndim == 1 && rr->shape[0] == B,
              "%s: rr must be (B) = (%lld) like a %s, got %s", op, (long long)B, ewb_s(a), ewb_s(rr));
    EWB_CHECK(n >= 1 && n <= (1 << 24), "%s: n must be in [1, 2^24] samples, got %lld", op, (long long)n);
    return 0;
}

/* values: RR > 0 s and b ≠ 0 (both finite), on the contiguous copies */
static int check_values(const float *b, const float *rr, int64_t B) {
    for (int64_t r = 0; r < B; r++) {
        if (!(rr[r] > 0 && isfinite(rr[r])))
            return ewb_error("beat_synth: the RR interval must be finite and > 0 s, got rr[%lld] = %g", (long long)r, rr[r]);
        for (int i = 0; i < NWAVE; i++)
            if (!(b[r * NWAVE + i] != 0 && isfinite(b[r * NWAVE + i])))
                return ewb_error("beat_synth: widths must be finite and nonzero, got b[%lld,%d] = %g", (long long)r, i, b[r * NWAVE + i]);
    }
    return 0;
}

int ewb_beat_synth(ewb_tensor *a, ewb_tensor *b, ewb_tensor *theta, ewb_tensor *rr, int64_t n, ewb_tensor **out) {
    EWB_TRY(check_args(a, b, theta, rr, n));
    int64_t B = a->shape[0], L = a->ndim == 3 ? a->shape[2] : 1;
    ewb_tensor *c[4] = {ewb_contig_or_self(a), ewb_contig_or_self(b), ewb_contig_or_self(theta), ewb_contig_or_self(rr)};
    ewb_tensor *o = NULL;
    int rc = c[0] && c[1] && c[2] && c[3] ? 0 : -1;
    if (rc == 0) rc = check_values(ewb_f32(c[1]), ewb_f32(c[3]), B);
    if (rc == 0) {
        int64_t s3[3] = {B, L, n}, s2[2] = {B, n};
        o = a->ndim == 3 ? ewb_empty(EWB_DTYPE_F32, 3, s3) : ewb_empty(EWB_DTYPE_F32, 2, s2);
        if (!o) rc = -1;
    }
    if (rc == 0) beat_forward(ewb_f32(o), ewb_f32(c[0]), ewb_f32(c[1]), ewb_f32(c[2]), ewb_f32(c[3]), B, L, n);
    ewb_tensor *ins[4] = {a, b, theta, rr};
    ewb_node *nd = rc ? NULL : ewb_record("beat_synth", beat_backward, 4, ins, o);
    if (nd) {
        for (int i = 0; i < 4; i++) ewb_save(nd, i, c[i]);
        nd->iarg[0] = B;
        nd->iarg[1] = L;
        nd->iarg[2] = n;
    }
    for (int i = 0; i < 4; i++) ewb_tensor_free(c[i]);
    return ewb_finish("beat_synth", o, rc, out);
}
