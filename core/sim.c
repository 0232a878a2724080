/* sim.c: the ECGSYN simulator (McSharry et al. 2003, IEEE TBME 50(3)),
 * extended from one lead to a 3-D cardiac dipole projected to 12 leads, with
 * rhythm, conduction and morphology conditions, electrode noise and the
 * ground truth of every record.
 *
 * The trajectory (x, y) moves on the unit limit cycle; its angle θ is the
 * cardiac phase, with the R wave at θ = 0. Each dipole component
 * c ∈ {X, Y, Z} obeys ECGSYN's z-equation
 *     dz_c/dt = −(ω/ω_a) Σ_i a_i v_ic Δθ_i exp(−Δθ_i² / 2b_i²) − λ (z_c − Z_c(θ)),   Δθ_i = (θ − θ_i) mod 2π
 * so every wave i shares θ_i, b_i and |a_i| across X, Y, Z while v_i gives its
 * direction. With ω = ω_a (the rate the morphology is built for) and the
 * pull toward 0 (Z = 0) this is ECGSYN's equation; the factor ω/ω_a makes the
 * waveform a function of the phase alone, so the speed can change without
 * moving the baseline. Z(θ) = Σ_i A_i v_i exp(−Δθ_i² / 2b_i²) (A_i = a_i b_i² / ω_a)
 * is the first term's integral along θ, the waveform itself: the state starts
 * on it and the pull only removes numerical error. ECGSYN's pull toward 0
 * drags the baseline by −λ × (the waveform's mean) per second (−0.05 to
 * −0.1 mV in lead II over 10 s at λ = 0.1), and a state started at 0
 * inside a wave starts offset by minus that wave.
 * The leads are the Dower projection of the dipole (Dower et al. 1980; the
 * "inverse Dower" matrix is its pseudo-inverse, ECG → VCG): V1–V6, I and II
 * come from the matrix, III, aVR, aVL and aVF from I and II, so
 * I + III = II and aVR + aVL + aVF = 0 hold exactly.
 *
 * Timing. Waves are defined in time relative to their R wave (wave: time t,
 * width σ, dipole peak A in mV) and converted to phase at ω_a = 2π·HR/60:
 * θ = ω_a t, b = ω_a σ, a v = A ω_a / b² (the z-equation's solution at
 * constant speed is Σ A exp(−(t − t_i)² / 2σ_i²)). Each R-to-R interval has a
 * "gap" in diastole (between the last wave of one beat and the first of the
 * next) where the phase runs at ω_g instead of ω_a; ω_g is chosen so the
 * interval has the wanted RR. P, QRS and T therefore keep their shape and
 * timing while RR varies (HRV, AF, PVC coupling and pauses, flutter block),
 * and the per-beat fiducials are exact. Beat morphology (normal or PVC)
 * switches in the middle of the gap.
 *
 * Integration: RK4 at the sampling step 1/fs, on the same ODE written in
 * polar coordinates of (x, y) = ρ (cos θ, sin θ): ECGSYN's
 * dx/dt = αx − ωy, dy/dt = αy + ωx with α = 1 − ρ is exactly
 * dρ/dt = ρ(1 − ρ), dθ/dt = ω. The state starts on the limit cycle ρ = 1,
 * where dρ/dt is 0 and RK4 keeps ρ = 1 exactly, so ρ is not carried and the
 * state is (θ, zX, zY, zZ): no atan2 or square root per stage, and θ
 * advances by exactly ω dt where ω is constant over a step (in Cartesian
 * form RK4 turns by ω dt only to O((ω dt)^5) and leaves the circle).
 *
 * The RR tachogram of sinus rhythm is ECGSYN's: a bimodal power spectrum
 * (Mayer waves at f1 = 0.1 Hz, respiration at f2 = 0.25 Hz, both with std
 * 0.01 Hz, power ratio LF/HF), random phases, an inverse Fourier transform at
 * 1 Hz, scaled to the requested mean and std of heart rate.
 *
 * ECGSYN's P wave (θ = −70°, b = 0.25) gives PR ≈ 200–230 ms below 72 bpm,
 * which reads as first-degree block, so the P wave is placed from a PR
 * interval (drawn 130–190 ms, or cfg->pr_ms) with a 100 ms wide P.
 *
 * Fiducials: a group of waves (P, QRS, T) starts and ends where the norm of
 * its dipole exceeds 10% (QRS: 5%) of its peak. PR = QRS on − P on, QRS = QRS off −
 * QRS on, QT = T off − QRS on, QTc = QT / √RR (Bazett).
 *
 * Noise is added per electrode (RA, LA, LL, V1–V6) and the leads are formed
 * from electrode potentials as an electrocardiograph does, so Einthoven's and
 * Goldberger's identities hold for the noisy signal too.
 *
 * Units: time in s, frequencies in Hz, voltages in mV. Randomness comes from
 * Philox keyed by (seed, record index), in separate streams for rhythm and
 * morphology, noise and demographics, so a record is the same at any thread
 * count and switching noise on does not change the clean signal. */
#include "internal.h"
#include <pthread.h>
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

/* Dower matrix: rows V1..V6, I, II; columns X, Y, Z (mV per dipole mV) */
static const double DOWER[8][3] = {
    {-0.515, 0.157, -0.917}, {0.044, 0.164, -1.387}, {0.882, 0.098, -1.277}, {1.213, 0.127, -0.601},
    {1.125, 0.127, -0.086},  {0.831, 0.076, 0.230},  {0.632, -0.235, 0.059}, {0.235, 1.066, -0.132},
};

/* λ (1/s), the pull of z toward the waveform Z(θ). ECGSYN pulls toward 0
   with λ = 1: a 0.16 Hz high-pass that leaves the ST segment ~0.1 mV below
   the PR segment after a 1 mV R wave, which would read as ST depression. */
static const double BASELINE_PULL = 0.1;

/* onset/offset threshold of a wave group (the QRS's is lower: ECGSYN's S
   wave is ~10% of the R, and must not straddle it), and the same for a lone Gaussian */
static const double FID_FRAC = 0.1, FID_FRAC_QRS = 0.05;
static const double FID_SIGMAS = 2.1460; /* sqrt(2 ln 10) */

const char *const EWB_LEAD_NAMES[12] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

/* label codes: PTB-XL's SCP statements where one exists; STE_ANT/INF/LAT
   (ST elevation by territory), LAD and RAD (axis) are ecgwb's own */
static const char *const LABEL_NAMES[EWB_SIM_NUM_LABELS] = {
    "NORM", "SR", "SBRAD", "STACH", "AFIB", "AFLT", "1AVB", "CLBBB", "CRBBB", "PVC",
    "STE_ANT", "STE_INF", "STE_LAT", "STD_", "INVT", "LVH", "LNGQT", "LAD", "RAD", "LVOLT"};

const char *ewb_sim_label_name(int k) { return k >= 0 && k < EWB_SIM_NUM_LABELS ? LABEL_NAMES[k] : NULL; }
const char *ewb_lead_name(int i) { return i >= 0 && i < 12 ? EWB_LEAD_NAMES[i] : NULL; }

/* ---- randomness ---- */

