/* sim.c: the ECGSYN simulator (McSharry et al. 2003, IEEE TBME 50(3)),
 * extended from one lead to a 3-D cardiac dipole projected to 12 leads.
 *
 * The trajectory (x, y) moves on the unit limit cycle with angular speed
 * ω = 2π / RR(t); its angle θ is the cardiac phase, with the R wave at θ = 0.
 * Each dipole component c ∈ {X, Y, Z} obeys ECGSYN's z-equation
 *     dz_c/dt = −Σ_i a_i v_ic Δθ_i exp(−Δθ_i² / 2b_i²) − λ z_c,   Δθ_i = (θ − θ_i) mod 2π
 * (ECGSYN's equation with its baseline pull −(z − z0) written −λ z_c; see
 * BASELINE_PULL), so every wave i ∈ {P, Q, R, S, T} shares θ_i, b_i (with ECGSYN's heart-rate
 * scaling) and |a_i|, while the vector v_i gives its direction in space.
 * The leads are the Dower projection of the dipole (Dower et al. 1980; the
 * "inverse Dower" matrix is its pseudo-inverse, ECG → VCG): V1–V6, I and II
 * come from the matrix, III, aVR, aVL and aVF from I and II, so
 * I + III = II and aVR + aVL + aVF = 0 hold exactly.
 *
 * The RR tachogram is ECGSYN's: a bimodal power spectrum (Mayer waves at
 * f1 = 0.1 Hz, respiration at f2 = 0.25 Hz, both with std 0.01 Hz, power ratio
 * LF/HF), random phases, an inverse Fourier transform at 1 Hz, scaled to the
 * requested mean and std of heart rate. Each beat keeps the RR value drawn
 * at its start (θ = π, in diastole).
 *
 * Units: time in s, frequencies in Hz, voltages in mV. Randomness comes from
 * Philox keyed by (seed, record index), so a record is the same at any
 * thread count. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ECGSYN morphology (McSharry 2003; NeuroKit2's defaults): P Q R S T */
static const double THETA_DEG[5] = {-70, -15, 0, 15, 100};
static const double A_ECGSYN[5] = {1.2, -5, 30, -7.5, 0.75};
static const double B_ECGSYN[5] = {0.25, 0.1, 0.1, 0.1, 0.4};

/* Direction of each wave's dipole (X left, Y inferior, Z posterior, as in
   Frank's and Dower's axes), chosen so the projected leads show a normal
   adult 12-lead pattern: frontal QRS axis near +60°, septal q in I/V6 with r
   in V1, rS in V1–V2 progressing to qR in V5–V6, upright P in II and upright
   T in I, II and V2–V6. The sign of ECGSYN's a_i is folded into v. */
static const double V_DIPOLE[5][3] = {
    {0.30, 0.60, 0.03},   /* P */
    {-0.15, 0.02, -0.20}, /* Q: septal, rightward and anterior */
    {1.00, 0.60, 0.35},   /* R: leftward, inferior, posterior */
    {-0.35, -0.25, 0.35}, /* S: late, rightward, superior, posterior */
    {0.70, 0.52, -0.28},  /* T */
};

/* Dower matrix: rows V1..V6, I, II; columns X, Y, Z (mV per dipole unit) */
static const double DOWER[8][3] = {
    {-0.515, 0.157, -0.917}, {0.044, 0.164, -1.387}, {0.882, 0.098, -1.277}, {1.213, 0.127, -0.601},
    {1.125, 0.127, -0.086},  {0.831, 0.076, 0.230},  {0.632, -0.235, 0.059}, {0.235, 1.066, -0.132},
};

/* λ (1/s). ECGSYN uses 1: a 0.16 Hz high-pass that leaves the ST segment
   ~0.1 mV below the PR segment after a 1 mV R wave, which would read as ST
   depression. 0.1 keeps segments isoelectric (a test checks it) while still
   pulling numerical drift back to zero. */
static const double BASELINE_PULL = 0.1;