typedef struct { uint64_t seed, ctr; uint32_t buf[4]; int left; } sim_rng;
static sim_rng rng_stream(uint64_t seed, uint64_t index, uint64_t stream) {
    sim_rng r = {seed, (index << 24) | (stream << 20), {0}, 0};
    return r;
}
/* uniform in (0,1) */
static uint32_t rng_u32(sim_rng *r) {
    if (r->left == 0) { ewb_philox(r->seed, r->ctr++, r->buf); r->left = 4; }
    return r->buf[--r->left];
}
static double rng_u(sim_rng *r) { return ((double)rng_u32(r) + 0.5) / 4294967296.0; }
static double rng_uni(sim_rng *r, double lo, double hi) { return lo + (hi - lo) * rng_u(r); }
static double rng_normal(sim_rng *r) {
    double u1 = rng_u(r), u2 = rng_u(r);
    return sqrt(-2 * log(u1)) * cos(2 * PI * u2);
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
        for (int k = 1; k < n / 2; k++)
            if (amp[k] > 1e-6) x += amp[k] * cos(2 * PI * k * t / n + ph[k]);
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

/* ---- beat morphology in time ---- */

enum { G_P, G_QRS, G_ST, G_T };
#define MAXW 16
typedef struct { double t, sig, A[3]; int g; } wave; /* t, σ (s) relative to R; A dipole peak (mV) */
typedef struct { int n; wave w[MAXW]; } morph;

static void add_wave(morph *m, int g, double t, double sig, double ax, double ay, double az) {
    if (m->n == MAXW) return;
    wave w = {t, sig, {ax, ay, az}, g};
    m->w[m->n++] = w;
}

static void leads12(const double d[3], double out[12]) {
    double l[8];
    for (int r = 0; r < 8; r++) l[r] = DOWER[r][0] * d[0] + DOWER[r][1] * d[1] + DOWER[r][2] * d[2];
    double I = l[6], II = l[7];
    out[0] = I;
    out[1] = II;
    out[2] = II - I;
    out[3] = -(I + II) / 2;
    out[4] = I - II / 2;
    out[5] = II - I / 2;
    for (int i = 0; i < 6; i++) out[6 + i] = l[i];
}

/* leads12 over a signal: dipole (3, n) to leads (12, n), the same arithmetic */
static void project12(const double *dip, int64_t n, double *lead) {
    const double *dx = dip, *dy = dip + n, *dz = dip + 2 * n;
    for (int r = 0; r < 8; r++) { /* Dower rows V1..V6, I, II */
        double *o = lead + (r < 6 ? 6 + r : r - 6) * n, a = DOWER[r][0], b = DOWER[r][1], c = DOWER[r][2];
        for (int64_t k = 0; k < n; k++) o[k] = a * dx[k] + b * dy[k] + c * dz[k];
    }
    const double *I = lead, *II = lead + n;
    double *III = lead + 2 * n, *aVR = lead + 3 * n, *aVL = lead + 4 * n, *aVF = lead + 5 * n;
    for (int64_t k = 0; k < n; k++) {
        III[k] = II[k] - I[k];
        aVR[k] = -(I[k] + II[k]) / 2;
        aVL[k] = I[k] - II[k] / 2;
        aVF[k] = II[k] - I[k] / 2;
    }
}

/* dipole of the waves in groups `gmask` (bit per group) at time t */
static void dipole_at(const morph *m, int gmask, double t, double d[3]) {
    d[0] = d[1] = d[2] = 0;
    for (int i = 0; i < m->n; i++) {
        const wave *w = &m->w[i];
        if (!(gmask >> w->g & 1)) continue;
        double u = (t - w->t) / w->sig;
        if (u * u > 60) continue;
        double g = exp(-0.5 * u * u);
        for (int c = 0; c < 3; c++) d[c] += w->A[c] * g;
    }
}
static void leads_at(const morph *m, int gmask, double t, double out[12]) {
    double d[3];
    dipole_at(m, gmask, t, d);
    leads12(d, out);
}

static int group_present(const morph *m, int g) {
    for (int i = 0; i < m->n; i++)
        if (m->w[i].g == g && fabs(m->w[i].A[0]) + fabs(m->w[i].A[1]) + fabs(m->w[i].A[2]) > 1e-9) return 1;
    return 0;
}

typedef struct { double on, pk, off; int present; } span;

/* onset, peak and offset (s from R) of a group: 10% of its peak dipole norm */
static span group_span(const morph *m, int g) {
    span s = {NAN, NAN, NAN, 0};
    if (!group_present(m, g)) return s;
    double lo = 1e9, hi = -1e9;
    for (int i = 0; i < m->n; i++)
        if (m->w[i].g == g) {
            lo = fmin(lo, m->w[i].t - 4 * m->w[i].sig);
            hi = fmax(hi, m->w[i].t + 4 * m->w[i].sig);
        }
    double step = 0.5e-3, norm[4096], best = 0, d[3];
    int np = (int)((hi - lo) / step) + 1;
    if (np > 4096) { step = (hi - lo) / 4095; np = 4096; }
    for (int k = 0; k < np; k++) {
        dipole_at(m, 1 << g, lo + k * step, d);
        norm[k] = sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        if (norm[k] > best) { best = norm[k]; s.pk = lo + k * step; }
    }
    for (int k = 0; k < np; k++) {
        if (norm[k] > (g == G_QRS ? FID_FRAC_QRS : FID_FRAC) * best) {
            if (isnan(s.on)) s.on = lo + k * step;
            s.off = lo + k * step;
        }
    }
    s.present = 1;
    return s;
}

/* frontal QRS axis (deg) from the net QRS areas in I and aVF:
   I = E cos α, aVF = (√3/2) E sin α on Einthoven's triangle */
static double qrs_axis(const morph *m) {
    double area[3] = {0, 0, 0}, l[12];
    for (int i = 0; i < m->n; i++)
        if (m->w[i].g == G_QRS)
            for (int c = 0; c < 3; c++) area[c] += m->w[i].A[c] * m->w[i].sig * sqrt(2 * PI);
    leads12(area, l);
    return atan2(2 * l[5] / sqrt(3.0), l[0]) * 180 / PI;
}

/* per lead min and max of the QRS group over its span */
static void qrs_extremes(const morph *m, double mn[12], double mx[12]) {
    span s = group_span(m, G_QRS);
    for (int i = 0; i < 12; i++) mn[i] = mx[i] = 0;
    if (!s.present) return;
    double l[12];
    for (double t = s.on - 0.02; t <= s.off + 0.02; t += 0.5e-3) {
        leads_at(m, 1 << G_QRS, t, l);
        for (int i = 0; i < 12; i++) { mn[i] = fmin(mn[i], l[i]); mx[i] = fmax(mx[i], l[i]); }
    }
}
static double limb_qrs_pp(const morph *m) {
    double mn[12], mx[12], best = 0;
    qrs_extremes(m, mn, mx);
    for (int i = 0; i < 6; i++) best = fmax(best, mx[i] - mn[i]);
    return best;
}
static double sokolow(const morph *m) {
    double mn[12], mx[12];
    qrs_extremes(m, mn, mx);
    return -mn[6] + fmax(mx[10], mx[11]);
}

static void scale_group(morph *m, int gmask, double s) {
    for (int i = 0; i < m->n; i++)
        if (gmask >> m->w[i].g & 1)
            for (int c = 0; c < 3; c++) m->w[i].A[c] *= s;
}
/* rotate the waves of `gmask` by `deg` in the frontal (X, Y) plane */
static void rotate_frontal(morph *m, int gmask, double deg) {
    double c = cos(deg * PI / 180), s = sin(deg * PI / 180);
    for (int i = 0; i < m->n; i++)
        if (gmask >> m->w[i].g & 1) {
            double x = m->w[i].A[0], y = m->w[i].A[1];
            m->w[i].A[0] = c * x - s * y;
            m->w[i].A[1] = s * x + c * y;
        }
}
/* actual minus requested axis (deg, wrapped) after rotating the QRS by rot */
static double axis_err(const morph *m, double want, double rot) {
    morph tmp = *m;
    rotate_frontal(&tmp, 1 << G_QRS, rot);
    double e = qrs_axis(&tmp) - want;
    return e - 360 * floor((e + 180) / 360);
}
static int find_wave(const morph *m, int g, int nth) {
    for (int i = 0; i < m->n; i++)
        if (m->w[i].g == g && nth-- == 0) return i;
    return -1;
}

/* ST plateau from the J point: three overlapping Gaussians; returns its
   value at J + 60 ms per unit of direction */
static const double ST_OFF[3] = {0.03, 0.09, 0.15}, ST_W[3] = {1, 1, 0.6}, ST_SIG = 0.035;
static double st_shape60(void) {
    double v = 0;
    for (int k = 0; k < 3; k++) v += ST_W[k] * exp(-0.5 * pow((0.06 - ST_OFF[k]) / ST_SIG, 2));
    return v;
}
static void add_st(morph *m, double J, const double d[3], double scale) {
    for (int k = 0; k < 3; k++)
        add_wave(m, G_ST, J + ST_OFF[k], ST_SIG, d[0] * scale * ST_W[k], d[1] * scale * ST_W[k], d[2] * scale * ST_W[k]);
}

/* territories: leads and the direction of the injury current */
static const int TERR_LEADS[3][5] = {{6, 7, 8, 9, -1}, {1, 2, 5, -1, -1}, {0, 4, 10, 11, -1}};
static const double TERR_DIR[3][3] = {{0.2, 0.0, -1.0}, {-0.2, 1.0, 0.0}, {1.0, -0.4, 1.6}};
static const double STD_DIR[3] = {-1.0, -0.7, 0.1};

/* draws made for every record in a fixed order, so conditions that need no
   randomness leave the rest of the record unchanged */
typedef struct {
    double amp_p, amp_r, amp_t, axis, pr, qrs_k, qtc, pvc_focus, pvc_jit[3];
} morph_draws;

typedef struct {
    morph normal, pvc;
    span p, qrs, t, pvc_qrs, pvc_t;
    double hr;   /* rate the morphology is built for (bpm) */
} beat_forms;

static void build_forms(const ewb_sim_config *cfg, double hr, const morph_draws *dr, beat_forms *bf) {
    double h = sqrt(hr / 60), sh = sqrt(h), wa = 2 * PI * hr / 60;
    const double tscale[5] = {sh, h, 1, h, sh};
    morph *m = &bf->normal;
    m->n = 0;
    for (int i = 0; i < 5; i++) {
        double t = THETA_DEG[i] * PI / 180 * tscale[i] / wa, sig = B_ECGSYN[i] * h / wa;
        if (i >= 1 && i <= 3) { /* QRS: ECGSYN's at 60 bpm (80-100 ms) at any rate */
            t = THETA_DEG[i] * PI / 180 / (2 * PI) * dr->qrs_k;
            sig = B_ECGSYN[i] / (2 * PI) * dr->qrs_k;
        }
        /* dipole peak: |a| b² / ω scaled so a unit R dipole peaks at 1 mV */
        double amp = fabs(A_ECGSYN[i]) * B_ECGSYN[i] * B_ECGSYN[i] / (A_ECGSYN[2] * B_ECGSYN[2] * B_ECGSYN[2]);
        if (i == 0) { sig = 0.050 / FID_SIGMAS; amp *= dr->amp_p; }
        if (i == 2) amp *= dr->amp_r;
        if (i == 4) amp *= dr->amp_t;
        const int grp[5] = {G_P, G_QRS, G_QRS, G_QRS, G_T};
        add_wave(m, grp[i], t, sig, amp * V_DIPOLE[i][0], amp * V_DIPOLE[i][1], amp * V_DIPOLE[i][2]);
    }
    int iQ = find_wave(m, G_QRS, 0), iR = find_wave(m, G_QRS, 1), iS = find_wave(m, G_QRS, 2), iT = find_wave(m, G_T, 0);
    span qn = group_span(m, G_QRS);
    double jt = dr->qtc * sqrt(60 / hr) - (qn.off - qn.on); /* J point to T end (s) */

    /* conduction: bundle branch blocks change the QRS and, secondarily, the T wave */
    if (cfg->bbb == EWB_SIM_RBBB) {
        /* late rightward-anterior activation of the RV: R' in V1, broad S in I, V6 */
        m->w[iS].sig *= 1.4;
        m->w[iS].t += 0.005;
        add_wave(m, G_QRS, m->w[iS].t + 0.025, 0.020, -0.5, 0.05, -0.42);
        for (int c = 0; c < 3; c++) m->w[iT].A[c] *= 0.6; /* T smaller, opposite the R' in V1 */
        m->w[iT].A[2] += 0.08;
    } else if (cfg->bbb == EWB_SIM_LBBB) {
        /* septum activated right to left (no septal q), slow leftward-posterior
           activation as two notched components: QS in V1, broad notched R in
           I, aVL, V5-V6; T discordant */
        double dl[3] = {0.80, 0.20, 0.56};
        for (int c = 0; c < 3; c++) m->w[iQ].A[c] = m->w[iS].A[c] = 0;
        m->w[iR].t = -0.015; m->w[iR].sig = 0.022;
        for (int c = 0; c < 3; c++) m->w[iR].A[c] = 1.2 * dl[c] * dr->amp_r;
        add_wave(m, G_QRS, 0.045, 0.025, 1.5 * dl[0], 1.5 * dl[1], 1.5 * dl[2]);
        double tm = sqrt(m->w[iT].A[0] * m->w[iT].A[0] + m->w[iT].A[1] * m->w[iT].A[1] + m->w[iT].A[2] * m->w[iT].A[2]);
        for (int c = 0; c < 3; c++) m->w[iT].A[c] = -0.9 * tm * dl[c];
    }
    if (cfg->lvh_mv > 0) m->w[iR].A[2] += 0.25 * m->w[iR].A[0]; /* LVH: more posterior R, deeper S in V1 */
    /* frontal axis: rotate the QRS (and the T by half as much) to the requested
       axis, or to the record's drawn normal axis */
    double want = cfg->set_axis ? cfg->axis_deg : dr->axis, rot = 0;
    /* the Dower limb rows are not orthogonal, so the axis is a nonlinear
       function of the rotation: bracket a sign change on a 2° grid, then bisect */
    double lo = 0, flo = axis_err(m, want, 0);
    for (double r = -180; r < 180; r += 2) {
        double a = axis_err(m, want, r), b = axis_err(m, want, r + 2);
        if (a <= 0 && b > 0 && b - a < 90) { lo = r; flo = a; break; }
    }
    double hi = lo + 2;
    for (int it = 0; it < 40; it++) {
        double mid = (lo + hi) / 2, f = axis_err(m, want, mid);
        if ((f <= 0) == (flo <= 0)) { lo = mid; flo = f; } else hi = mid;
    }
    rot = (lo + hi) / 2;
    rotate_frontal(m, 1 << G_QRS, rot);
    rotate_frontal(m, 1 << G_T, rot / 2);
    /* LVH: QRS voltage to the requested Sokolow-Lyon index, strain T opposite the QRS */
    if (cfg->lvh_mv > 0) {
        for (int it = 0; it < 4; it++) scale_group(m, 1 << G_QRS, cfg->lvh_mv / sokolow(m));
        double tm = sqrt(m->w[iT].A[0] * m->w[iT].A[0] + m->w[iT].A[1] * m->w[iT].A[1] + m->w[iT].A[2] * m->w[iT].A[2]);
        double rm = sqrt(m->w[iR].A[0] * m->w[iR].A[0] + m->w[iR].A[1] * m->w[iR].A[1] + m->w[iR].A[2] * m->w[iR].A[2]);
        for (int c = 0; c < 3; c++) m->w[iT].A[c] = -tm * m->w[iR].A[c] / rm;
    }
    /* no P wave in AF and flutter: atrial activity is added to the dipole instead */
    if (cfg->rhythm != EWB_SIM_SINUS) scale_group(m, 1 << G_P, 0);
    /* P placed at the PR interval */
    span q = group_span(m, G_QRS);
    double pr = cfg->pr_ms > 0 ? cfg->pr_ms / 1000 : dr->pr;
    int iP = find_wave(m, G_P, 0);
    m->w[iP].t = q.on - pr + FID_SIGMAS * m->w[iP].sig;
    /* T placed at the QT interval: QTc (Bazett) drawn, J point to T end kept
       when a bundle branch block widens the QRS */
    m->w[iT].sig = fmin(m->w[iT].sig, jt / 6); /* an ST segment before the T */
    m->w[iT].t = q.off + jt - FID_SIGMAS * m->w[iT].sig;
    /* long QT: a later, slightly broader T */
    if (cfg->qt_extra_ms > 0) {
        m->w[iT].t += cfg->qt_extra_ms / 1000;
        m->w[iT].sig *= 1 + 0.3 * fmin(cfg->qt_extra_ms / 200, 1);
    }
    if (cfg->t_inversion) scale_group(m, 1 << G_T, -0.8);
    /* PVC: wide bizarre QRS from an ectopic focus, no P, T opposite the QRS */
    static const double FOCI[4][3] = {{-0.6, 0.7, 0.4}, {0.7, -0.5, -0.6}, {-0.5, -0.6, -0.6}, {0.6, 0.7, -0.4}};
    const double *f = FOCI[(int)(dr->pvc_focus * 4) % 4];
    morph *v = &bf->pvc;
    v->n = 0;
    double d1[3], d2[3], mean[3];
    for (int c = 0; c < 3; c++) { d1[c] = 1.4 * f[c]; d2[c] = 0.8 * (f[c] + 0.6 * dr->pvc_jit[c]); mean[c] = d1[c] + d2[c]; }
    add_wave(v, G_P, -0.2, 0.02, 0, 0, 0);
    add_wave(v, G_QRS, -0.03, 0.025, d1[0], d1[1], d1[2]);
    add_wave(v, G_QRS, 0.045, 0.028, d2[0], d2[1], d2[2]);
    double mn = sqrt(mean[0] * mean[0] + mean[1] * mean[1] + mean[2] * mean[2]);
    span vq = group_span(v, G_QRS);
    add_wave(v, G_T, vq.off + jt - FID_SIGMAS * 0.07, 0.07, -0.5 * mean[0] / mn, -0.5 * mean[1] / mn, -0.5 * mean[2] / mn);
    /* low voltage: everything scaled so the limb QRS is small */
    if (cfg->low_voltage_mv > 0) {
        double s = cfg->low_voltage_mv / limb_qrs_pp(m);
        scale_group(m, 0xF, s);
        scale_group(v, 0xF, s);
    }
    /* ST changes last, so their size is the requested one */
    q = group_span(m, G_QRS);
    double s60 = st_shape60(), l[12];
    for (int k = 0; k < 3; k++)
        if (cfg->st_territory >> k & 1 && cfg->st_mv > 0) {
            leads12(TERR_DIR[k], l);
            double weakest = INFINITY;
            for (int j = 0; j < 5 && TERR_LEADS[k][j] >= 0; j++) weakest = fmin(weakest, l[TERR_LEADS[k][j]]);
            add_st(m, q.off, TERR_DIR[k], cfg->st_mv / (s60 * weakest));
        }
    if (cfg->std_mv > 0) {
        leads12(STD_DIR, l);
        add_st(m, q.off, STD_DIR, cfg->std_mv / (s60 * -l[10]));
    }
    bf->p = group_span(m, G_P);
    bf->qrs = group_span(m, G_QRS);
    bf->t = group_span(m, G_T);
    bf->pvc_qrs = group_span(v, G_QRS);
    bf->pvc_t = group_span(v, G_T);
    bf->hr = hr;
}

/* ---- the ODE ---- */

/* a morphology in phase: per wave θ_i, 1/b_i, the cut-off 6 b_i beyond which
   the wave is skipped (exp(-18) < 2e-8 of its peak), c_i = a_i v_i and the
   dipole peak A_i */
typedef struct { int n; double th[MAXW], ib[MAXW], cut[MAXW], c[MAXW][3], A[MAXW][3], lo, hi; } ode_morph;

static void to_phase(const morph *m, double wa, ode_morph *o) {
    o->n = 0;
    o->lo = 1e9;
    o->hi = -1e9;
    for (int i = 0; i < m->n; i++) {
        const wave *w = &m->w[i];
        if (fabs(w->A[0]) + fabs(w->A[1]) + fabs(w->A[2]) < 1e-12) continue;
        int k = o->n++;
        double b = wa * w->sig;
        o->th[k] = wa * w->t;
        o->ib[k] = 1 / b;
        o->cut[k] = 6 * b;
        for (int c = 0; c < 3; c++) {
            o->c[k][c] = w->A[c] * wa / (b * b);
            o->A[k][c] = w->A[c];
        }
        o->lo = fmin(o->lo, o->th[k] - 3.5 * b); /* first wave's start */
        o->hi = fmax(o->hi, o->th[k] + 3.5 * b); /* last wave's end */
    }
}

/* the integration's state besides (θ, z): the morphology, speeds and gap, and
   the last step's stage-4 phase and wave sum */
typedef struct { const ode_morph *m; double wa, wg, g0, g1; const ode_morph *last_m; double last_th, last_F[6]; } ode_ctx;

/* ω at phase th ∈ (-π, π]: ω_g inside the gap [g0, g1) (phase in [0, 2π)), else ω_a */
static double speed(const ode_ctx *x, double th) {
    double phi = th < 0 ? th + 2 * PI : th;
    return phi >= x->g0 && phi < x->g1 ? x->wg : x->wa;
}
static double wrap(double th) { return th > PI ? th - 2 * PI : th; }

/* the wave sums at phase th: F = Σ_i c_i Δθ_i exp(−Δθ_i² / 2b_i²) and the
   waveform Z = Σ_i A_i exp(−Δθ_i² / 2b_i²), whose derivative along θ is −F / ω_a */
static void wave_sum(const ode_morph *m, double th, double F[6]) {
    for (int c = 0; c < 6; c++) F[c] = 0;
    for (int i = 0; i < m->n; i++) {
        double d = th - m->th[i];
        if (d > PI) d -= 2 * PI;
        else if (d < -PI) d += 2 * PI;
        if (fabs(d) >= m->cut[i]) continue;
        double u = d * m->ib[i], g = exp(-0.5 * u * u), dg = d * g;
        for (int c = 0; c < 3; c++) {
            F[c] += m->c[i][c] * dg;
            F[3 + c] += m->A[i][c] * g;
        }
    }
}

/* one RK4 step of (θ, z) over dt; returns the new θ, wrapped to (-π, π].
   The z-equation is dz/dt = −(ω/ω_a) F(θ) − λ (z − Z(θ)): θ's stages need no z, so
   the wave sums F of the four stages are computed first. Where two stage
   phases are the same number (stages 2 and 3 at constant ω; this step's
   start and the last step's stage 4 often), the sum is computed once. */
static double rk4(ode_ctx *x, double th, double *z, double dt) {
    double ths[4], w[4], F[4][6];
    ths[0] = th;
    w[0] = speed(x, th);
    ths[1] = wrap(th + 0.5 * dt * w[0]);
    w[1] = speed(x, ths[1]);
    ths[2] = wrap(th + 0.5 * dt * w[1]);
    w[2] = speed(x, ths[2]);
    ths[3] = wrap(th + dt * w[2]);
    w[3] = speed(x, ths[3]);
    if (x->last_m == x->m && x->last_th == th) memcpy(F[0], x->last_F, sizeof F[0]);
    else wave_sum(x->m, th, F[0]);
    wave_sum(x->m, ths[1], F[1]);
    if (ths[2] == ths[1]) memcpy(F[2], F[1], sizeof F[2]);
    else wave_sum(x->m, ths[2], F[2]);
    wave_sum(x->m, ths[3], F[3]);
    x->last_m = x->m;
    x->last_th = ths[3];
    memcpy(x->last_F, F[3], sizeof F[3]);
    double k1[3], k2[3], k3[3], k4[3];
    for (int c = 0; c < 3; c++) {
        double r0 = w[0] / x->wa, r1 = w[1] / x->wa, r2 = w[2] / x->wa, r3 = w[3] / x->wa;
        k1[c] = -r0 * F[0][c] - BASELINE_PULL * (z[c] - F[0][3 + c]);
        k2[c] = -r1 * F[1][c] - BASELINE_PULL * (z[c] + 0.5 * dt * k1[c] - F[1][3 + c]);
        k3[c] = -r2 * F[2][c] - BASELINE_PULL * (z[c] + 0.5 * dt * k2[c] - F[2][3 + c]);
        k4[c] = -r3 * F[3][c] - BASELINE_PULL * (z[c] + dt * k3[c] - F[3][3 + c]);
        z[c] += dt / 6 * (k1[c] + 2 * k2[c] + 2 * k3[c] + k4[c]);
    }
    return wrap(th + dt / 6 * (w[0] + 2 * w[1] + 2 * w[2] + w[3]));
}

/* ---- configuration checks ---- */

static int check_config(const ewb_sim_config *c, const char *op) {
    if (!(c->fs >= 50 && c->fs <= 10000)) return ewb_error("%s: fs must be in [50, 10000] Hz, got %g", op, c->fs);
    if (!(c->seconds > 0 && c->seconds <= 3600)) return ewb_error("%s: seconds must be in (0, 3600], got %g", op, c->seconds);
    if (!(c->hr_mean >= 20 && c->hr_mean <= 250)) return ewb_error("%s: hr_mean must be in [20, 250] bpm, got %g", op, c->hr_mean);
    if (!(c->hr_std >= 0 && c->hr_std < c->hr_mean / 3)) return ewb_error("%s: hr_std must be in [0, hr_mean/3), got %g", op, c->hr_std);
    if (!(c->lf_hf > 0)) return ewb_error("%s: lf_hf must be > 0, got %g", op, c->lf_hf);
    if (c->rhythm < 0 || c->rhythm > 2) return ewb_error("%s: rhythm must be 0 (sinus), 1 (AFIB) or 2 (AFLT), got %d", op, c->rhythm);
    if (c->flutter_block != 0 && (c->flutter_block < 2 || c->flutter_block > 4))
        return ewb_error("%s: flutter_block must be 2, 3, 4 or 0 (variable), got %d", op, c->flutter_block);
    if (!(c->af_rr_cv >= 0 && c->af_rr_cv <= 0.4)) return ewb_error("%s: af_rr_cv must be in [0, 0.4], got %g", op, c->af_rr_cv);
    if (c->pr_ms != 0 && !(c->pr_ms >= 100 && c->pr_ms <= 400)) return ewb_error("%s: pr_ms must be 0 or in [100, 400] ms, got %g", op, c->pr_ms);
    if (c->pr_ms != 0 && c->rhythm != EWB_SIM_SINUS) return ewb_error("%s: pr_ms needs sinus rhythm (AF and flutter have no P wave)", op);
    if (c->bbb < 0 || c->bbb > 2) return ewb_error("%s: bbb must be 0 (none), 1 (LBBB) or 2 (RBBB), got %d", op, c->bbb);
    if (!(c->pvc_prob >= 0 && c->pvc_prob <= 0.5)) return ewb_error("%s: pvc_prob must be in [0, 0.5], got %g", op, c->pvc_prob);
    if (c->st_territory < 0 || c->st_territory > 7) return ewb_error("%s: st_territory must be a mask of 1 (anterior), 2 (inferior), 4 (lateral), got %d", op, c->st_territory);
    if (!(c->st_mv >= 0 && c->st_mv <= 1)) return ewb_error("%s: st_mv must be in [0, 1] mV, got %g", op, c->st_mv);
    if ((c->st_territory != 0) != (c->st_mv > 0)) return ewb_error("%s: st_territory and st_mv go together (got %d, %g)", op, c->st_territory, c->st_mv);
    if (!(c->std_mv >= 0 && c->std_mv <= 1)) return ewb_error("%s: std_mv must be in [0, 1] mV, got %g", op, c->std_mv);
    if (c->lvh_mv != 0 && !(c->lvh_mv >= 3.5 && c->lvh_mv <= 8)) return ewb_error("%s: lvh_mv must be 0 or in [3.5, 8] mV, got %g", op, c->lvh_mv);
    if (!(c->qt_extra_ms >= 0 && c->qt_extra_ms <= 300)) return ewb_error("%s: qt_extra_ms must be in [0, 300] ms, got %g", op, c->qt_extra_ms);
    if (c->set_axis && !(c->axis_deg >= -180 && c->axis_deg <= 180)) return ewb_error("%s: axis_deg must be in [-180, 180], got %g", op, c->axis_deg);
    if (c->low_voltage_mv != 0 && !(c->low_voltage_mv > 0 && c->low_voltage_mv < 0.5))
        return ewb_error("%s: low_voltage_mv must be 0 or in (0, 0.5) mV, got %g", op, c->low_voltage_mv);
    if (c->low_voltage_mv > 0 && c->lvh_mv > 0) return ewb_error("%s: low_voltage_mv and lvh_mv exclude each other", op);
    /* with the QRS turned far from V1 and V5-V6, scaling it to the Sokolow-Lyon index
       makes the limb leads 8-40 mV (at -78 and +135 deg; 6 mV at -60 and +80) */
    if (c->lvh_mv > 0 && c->set_axis && !(c->axis_deg >= -60 && c->axis_deg <= 75))
        return ewb_error("%s: lvh_mv needs a frontal axis in [-60, 75] deg, got %g", op, c->axis_deg);
    if (c->noise < 0 || c->noise > 15) return ewb_error("%s: noise must be a mask of EWB_SIM_NOISE_* (0-15), got %d", op, c->noise);
    const double snr[4] = {c->snr_bw, c->snr_pl, c->snr_emg, c->snr_em};
    const char *nm[4] = {"snr_bw", "snr_pl", "snr_emg", "snr_em"};
    for (int k = 0; k < 4; k++)
        if (c->noise >> k & 1 && !(snr[k] >= -20 && snr[k] <= 80)) return ewb_error("%s: %s must be in [-20, 80] dB, got %g", op, nm[k], snr[k]);
    if (c->pl_hz != 0 && c->pl_hz != 50 && c->pl_hz != 60) return ewb_error("%s: pl_hz must be 50 or 60, got %g", op, c->pl_hz);
    if (!(c->age >= 0 && c->age <= 120)) return ewb_error("%s: age must be in [0, 120] (0 = drawn), got %g", op, c->age);
    if (c->sex < 0 || c->sex > 2) return ewb_error("%s: sex must be 0 (drawn), 1 (male) or 2 (female), got %d", op, c->sex);
    return 0;
}

/* ---- atrial activity and noise, added after the ODE ---- */

/* sawtooth of unit peak-to-peak: slow fall, fast rise (Lanczos-smoothed) */
static double saw(double u) {
    double v = 0;
    for (int m = 1; m <= 6; m++) {
        double x = PI * m / 7;
        v += sin(x) / x * sin(2 * PI * m * u) / m;
    }
    return v / 2.6;
}

static void unit(const double *a, double *out) {
    double n = sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]);
    for (int c = 0; c < 3; c++) out[c] = a[c] / n;
}

/* Bulk noise samples come from xoshiro256** (Blackman and Vigna 2018), a
   fast generator seeded from the record's Philox stream: Philox per sample
   would cost more than the rest of the record. */
typedef struct { uint64_t s[4]; } bulk_rng;
static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static bulk_rng bulk_seed(sim_rng *r) {
    bulk_rng b;
    for (int i = 0; i < 4; i++) b.s[i] = (uint64_t)rng_u32(r) << 32 | rng_u32(r);
    if (!(b.s[0] | b.s[1] | b.s[2] | b.s[3])) b.s[0] = 1; /* the one state it must not have */
    return b;
}
static uint64_t bulk_next(bulk_rng *b) {
    uint64_t *s = b->s, out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return out;
}

/* Standard normals by the ziggurat method (Marsaglia and Tsang 2000, 128
   layers): a draw lands inside its layer's rectangle ~99% of the time and
   costs a table look-up and a multiply; the rest is the exact rejection step
   (and the tail beyond R by Marsaglia's tail method). The layer index and the
   value come from disjoint bits of one 64-bit draw. */
enum { ZIG_N = 128 };
static const double ZIG_R = 3.442619855899, ZIG_V = 9.91256303526217e-3; /* last layer's x, each layer's area */
static double zig_k[ZIG_N], zig_w[ZIG_N], zig_f[ZIG_N];
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;
static void zig_init(void) {
    const double m = 2147483648.0; /* 2^31: values are signed 32-bit */
    double d = ZIG_R, t = ZIG_R, q = ZIG_V / exp(-0.5 * d * d);
    zig_k[0] = d / q * m;
    zig_k[1] = 0;
    zig_w[0] = q / m;
    zig_w[ZIG_N - 1] = d / m;
    zig_f[0] = 1;
    zig_f[ZIG_N - 1] = exp(-0.5 * d * d);
    for (int i = ZIG_N - 2; i >= 1; i--) {
        d = sqrt(-2 * log(ZIG_V / d + exp(-0.5 * d * d)));
        zig_k[i + 1] = d / t * m;
        t = d;
        zig_f[i] = exp(-0.5 * d * d);
        zig_w[i] = d / m;
    }
}
static double bulk_u(bulk_rng *b) { return ((double)(bulk_next(b) >> 11) + 0.5) * (1.0 / 9007199254740992.0); } /* (0, 1) */
static double zig_normal(bulk_rng *b) {
    for (;;) {
        uint64_t bits = bulk_next(b);
        int i = (int)(bits & (ZIG_N - 1));
        int32_t h = (int32_t)(uint32_t)(bits >> 32);
        double x = h * zig_w[i];
        if (fabs((double)h) < zig_k[i]) return x; /* inside the rectangle */
        if (i == 0) { /* the tail beyond R */
            double xt, y;
            do {
                xt = -log(bulk_u(b)) / ZIG_R;
                y = -log(bulk_u(b));
            } while (y + y < xt * xt);
            return h > 0 ? ZIG_R + xt : -ZIG_R - xt;
        }
        if (zig_f[i] + bulk_u(b) * (zig_f[i - 1] - zig_f[i]) < exp(-0.5 * x * x)) return x; /* under the curve */
    }
}
/* n standard normals from the ziggurat, seeded by seed (tests check their moments and tails) */
void ewb_sim_normals(double *x, int64_t n, uint64_t seed) {
    pthread_once(&zig_once, zig_init);
    sim_rng r = rng_stream(seed, 0, 15);
    bulk_rng b = bulk_seed(&r);
    for (int64_t i = 0; i < n; i++) x[i] = zig_normal(&b);
}