const char *const EWB_LEAD_NAMES[12] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

/* uniform in (0,1) from the record's Philox stream */
typedef struct { uint64_t seed, ctr; uint32_t buf[4]; int left; } sim_rng;
static double rng_u(sim_rng *r) {
    if (r->left == 0) { ewb_philox(r->seed, r->ctr++, r->buf); r->left = 4; }
    return ((double)r->buf[--r->left] + 0.5) / 4294967296.0;
}

/* ECGSYN's RR process: n samples at 1 Hz (s). A direct inverse DFT is used:
   n ≤ 2048 here, which costs well under a millisecond, so an FFT library
   would add a dependency for nothing. */
static void rr_process(double *rr, int n, double hr_mean, double hr_std, double lf_hf, sim_rng *rng) {
    const double f1 = 0.1, f2 = 0.25, c1 = 0.01, c2 = 0.01;
    double rr_mean = 60.0 / hr_mean, rr_std = 60.0 * hr_std / (hr_mean * hr_mean);
    double *amp = calloc((size_t)n, sizeof *amp), *ph = calloc((size_t)n, sizeof *ph);
    for (int k = 1; k < n / 2; k++) { /* one-sided spectrum, random phases */
        double f = (double)k / n;
        double s = lf_hf * exp(-0.5 * (f - f1) * (f - f1) / (c1 * c1)) / sqrt(2 * PI * c1 * c1) +
                   exp(-0.5 * (f - f2) * (f - f2) / (c2 * c2)) / sqrt(2 * PI * c2 * c2);
        amp[k] = sqrt(s);
        ph[k] = 2 * PI * rng_u(rng);
    }
    double mean = 0, var = 0;
    for (int t = 0; t < n; t++) {
        double x = 0;
        for (int k = 1; k < n / 2; k++) x += amp[k] * cos(2 * PI * k * t / n + ph[k]);
        rr[t] = x;
        mean += x;
    }
    mean /= n;
    for (int t = 0; t < n; t++) var += (rr[t] - mean) * (rr[t] - mean);
    double sd = sqrt(var / (n > 1 ? n - 1 : 1));
    for (int t = 0; t < n; t++) rr[t] = rr_mean + (sd > 0 ? (rr[t] - mean) * rr_std / sd : 0);
    free(amp);
    free(ph);
}

typedef struct {
    double theta[5], b[5], va[5][3]; /* wave angle (rad), width (rad), a_i·v_i */
} morph;

static void morph_init(morph *m, double hr) {
    double h = sqrt(hr / 60.0), sh = sqrt(h);
    const double tscale[5] = {sh, h, 1, h, sh};
    for (int i = 0; i < 5; i++) {
        m->theta[i] = THETA_DEG[i] * PI / 180.0 * tscale[i];
        m->b[i] = B_ECGSYN[i] * h;
        for (int c = 0; c < 3; c++) m->va[i][c] = fabs(A_ECGSYN[i]) * V_DIPOLE[i][c];
    }
}

/* derivative of the state s = (x, y, zX, zY, zZ) */
static void deriv(const morph *m, double omega, const double *s, double *ds) {
    double x = s[0], y = s[1], alpha = 1.0 - sqrt(x * x + y * y), th = atan2(y, x);
    ds[0] = alpha * x - omega * y;
    ds[1] = alpha * y + omega * x;
    double g[5];
    for (int i = 0; i < 5; i++) {
        double d = th - m->theta[i];
        if (d > PI) d -= 2 * PI;
        else if (d < -PI) d += 2 * PI;
        double u = d / m->b[i];
        g[i] = u * u < 36 ? d * exp(-0.5 * u * u) : 0; /* beyond 6 widths: < 2e-8 of the peak */
    }
    for (int c = 0; c < 3; c++) {
        double acc = 0;
        for (int i = 0; i < 5; i++) acc += m->va[i][c] * g[i];
        ds[2 + c] = -acc - BASELINE_PULL * s[2 + c];
    }
}