/* 2nd-order Butterworth section (bilinear), high-pass if hp */
typedef struct { double b0, b1, b2, a1, a2; } biquad;
static biquad butter2(double fc, double fs, int hp) {
    double k = tan(PI * fc / fs), q = sqrt(2.0), norm = 1 / (1 + q * k + k * k);
    biquad f;
    if (hp) { f.b0 = norm; f.b1 = -2 * norm; f.b2 = norm; }
    else { f.b0 = k * k * norm; f.b1 = 2 * f.b0; f.b2 = f.b0; }
    f.a1 = 2 * (k * k - 1) * norm;
    f.a2 = (1 - q * k + k * k) * norm;
    return f;
}

/* S[i] = sin(w i), C[i] = cos(w i) for i < n: exact every 64 samples, by the
   angle-addition formulas in between (within a few ulp; the loop vectorises) */
static void sincos_table(double w, int64_t n, double *S, double *C) {
    double cw[64], sw[64];
    for (int j = 0; j < 64; j++) { cw[j] = cos(w * j); sw[j] = sin(w * j); }
    for (int64_t i0 = 0; i0 < n; i0 += 64) {
        double c0 = cos(w * i0), s0 = sin(w * i0);
        int64_t m = n - i0 < 64 ? n - i0 : 64;
        double *Si = S + i0, *Ci = C + i0;
        for (int64_t j = 0; j < m; j++) {
            Si[j] = s0 * cw[j] + c0 * sw[j];
            Ci[j] = c0 * cw[j] - s0 * sw[j];
        }
    }
}
/* x[i] = Σ_j a_j sin(w_j i + p_j) over m ≤ 3 sines, given the tables
   tab = (S_0, C_0, S_1, C_1, ...) of sin(w_j i) and cos(w_j i), each n long */
static void sines(double *x, int64_t n, const double *tab, int m, const double *a, const double *p) {
    double ac[3] = {0, 0, 0}, as[3] = {0, 0, 0};
    for (int j = 0; j < m; j++) { ac[j] = a[j] * cos(p[j]); as[j] = a[j] * sin(p[j]); }
    const double *S0 = tab, *C0 = tab + n, *S1 = m > 1 ? tab + 2 * n : S0, *C1 = m > 1 ? tab + 3 * n : C0;
    const double *S2 = m > 2 ? tab + 4 * n : S0, *C2 = m > 2 ? tab + 5 * n : C0;
    for (int64_t i = 0; i < n; i++) x[i] = ac[0] * S0[i] + as[0] * C0[i] + ac[1] * S1[i] + as[1] * C1[i] + ac[2] * S2[i] + as[2] * C2[i];
}

/* one noise source on the 9 electrodes RA LA LL V1..V6: e (9, n); scratch
   holds 9n doubles */
static void electrode_noise(int kind, double *e, int64_t n, double fs, double pl_hz, sim_rng *r, double *scratch) {
    double dt = 1 / fs;
    if (kind == 0) { /* baseline wander: respiration and slow drift, differing per electrode */
        double f[3];
        f[0] = rng_uni(r, 0.15, 0.4);
        f[1] = rng_uni(r, 0.03, 0.1);
        f[2] = rng_uni(r, 0.05, 0.5);
        for (int j = 0; j < 3; j++) sincos_table(2 * PI * f[j] / fs, n, scratch + 2 * j * n, scratch + (2 * j + 1) * n);
        for (int el = 0; el < 9; el++) {
            double a[3], p[3];
            a[0] = rng_uni(r, 0.2, 1); a[1] = rng_uni(r, 0.2, 1); a[2] = rng_uni(r, 0, 0.5);
            for (int j = 0; j < 3; j++) p[j] = rng_uni(r, 0, 2 * PI);
            sines(e + el * n, n, scratch, 3, a, p);
        }
    } else if (kind == 1) { /* powerline: mains and a small third harmonic, amplitude and phase per electrode */
        int third = 3 * pl_hz < fs / 2;
        sincos_table(2 * PI * pl_hz / fs, n, scratch, scratch + n);
        if (third) sincos_table(2 * PI * 3 * pl_hz / fs, n, scratch + 2 * n, scratch + 3 * n);
        for (int el = 0; el < 9; el++) {
            double a[2], p[2];
            a[0] = rng_uni(r, 0.3, 1);
            a[1] = 0.1 * a[0];
            p[0] = rng_uni(r, -0.3, 0.3);
            p[1] = rng_uni(r, 0, 2 * PI);
            sines(e + el * n, n, scratch, third ? 2 : 1, a, p);
        }
    } else if (kind == 2) {
        /* muscle: Gaussian white noise band-passed to 20-150 Hz, in bursts,
           larger on the limbs. The 9 electrodes are filtered side by side,
           (n, 9) in scratch, so that their recursions overlap. */
        double lp = fmin(150, 0.4 * fs), fm = rng_uni(r, 0.1, 0.5), pm[9];
        for (int el = 0; el < 9; el++) pm[el] = rng_uni(r, 0, 2 * PI);
        pthread_once(&zig_once, zig_init);
        bulk_rng b = bulk_seed(r);
        for (int64_t i = 0; i < 9 * n; i++) scratch[i] = zig_normal(&b);
        if (lp > 25) {
            biquad h = butter2(20, fs, 1), l = butter2(lp, fs, 0);
            double h1[9] = {0}, h2[9] = {0}, l1[9] = {0}, l2[9] = {0};
            for (int64_t i = 0; i < n; i++) {
                double *x = scratch + 9 * i;
                for (int el = 0; el < 9; el++) { /* transposed direct form II, high-pass then low-pass */
                    double u = x[el], y = h.b0 * u + h1[el];
                    h1[el] = h.b1 * u - h.a1 * y + h2[el];
                    h2[el] = h.b2 * u - h.a2 * y;
                    double v = l.b0 * y + l1[el];
                    l1[el] = l.b1 * y - l.a1 * v + l2[el];
                    l2[el] = l.b2 * y - l.a2 * v;
                    x[el] = v;
                }
            }
        }
        for (int el = 0; el < 9; el++) {
            double *x = e + el * n, g = el < 3 ? 1.5 : 1;
            for (int64_t i0 = 0; i0 < n; i0 += 512) { /* burst envelope (slow): exact every 512 samples, linear between */
                double a0 = 0.6 + 0.4 * sin(2 * PI * fm * i0 * dt + pm[el]), a1 = 0.6 + 0.4 * sin(2 * PI * fm * (i0 + 512) * dt + pm[el]);
                for (int64_t i = i0; i < n && i < i0 + 512; i++) x[i] = g * (a0 + (a1 - a0) * (double)(i - i0) * (1.0 / 512)) * scratch[9 * i + el];
            }
        }
    } else { /* electrode motion: steps that decay, with a damped oscillation, on random electrodes */
        memset(e, 0, sizeof *e * 9 * (size_t)n);
        double seconds = n * dt;
        int events = 1 + (int)(rng_u(r) * (1 + 0.3 * seconds));
        for (int k = 0; k < events; k++) {
            int el = (int)(rng_u(r) * 9) % 9;
            double t0 = rng_uni(r, 0, seconds), a = rng_uni(r, 0.5, 1) * (rng_u(r) < 0.5 ? -1 : 1);
            double tau = rng_uni(r, 0.2, 1), fo = rng_uni(r, 1, 3), ao = rng_uni(r, 0, 0.5);
            /* a (1 - exp(-t/0.02)) exp(-t/tau) (1 + ao sin(2π fo t)) for t <= 8 tau: the
               exponentials and the sine by their per-sample ratios, exact every 256 samples */
            double qr = exp(-dt / 0.02), qd = exp(-dt / tau), cw = cos(2 * PI * fo * dt), sw = sin(2 * PI * fo * dt);
            double rise = 0, decay = 0, c = 0, s = 0;
            for (int64_t i = (int64_t)(t0 * fs), j = 0; i < n; i++, j++) {
                double t = i * dt - t0;
                if (t > 8 * tau) break;
                if (j % 256 == 0) { rise = exp(-t / 0.02); decay = exp(-t / tau); c = cos(2 * PI * fo * t); s = sin(2 * PI * fo * t); }
                e[el * n + i] += a * (1 - rise) * decay * (1 + ao * s);
                double c2 = c * cw - s * sw;
                s = s * cw + c * sw;
                c = c2;
                rise *= qr;
                decay *= qd;
            }
        }
    }
}