/* Gain that maps the dipole to mV: ECGSYN rescales each record to a fixed
   range, which would erase amplitude findings, so one fixed gain is used,
   set so that the R wave of a unit dipole peaks at 1 mV at 60 bpm. */
static double unit_gain(void) {
    static double gain;
    if (gain > 0) return gain;
    morph m;
    morph_init(&m, 60);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 3; c++) m.va[i][c] = i == 2 && c == 0 ? fabs(A_ECGSYN[2]) : 0;
    double s[5] = {-1, 0, 0, 0, 0}, dt = 1.0 / 1000, peak = 0; /* start at θ = π: a whole R wave ahead */
    for (int k = 0; k < 1000; k++) {
        double k1[5], k2[5], k3[5], k4[5], t[5];
        deriv(&m, 2 * PI, s, k1);
        for (int j = 0; j < 5; j++) t[j] = s[j] + 0.5 * dt * k1[j];
        deriv(&m, 2 * PI, t, k2);
        for (int j = 0; j < 5; j++) t[j] = s[j] + 0.5 * dt * k2[j];
        deriv(&m, 2 * PI, t, k3);
        for (int j = 0; j < 5; j++) t[j] = s[j] + dt * k3[j];
        deriv(&m, 2 * PI, t, k4);
        for (int j = 0; j < 5; j++) s[j] += dt / 6 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
        if (s[2] > peak) peak = s[2];
    }
    gain = 1.0 / peak;
    return gain;
}