/* ---- one record ---- */

typedef struct { double t; int type; } beat;

static int simulate(const ewb_sim_config *cfg, float *ecg_out, float *clean_out, int64_t n, beat **beats_out,
                    int *nbeats_out, beat_forms *bf, ewb_sim_truth *truth) {
    double fs = cfg->fs, dt = 1 / fs;
    sim_rng rng = rng_stream(cfg->seed, cfg->index, 0);
    sim_rng rmorph = rng_stream(cfg->seed, cfg->index, 1);
    sim_rng rdemo = rng_stream(cfg->seed, cfg->index, 3);
    sim_rng ratr = rng_stream(cfg->seed, cfg->index, 4);

    /* morphology draws, always the same ones */
    morph_draws dr;
    dr.amp_p = rng_uni(&rmorph, 0.8, 1.2);
    dr.amp_r = rng_uni(&rmorph, 0.85, 1.15);
    dr.amp_t = rng_uni(&rmorph, 0.8, 1.2);
    dr.axis = rng_uni(&rmorph, 30, 75);
    dr.pr = rng_uni(&rmorph, 0.130, 0.190);
    dr.qrs_k = rng_uni(&rmorph, 0.85, 1.0);
    dr.qtc = rng_uni(&rmorph, 0.38, 0.44);
    dr.pvc_focus = rng_u(&rmorph);
    for (int c = 0; c < 3; c++) dr.pvc_jit[c] = rng_uni(&rmorph, -1, 1);

    /* rhythm */
    int block = cfg->flutter_block;
    double tf = 60.0 / (300 * rng_uni(&ratr, 0.9, 1.1)); /* flutter cycle (s) */
    double hr = cfg->hr_mean;
    if (cfg->rhythm == EWB_SIM_AFLT) hr = 60 / ((block ? block : 3) * tf);
    build_forms(cfg, hr, &dr, bf);
    double wa = 2 * PI * hr / 60;
    ode_morph om[2];
    to_phase(&bf->normal, wa, &om[0]);
    to_phase(&bf->pvc, wa, &om[1]);

    int nrr = 16;
    while (nrr < cfg->seconds + 4) nrr *= 2;
    double *rr = malloc(sizeof *rr * (size_t)nrr);
    rr_process(rr, nrr, hr, cfg->hr_std, cfg->lf_hf, &rng);
    double cv = cfg->af_rr_cv > 0 ? cfg->af_rr_cv : 0.2;

    double *dip = calloc((size_t)(3 * n), sizeof *dip); /* (3, n) dipole, mV */
    double th0 = -PI * (0.2 + 0.6 * rng_u(&rng));
    double z[3], z0[6];
    wave_sum(&om[0], th0, z0); /* start on the waveform: the baseline is 0 from the first sample */
    for (int c = 0; c < 3; c++) z[c] = z0[3 + c];
    int cur = 0, next = 0, cap = 16, nb = 0;
    beat *beats = malloc(sizeof *beats * (size_t)cap);
    ode_ctx ctx = {&om[0], wa, wa, 0, 0, NULL, 0, {0}};
    double gmid = -1, prev_th = th0, pending = 0, t_first = NAN;
    int64_t runin = (int64_t)(0.3 * fs);
    for (int64_t k = -runin; k < n; k++) {
        double phi_prev = prev_th < 0 ? prev_th + 2 * PI : prev_th;
        double th = rk4(&ctx, prev_th, z, dt), phi = th < 0 ? th + 2 * PI : th;
        if (prev_th < 0 && th >= 0 && prev_th > -1) { /* θ = 0 crossed: an R wave */
            double tr = (k - 1 + -prev_th / (th - prev_th)) * dt;
            if (isnan(t_first)) t_first = tr;
            if (tr >= 0 && tr < n * dt) {
                if (nb == cap) beats = realloc(beats, sizeof *beats * (size_t)(cap *= 2));
                beats[nb].t = tr;
                beats[nb++].type = cur;
            }
            /* plan the interval to the next R: its beat type and RR */
            int sec = (int)fmax(0, tr);
            double nominal;
            if (cfg->rhythm == EWB_SIM_SINUS) nominal = rr[sec < nrr ? sec : nrr - 1];
            else if (cfg->rhythm == EWB_SIM_AFIB) nominal = 60 / hr * exp(cv * rng_normal(&rng) - cv * cv / 2);
            else {
                int kb = block;
                if (!kb) { double u = rng_u(&rng); kb = u < 0.5 ? 2 : u < 0.75 ? 3 : 4; }
                nominal = kb * tf;
            }
            double want;
            next = cur == 0 && cfg->pvc_prob > 0 && rng_u(&rng) < cfg->pvc_prob;
            if (next) {
                want = nominal * rng_uni(&rng, 0.55, 0.7); /* coupling interval */
                pending = cfg->rhythm == EWB_SIM_AFIB ? 0 : 2 * nominal - want; /* full compensatory pause */
            } else if (cur == 1 && pending > 0) {
                want = pending;
                pending = 0;
            } else want = nominal;
            /* the gap: from the end of this beat's last wave to the start of the next beat's first */
            double g0 = om[cur].hi, g1 = 2 * PI + om[next].lo;
            if (g1 - g0 < 0.2) { double mid = (g0 + g1) / 2; g0 = mid - 0.1; g1 = mid + 0.1; }
            double active = (2 * PI - (g1 - g0)) / wa, gap_t = want - active;
            gap_t = fmax(gap_t, 0.15 * (g1 - g0) / wa);
            if (next && pending > 0) pending = 2 * nominal - (active + gap_t); /* the coupling actually reached */
            ctx.g0 = g0;
            ctx.g1 = g1;
            ctx.wg = (g1 - g0) / gap_t;
            gmid = (g0 + g1) / 2;
        } else if (gmid > 0 && phi_prev < gmid && phi >= gmid && phi - phi_prev < 1) { /* mid-gap: next beat's form */
            cur = next;
            ctx.m = &om[cur];
            gmid = -1;
        }
        prev_th = th;
        if (k < 0) continue;
        for (int c = 0; c < 3; c++) dip[c * n + k] = z[c];
    }
    free(rr);

    /* atrial activity on the dipole */
    double atrial_rate = NAN;
    if (cfg->rhythm == EWB_SIM_AFLT) {
        const double vf[3] = {-0.1, 1.0, 0.2};
        double d[3], l[12], amp = rng_uni(&ratr, 0.15, 0.3), ph = rng_u(&ratr);
        unit(vf, d);
        leads12(d, l);
        double ref = isnan(t_first) ? 0 : t_first;
        for (int64_t k = 0; k < n; k++) {
            double u = (k * dt - ref) / tf + ph, v = amp / l[1] * saw(u - floor(u));
            for (int c = 0; c < 3; c++) dip[c * n + k] += v * d[c];
        }
        atrial_rate = 60 / tf;
    } else if (cfg->rhythm == EWB_SIM_AFIB) {
        /* f waves: three components at 4-9 Hz with slow frequency modulation, most visible in V1 */
        const double vf[3] = {0.1, 0.35, -0.9};
        double d[3], l[12], f[3], a[3], p[3], pm[3], fmod[3], total = 0;
        unit(vf, d);
        leads12(d, l);
        for (int m = 0; m < 3; m++) {
            f[m] = rng_uni(&ratr, 4.8, 8.2);
            a[m] = rng_uni(&ratr, 0.3, 1);
            p[m] = rng_uni(&ratr, 0, 2 * PI);
            pm[m] = rng_uni(&ratr, 0, 2 * PI);
            fmod[m] = rng_uni(&ratr, 0.05, 0.2);
            total += a[m] * a[m] / 2;
        }
        double rms = rng_uni(&ratr, 0.03, 0.06), g = rms / sqrt(total) / l[6];
        for (int64_t k = 0; k < n; k++) {
            double t = k * dt, v = 0;
            for (int m = 0; m < 3; m++) /* instantaneous frequency f ± 0.7 Hz */
                v += a[m] * sin(2 * PI * f[m] * t + 0.7 / fmod[m] * sin(2 * PI * fmod[m] * t + pm[m]) + p[m]);
            for (int c = 0; c < 3; c++) dip[c * n + k] += g * v * d[c];
        }
        int big = a[0] >= a[1] && a[0] >= a[2] ? 0 : a[1] >= a[2] ? 1 : 2;
        atrial_rate = 60 * f[big];
    }

    /* the clean 12 leads */
    double *lead = malloc(sizeof *lead * 12 * (size_t)n); /* (12, n) */
    project12(dip, n, lead);
    free(dip);
    if (clean_out)
        for (int64_t i = 0; i < 12 * n; i++) clean_out[i] = (float)lead[i];

    /* noise per electrode, scaled per source to its SNR over the 12 leads */
    if (cfg->noise && ecg_out) {
        double psig = 0;
        for (int i = 0; i < 12; i++) {
            const double *x = lead + i * n;
            double m = 0, v = 0;
            for (int64_t k = 0; k < n; k++) m += x[k];
            m /= n;
            for (int64_t k = 0; k < n; k++) v += (x[k] - m) * (x[k] - m);
            psig += v / n / 12;
        }
        /* e: one source's electrodes (9, n); esum: the sources' electrodes, each
           scaled to its SNR (9, n). The leads are linear in the electrodes, so
           they are formed once, from esum. */
        double *e = malloc(sizeof *e * 9 * (size_t)n), *scratch = malloc(sizeof *scratch * 9 * (size_t)n);
        double *esum = calloc(9 * (size_t)n, sizeof *esum);
        const double snr[4] = {cfg->snr_bw, cfg->snr_pl, cfg->snr_emg, cfg->snr_em};
        for (int kind = 0; kind < 4; kind++) {
            /* every source draws from its own sub-stream: one source's settings leave the others alone */
            sim_rng r = rng_stream(cfg->seed, cfg->index, 5 + (uint64_t)kind);
            if (!(cfg->noise >> kind & 1)) continue;
            electrode_noise(kind, e, n, fs, cfg->pl_hz > 0 ? cfg->pl_hz : 50, &r, scratch);
            /* its power over the 12 leads: the six limb leads' squares sum to
               3.5 (I² + II² − I·II); V_i = electrode − Wilson's central terminal */
            double pn = 0;
            for (int64_t k = 0; k < n; k++) {
                double ra = e[k], la = e[n + k], ll = e[2 * n + k], wct = (ra + la + ll) / 3;
                double I = la - ra, II = ll - ra, p = 3.5 * (I * I + II * II - I * II);
                for (int v = 0; v < 6; v++) p += (e[(3 + v) * n + k] - wct) * (e[(3 + v) * n + k] - wct);
                pn += p;
            }
            pn /= 12.0 * n;
            double g = pn > 0 ? sqrt(psig / pn * pow(10, -snr[kind] / 10)) : 0;
            for (int64_t k = 0; k < 9 * n; k++) esum[k] += g * e[k];
        }
        const double *ra = esum, *la = esum + n, *ll = esum + 2 * n;
        for (int64_t k = 0; k < n; k++) {
            double I = la[k] - ra[k], II = ll[k] - ra[k], wct = (ra[k] + la[k] + ll[k]) / 3;
            lead[k] += I;
            lead[n + k] += II;
            lead[2 * n + k] += II - I;
            lead[3 * n + k] += -(I + II) / 2;
            lead[4 * n + k] += I - II / 2;
            lead[5 * n + k] += II - I / 2;
            for (int v = 0; v < 6; v++) lead[(6 + v) * n + k] += esum[(3 + v) * n + k] - wct;
        }
        free(e);
        free(scratch);
        free(esum);
    }
    if (ecg_out)
        for (int64_t i = 0; i < 12 * n; i++) ecg_out[i] = (float)lead[i];
    free(lead);

    /* ground truth */
    if (truth) {
        ewb_sim_truth *T = truth;
        memset(T, 0, sizeof *T);
        T->hr = nb >= 2 ? 60 * (nb - 1) / (beats[nb - 1].t - beats[0].t) : hr;
        T->pr_ms = bf->p.present ? 1000 * (bf->qrs.on - bf->p.on) : NAN;
        T->qrs_ms = 1000 * (bf->qrs.off - bf->qrs.on);
        T->qt_ms = 1000 * (bf->t.off - bf->qrs.on);
        T->qtc_ms = T->qt_ms / sqrt(60 / T->hr);
        T->axis_deg = qrs_axis(&bf->normal);
        T->atrial_rate = cfg->rhythm == EWB_SIM_SINUS ? T->hr : atrial_rate;
        T->qrs_limb_mv = limb_qrs_pp(&bf->normal);
        T->sokolow_mv = sokolow(&bf->normal);
        double lj[12], lp[12];
        leads_at(&bf->normal, 0xF, bf->qrs.off + 0.06, lj);
        leads_at(&bf->normal, 0xF, bf->qrs.on - 0.02, lp);
        for (int i = 0; i < 12; i++) T->st_mv[i] = lj[i] - lp[i];
        double age = rng_uni(&rdemo, 18, 90);
        int sex = rng_u(&rdemo) < 0.5 ? 1 : 2;
        T->age = cfg->age > 0 ? cfg->age : floor(age);
        T->sex = cfg->sex ? cfg->sex : sex;
        T->n_beats = nb;
        for (int i = 0; i < nb; i++) T->n_pvc += beats[i].type;
        T->flutter_block = cfg->rhythm == EWB_SIM_AFLT ? block : 0;
        uint32_t L = 0;
        if (cfg->rhythm == EWB_SIM_SINUS) {
            L |= 1u << EWB_SIM_L_SR;
            if (T->hr < 60) L |= 1u << EWB_SIM_L_SBRAD;
            if (T->hr > 100) L |= 1u << EWB_SIM_L_STACH;
            if (T->pr_ms > 200) L |= 1u << EWB_SIM_L_1AVB;
        }
        if (cfg->rhythm == EWB_SIM_AFIB) L |= 1u << EWB_SIM_L_AFIB;
        if (cfg->rhythm == EWB_SIM_AFLT) L |= 1u << EWB_SIM_L_AFLT;
        if (cfg->bbb == EWB_SIM_LBBB) L |= 1u << EWB_SIM_L_CLBBB;
        if (cfg->bbb == EWB_SIM_RBBB) L |= 1u << EWB_SIM_L_CRBBB;
        if (T->n_pvc > 0) L |= 1u << EWB_SIM_L_PVC;
        for (int k = 0; k < 3; k++)
            if (cfg->st_territory >> k & 1) L |= 1u << (EWB_SIM_L_STE_ANT + k);
        if (cfg->std_mv > 0) L |= 1u << EWB_SIM_L_STD;
        if (cfg->t_inversion) L |= 1u << EWB_SIM_L_INVT;
        if (cfg->lvh_mv > 0) L |= 1u << EWB_SIM_L_LVH;
        /* long QT judged on the QT less the QRS widening of a bundle branch block */
        if ((T->qt_ms - fmax(0, T->qrs_ms - 100)) / sqrt(60 / T->hr) > 470) L |= 1u << EWB_SIM_L_LNGQT;
        if (T->axis_deg < -30) L |= 1u << EWB_SIM_L_LAD;
        if (T->axis_deg > 90) L |= 1u << EWB_SIM_L_RAD;
        if (T->qrs_limb_mv < 0.5) L |= 1u << EWB_SIM_L_LVOLT;
        if (L == 1u << EWB_SIM_L_SR) L |= 1u << EWB_SIM_L_NORM;
        T->labels = L;
    }
    *beats_out = beats;
    *nbeats_out = nb;
    return 0;
}