int ewb_sim_ecg(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **rpeaks) {
    if (!(cfg->fs >= 50 && cfg->fs <= 10000)) return ewb_error("sim_ecg: fs must be in [50, 10000] Hz, got %g", cfg->fs);
    if (!(cfg->seconds > 0 && cfg->seconds <= 3600)) return ewb_error("sim_ecg: seconds must be in (0, 3600], got %g", cfg->seconds);
    if (!(cfg->hr_mean >= 20 && cfg->hr_mean <= 250)) return ewb_error("sim_ecg: hr_mean must be in [20, 250] bpm, got %g", cfg->hr_mean);
    if (!(cfg->hr_std >= 0 && cfg->hr_std < cfg->hr_mean / 3)) return ewb_error("sim_ecg: hr_std must be in [0, hr_mean/3), got %g", cfg->hr_std);
    if (!(cfg->lf_hf > 0)) return ewb_error("sim_ecg: lf_hf must be > 0, got %g", cfg->lf_hf);
    int64_t n = (int64_t)llround(cfg->fs * cfg->seconds), shape[2] = {12, n};
    ewb_tensor *out = ewb_empty(EWB_DTYPE_F32, 2, shape);
    if (!out) return -1;
    sim_rng rng = {cfg->seed, cfg->index << 20, {0}, 0};
    double gain = unit_gain();

    /* RR at 1 Hz over the record plus one beat of margin, length a power of two */
    int nrr = 16;
    while (nrr < cfg->seconds + 4) nrr *= 2;
    double *rr = malloc(sizeof *rr * (size_t)nrr);
    rr_process(rr, nrr, cfg->hr_mean, cfg->hr_std, cfg->lf_hf, &rng);
    morph m;
    morph_init(&m, cfg->hr_mean);

    /* integrate at the output rate, starting at a random phase before an R wave */
    double dt = 1.0 / cfg->fs, th0 = -PI * (0.2 + 0.6 * rng_u(&rng));
    double s[5] = {cos(th0), sin(th0), 0, 0, 0};
    int64_t cap = 16, npk = 0, *pk = malloc(sizeof *pk * (size_t)cap);
    float *o = ewb_f32(out);
    double beat_rr = rr[0], prev_th = th0;
    /* a short run-in lets the z states forget their zero start */
    int64_t runin = (int64_t)(0.3 * cfg->fs);
    for (int64_t k = -runin; k < n; k++) {
        double omega = 2 * PI / beat_rr, k1[5], k2[5], k3[5], k4[5], t[5];
        deriv(&m, omega, s, k1);
        for (int j = 0; j < 5; j++) t[j] = s[j] + 0.5 * dt * k1[j];
        deriv(&m, omega, t, k2);
        for (int j = 0; j < 5; j++) t[j] = s[j] + 0.5 * dt * k2[j];
        deriv(&m, omega, t, k3);
        for (int j = 0; j < 5; j++) t[j] = s[j] + dt * k3[j];
        deriv(&m, omega, t, k4);
        for (int j = 0; j < 5; j++) s[j] += dt / 6 * (k1[j] + 2 * k2[j] + 2 * k3[j] + k4[j]);
        double th = atan2(s[1], s[0]);
        if (prev_th < 0 && th >= 0 && prev_th > -1) { /* θ = 0 crossed: an R wave */
            double frac = -prev_th / (th - prev_th); /* sub-sample position of the crossing */
            int64_t pos = k - 1 + (int64_t)llround(frac);
            if (pos >= 0 && pos < n) {
                if (npk == cap) pk = realloc(pk, sizeof *pk * (size_t)(cap *= 2));
                pk[npk++] = pos;
            }
        } else if (prev_th > 1 && th < -1) {
            /* θ = π crossed, in diastole between T and P: the next beat takes
               its RR here. Changing ω inside a wave would shift the baseline
               after it by (wave amplitude) × ΔRR/RR. */
            double tnow = (double)(k > 0 ? k : 0) * dt;
            int i = (int)tnow;
            beat_rr = rr[i < nrr ? i : nrr - 1];
        }
        prev_th = th;
        if (k < 0) continue;
        double X = s[2] * gain, Y = s[3] * gain, Z = s[4] * gain, lead[8];
        for (int l = 0; l < 8; l++) lead[l] = DOWER[l][0] * X + DOWER[l][1] * Y + DOWER[l][2] * Z;
        double I = lead[6], II = lead[7];
        float *col = o + k;
        col[0 * n] = (float)I;
        col[1 * n] = (float)II;
        col[2 * n] = (float)(II - I);            /* III */
        col[3 * n] = (float)(-(I + II) / 2);     /* aVR */
        col[4 * n] = (float)(I - II / 2);        /* aVL */
        col[5 * n] = (float)(II - I / 2);        /* aVF */
        for (int l = 0; l < 6; l++) col[(6 + l) * n] = (float)lead[l];
    }
    free(rr);
    int rc = 0;
    if (rpeaks) {
        *rpeaks = ewb_empty(EWB_DTYPE_I64, 1, &npk);
        if (*rpeaks) memcpy(ewb_tensor_data(*rpeaks), pk, sizeof *pk * (size_t)npk);
        else rc = -1;
    }
    free(pk);
    if (rc) { ewb_tensor_free(out); return -1; }
    *ecg = out;
    return 0;
}

const char *ewb_lead_name(int i) { return i >= 0 && i < 12 ? EWB_LEAD_NAMES[i] : NULL; }

int ewb_sim_rr(ewb_tensor **out, int64_t n, double hr_mean, double hr_std, double lf_hf, uint64_t seed) {
    if (n < 4 || n > 65536) return ewb_error("sim_rr: n must be in [4, 65536], got %lld", (long long)n);
    if (!(hr_mean >= 20 && hr_mean <= 250) || !(hr_std >= 0) || !(lf_hf > 0))
        return ewb_error("sim_rr: need hr_mean in [20, 250], hr_std >= 0, lf_hf > 0");
    ewb_tensor *t = ewb_empty(EWB_DTYPE_F32, 1, &n);
    if (!t) return -1;
    double *rr = malloc(sizeof *rr * (size_t)n);
    sim_rng rng = {seed, 0, {0}, 0};
    rr_process(rr, (int)n, hr_mean, hr_std, lf_hf, &rng);
    for (int64_t i = 0; i < n; i++) ewb_f32(t)[i] = (float)rr[i];
    free(rr);
    *out = t;
    return 0;
}