/* per-beat fiducials (nb, 9) in samples */
static void fill_waves(int64_t *w, const beat *beats, int nb, const beat_forms *bf, double fs, int64_t n) {
    for (int b = 0; b < nb; b++) {
        const span *p = beats[b].type ? NULL : &bf->p, *q = beats[b].type ? &bf->pvc_qrs : &bf->qrs,
                   *t = beats[b].type ? &bf->pvc_t : &bf->t;
        double off[8] = {p && p->present ? p->on : NAN, p && p->present ? p->pk : NAN, p && p->present ? p->off : NAN,
                         q->on, 0, q->off, t->pk, t->off};
        for (int j = 0; j < 8; j++) {
            int64_t v = isnan(off[j]) ? -1 : (int64_t)llround((beats[b].t + off[j]) * fs);
            w[b * 9 + j] = v >= 0 && v < n ? v : -1;
        }
        w[b * 9 + 8] = beats[b].type;
    }
}

int ewb_sim_record(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **clean, ewb_tensor **rpeaks,
                   ewb_tensor **waves, ewb_sim_truth *truth) {
    if (!cfg) return ewb_error("sim_record: config is NULL");
    if (check_config(cfg, "sim_record")) return -1;
    int64_t n = (int64_t)llround(cfg->fs * cfg->seconds), shape[2] = {12, n};
    ewb_tensor *e = ecg ? ewb_empty(EWB_DTYPE_F32, 2, shape) : NULL, *c = clean ? ewb_empty(EWB_DTYPE_F32, 2, shape) : NULL;
    if ((ecg && !e) || (clean && !c)) { ewb_tensor_free(e); ewb_tensor_free(c); return -1; }
    beat *beats;
    int nb;
    beat_forms bf;
    simulate(cfg, e ? ewb_f32(e) : NULL, c ? ewb_f32(c) : NULL, n, &beats, &nb, &bf, truth);
    ewb_tensor *r = NULL, *w = NULL;
    int64_t nb64 = nb, wshape[2] = {nb, 9};
    if (rpeaks && (r = ewb_empty(EWB_DTYPE_I64, 1, &nb64)))
        for (int i = 0; i < nb; i++) ((int64_t *)ewb_tensor_data(r))[i] = (int64_t)llround(beats[i].t * cfg->fs);
    if (waves && (w = ewb_empty(EWB_DTYPE_I64, 2, wshape))) fill_waves(ewb_tensor_data(w), beats, nb, &bf, cfg->fs, n);
    free(beats);
    if ((rpeaks && !r) || (waves && !w)) {
        ewb_tensor_free(e); ewb_tensor_free(c); ewb_tensor_free(r); ewb_tensor_free(w);
        return -1;
    }
    if (ecg) *ecg = e;
    if (clean) *clean = c;
    if (rpeaks) *rpeaks = r;
    if (waves) *waves = w;
    return 0;
}

int ewb_sim_ecg(const ewb_sim_config *cfg, ewb_tensor **ecg, ewb_tensor **rpeaks) {
    if (!cfg) return ewb_error("sim_ecg: config is NULL");
    if (check_config(cfg, "sim_ecg")) return -1;
    return ewb_sim_record(cfg, ecg, NULL, rpeaks, NULL, NULL);
}

int ewb_sim_batch(const ewb_sim_config *cfg, int64_t count, ewb_tensor **ecg, ewb_tensor **clean,
                  ewb_tensor **rpeaks, ewb_sim_truth *truth) {
    if (!cfg) return ewb_error("sim_batch: config is NULL");
    if (count < 1 || count > 10000000) return ewb_error("sim_batch: count must be in [1, 1e7], got %lld", (long long)count);
    for (int64_t b = 0; b < count; b++) {
        if (check_config(&cfg[b], "sim_batch")) return -1;
        if (cfg[b].fs != cfg[0].fs || cfg[b].seconds != cfg[0].seconds)
            return ewb_error("sim_batch: record %lld has fs %g, seconds %g; record 0 has %g, %g (all must match)",
                             (long long)b, cfg[b].fs, cfg[b].seconds, cfg[0].fs, cfg[0].seconds);
    }
    int64_t n = (int64_t)llround(cfg[0].fs * cfg[0].seconds), shape[3] = {count, 12, n};
    ewb_tensor *e = ecg ? ewb_empty(EWB_DTYPE_F32, 3, shape) : NULL, *c = clean ? ewb_empty(EWB_DTYPE_F32, 3, shape) : NULL;
    if ((ecg && !e) || (clean && !c)) { ewb_tensor_free(e); ewb_tensor_free(c); return -1; }
    beat **beats = calloc((size_t)count, sizeof *beats);
    int *nb = calloc((size_t)count, sizeof *nb);
    float *pe = e ? ewb_f32(e) : NULL, *pc = c ? ewb_f32(c) : NULL;
#pragma omp parallel for schedule(dynamic, 1) if (count > 1)
    for (int64_t b = 0; b < count; b++) {
        beat_forms bf;
        simulate(&cfg[b], pe ? pe + b * 12 * n : NULL, pc ? pc + b * 12 * n : NULL, n, &beats[b], &nb[b], &bf,
                 truth ? &truth[b] : NULL);
    }
    int rc = 0;
    if (rpeaks) {
        int64_t m = 0;
        for (int64_t b = 0; b < count; b++) m = nb[b] > m ? nb[b] : m;
        int64_t rs[2] = {count, m};
        ewb_tensor *r = ewb_empty(EWB_DTYPE_I64, 2, rs);
        if (r) {
            int64_t *p = ewb_tensor_data(r);
            for (int64_t b = 0; b < count; b++)
                for (int64_t i = 0; i < m; i++) p[b * m + i] = i < nb[b] ? (int64_t)llround(beats[b][i].t * cfg[0].fs) : -1;
            *rpeaks = r;
        } else rc = -1;
    }
    for (int64_t b = 0; b < count; b++) free(beats[b]);
    free(beats);
    free(nb);
    if (rc) { ewb_tensor_free(e); ewb_tensor_free(c); return -1; }
    if (ecg) *ecg = e;
    if (clean) *clean = c;
    return 0;
}

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
