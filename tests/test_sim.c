/* test_sim.c: the ECGSYN dipole simulator: Einthoven's and Goldberger's
 * identities, heart rate and variability against the request, the RR
 * spectrum's LF/HF balance, R peaks on lead II maxima, isoelectric
 * segments, reproducibility, and argument errors. Then every condition's
 * signature measured on the signal (independently of the simulator's own
 * fiducial code: the dipole is recovered from the leads by least squares)
 * against the ground truth: HR, PR, QRS, QT, AF irregularity and absent P,
 * flutter waves, BBB morphology, PVC pauses, ST by territory, axis, voltage;
 * noise SNR and spectra; the batch API at 1 and 2 threads. */
#include "check.h"

static ewb_sim_config base(void) {
    ewb_sim_config c = {.fs = 500, .seconds = 10, .hr_mean = 72, .hr_std = 2, .lf_hf = 0.5, .seed = 9, .index = 3};
    return c;
}

/* power of the RR tachogram (1 Hz step-held beat RRs) in [lo, hi] Hz */
static double band_power(const double *x, int n, double lo, double hi) {
    double p = 0;
    for (int k = 1; k < n / 2; k++) {
        double f = (double)k / n, re = 0, im = 0;
        if (f < lo || f > hi) continue;
        for (int t = 0; t < n; t++) { re += x[t] * cos(2 * M_PI * k * t / n); im -= x[t] * sin(2 * M_PI * k * t / n); }
        p += re * re + im * im;
    }
    return p;
}

/* LF/HF power of the beat-to-beat tachogram, pooled over 4 records of 512 s
   (one periodogram has ~10 effective bins per band: ±30% per record) */
static double lf_hf_of(double ratio) {
    double lf = 0, hf = 0;
    for (int rec = 0; rec < 4; rec++) {
    ewb_sim_config c = base();
    c.fs = 250; c.seconds = 512; c.hr_mean = 60; c.hr_std = 3; c.lf_hf = ratio; c.index = (uint64_t)rec;
    ewb_tensor *e, *r;
    if (ewb_sim_ecg(&c, &e, &r)) return NAN;
    const int64_t *pk = ewb_tensor_data(r);
    int64_t np = ewb_tensor_numel(r);
    int n = 500;
    double x[500];
    for (int t = 0, b = 0; t < n; t++) { /* RR of the beat in progress at second t */
        while (b + 2 < np && pk[b + 1] < (t + 1) * c.fs) b++;
        x[t] = (pk[b + 1] - pk[b]) / c.fs;
    }
    double m = 0;
    for (int t = 0; t < n; t++) m += x[t] / n;
    for (int t = 0; t < n; t++) x[t] -= m;
    lf += band_power(x, n, 0.05, 0.15);
    hf += band_power(x, n, 0.2, 0.3);
    ewb_tensor_free(e);
    ewb_tensor_free(r);
    }
    return lf / hf;
}


/* ---- conditions ---- */

static ewb_sim_config cond(void) {
    ewb_sim_config c = {.fs = 500, .seconds = 10, .hr_mean = 72, .hr_std = 2, .lf_hf = 0.5, .seed = 21, .index = 0};
    return c;
}

typedef struct {
    ewb_tensor *ecg, *clean, *rp, *waves;
    ewb_sim_truth t;
    const float *x; /* clean (12, n) */
    const int64_t *w, *pk;
    int64_t n, nb;
} rec;

static int rec_make(rec *r, ewb_sim_config c) {
    memset(r, 0, sizeof *r);
    if (ewb_sim_record(&c, &r->ecg, &r->clean, &r->rp, &r->waves, &r->t)) {
        fprintf(stderr, "sim_record: %s\n", ewb_last_error());
        return -1;
    }
    r->x = ewb_f32(r->clean);
    r->w = ewb_tensor_data(r->waves);
    r->pk = ewb_tensor_data(r->rp);
    r->n = r->clean->shape[1];
    r->nb = r->waves->shape[0];
    return 0;
}
static void rec_free(rec *r) {
    ewb_tensor_free(r->ecg); ewb_tensor_free(r->clean); ewb_tensor_free(r->rp); ewb_tensor_free(r->waves);
}
static int has_label(const rec *r, const char *name) {
    for (int k = 0; k < EWB_SIM_NUM_LABELS; k++)
        if (!strcmp(ewb_sim_label_name(k), name)) return (int)(r->t.labels >> k & 1);
    return -1;
}
static double einthoven(const float *x, int64_t n) {
    double e = 0;
    for (int64_t k = 0; k < n; k++) {
        e = fmax(e, fabs(x[k] + x[2 * n + k] - x[n + k]));
        e = fmax(e, fabs(x[3 * n + k] + x[4 * n + k] + x[5 * n + k]));
    }
    return e;
}

/* the dipole recovered from I, II, V1..V6 by least squares on the Dower
   matrix (normal equations), as a vectorcardiograph would */
static const double DOWER_T[8][3] = {
    {0.632, -0.235, 0.059}, {0.235, 1.066, -0.132}, {-0.515, 0.157, -0.917}, {0.044, 0.164, -1.387},
    {0.882, 0.098, -1.277}, {1.213, 0.127, -0.601}, {1.125, 0.127, -0.086},  {0.831, 0.076, 0.230}};
static void dipole_of(const rec *r, int64_t k, double d[3]) {
    static double inv[3][3];
    static int ready;
    if (!ready) {
        double a[3][3] = {{0}};
        for (int l = 0; l < 8; l++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) a[i][j] += DOWER_T[l][i] * DOWER_T[l][j];
        double det = a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
                     a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                int i1 = (j + 1) % 3, i2 = (j + 2) % 3, j1 = (i + 1) % 3, j2 = (i + 2) % 3;
                inv[i][j] = (a[i1][j1] * a[i2][j2] - a[i1][j2] * a[i2][j1]) / det;
            }
        ready = 1;
    }
    const int rows[8] = {0, 1, 6, 7, 8, 9, 10, 11};
    double b[3] = {0, 0, 0};
    for (int l = 0; l < 8; l++)
        for (int i = 0; i < 3; i++) b[i] += DOWER_T[l][i] * r->x[rows[l] * r->n + k];
    for (int i = 0; i < 3; i++) d[i] = inv[i][0] * b[0] + inv[i][1] * b[1] + inv[i][2] * b[2];
}
/* norm of the dipole change from a reference sample */
static double dnorm(const rec *r, int64_t k, const double ref[3]) {
    double d[3];
    dipole_of(r, k, d);
    return sqrt(pow(d[0] - ref[0], 2) + pow(d[1] - ref[1], 2) + pow(d[2] - ref[2], 2));
}

/* QRS on and off measured on the signal around beat b: where the dipole
   (less the PR-segment level) falls below 5% of its peak, searching out from
   the peak. Returns the duration in ms; on/off in samples. */
static double measure_qrs(const rec *r, int64_t b, int64_t *on, int64_t *off) {
    int64_t R = r->pk[b], fs = 500, lo = R - fs * 15 / 100, hi = R + fs * 15 / 100;
    double ref[3], best = 0;
    int64_t at = R;
    dipole_of(r, r->w[b * 9 + 3] - fs / 50, ref); /* 20 ms before QRS onset: the PR segment */
    for (int64_t k = lo; k <= hi; k++) { double v = dnorm(r, k, ref); if (v > best) { best = v; at = k; } }
    int64_t a = at, z = at;
    while (a > lo && dnorm(r, a - 1, ref) > 0.05 * best) a--;
    while (z < hi && dnorm(r, z + 1, ref) > 0.05 * best) z++;
    *on = a; *off = z;
    return (z - a) * 1000.0 / fs;
}

/* a lead's value averaged over the normal beats at offset (s) from a fiducial column */
static double beat_mean(const rec *r, int lead, int col, double off_s) {
    double s = 0;
    int m = 0;
    for (int64_t b = 0; b < r->nb; b++) {
        if (r->w[b * 9 + 8] != 0 || r->w[b * 9 + col] < 0) continue;
        int64_t k = r->w[b * 9 + col] + (int64_t)llround(off_s * 500);
        if (k < 0 || k >= r->n) continue;
        s += r->x[lead * r->n + k];
        m++;
    }
    return m ? s / m : NAN;
}
/* ST level at J+60 ms minus the PR level (QRS on - 20 ms), per lead */
static double st_level(const rec *r, int lead) { return beat_mean(r, lead, 5, 0.06) - beat_mean(r, lead, 3, -0.02); }

static double rr_cv(const rec *r) {
    double m = 0, v = 0;
    int n = (int)r->nb - 1;
    for (int i = 0; i < n; i++) m += (double)(r->pk[i + 1] - r->pk[i]) / n;
    for (int i = 0; i < n; i++) v += pow(r->pk[i + 1] - r->pk[i] - m, 2) / (n - 1);
    return sqrt(v) / m;
}

/* height of the R-aligned average of lead II in the P window ms
   over its ends: a P wave shows; fibrillatory waves average out */
static double p_bump(const rec *r) {
    double avg[86] = {0};
    int m = 0;
    for (int64_t b = 0; b < r->nb; b++) {
        int64_t k0 = r->pk[b] - 130;
        if (k0 < 0) continue;
        for (int j = 0; j < 86; j++) avg[j] += r->x[r->n + k0 + j];
        m++;
    }
    double base = (avg[0] + avg[85]) / 2 / m, top = 0;
    for (int j = 0; j < 86; j++) top = fmax(top, fabs(avg[j] / m - base));
    return top;
}

static void test_conditions(void) {
    rec r, n0;
    ewb_sim_config c;

    /* normal: label NORM, intervals normal, truth intervals recovered from the
       signal within 20 ms; per-beat fiducials in order */
    c = cond();
    if (rec_make(&n0, c)) return;
    CHECK(has_label(&n0, "NORM") == 1 && has_label(&n0, "SR") == 1 && __builtin_popcount(n0.t.labels) == 2, "normal labels %#x", n0.t.labels);
    CHECK(n0.t.pr_ms >= 120 && n0.t.pr_ms <= 200 && n0.t.qrs_ms >= 70 && n0.t.qrs_ms < 110 && n0.t.qtc_ms < 450,
          "normal intervals PR %g QRS %g QTc %g", n0.t.pr_ms, n0.t.qrs_ms, n0.t.qtc_ms);
    CHECK(n0.t.axis_deg > -30 && n0.t.axis_deg < 90 && n0.t.age >= 18 && n0.t.age <= 90 && (n0.t.sex == 1 || n0.t.sex == 2),
          "axis %g age %g sex %d", n0.t.axis_deg, n0.t.age, n0.t.sex);
    int ordered = 1;
    for (int64_t b = 0; b < n0.nb; b++) {
        const int64_t *f = n0.w + b * 9;
        if (f[4] != n0.pk[b]) ordered = 0;
        for (int j = 0; j < 7; j++) if (f[j] >= 0 && f[j + 1] >= 0 && f[j] > f[j + 1]) ordered = 0;
    }
    CHECK(ordered && n0.nb == ewb_tensor_numel(n0.rp), "fiducials ordered, R column = rpeaks");

    /* conditions measured on the signal against the truth, at several rates */
    struct { const char *name; ewb_sim_config c; } cs[8];
    int nc = 0;
    c = cond(); c.hr_mean = 48; cs[nc].name = "SBRAD"; cs[nc++].c = c;
    c = cond(); c.hr_mean = 125; cs[nc].name = "STACH"; cs[nc++].c = c;
    c = cond(); c.pr_ms = 280; cs[nc].name = "1AVB"; cs[nc++].c = c;
    c = cond(); c.bbb = EWB_SIM_LBBB; cs[nc].name = "CLBBB"; cs[nc++].c = c;
    c = cond(); c.bbb = EWB_SIM_RBBB; cs[nc].name = "CRBBB"; cs[nc++].c = c;
    c = cond(); c.qt_extra_ms = 120; cs[nc].name = "LNGQT"; cs[nc++].c = c;
    c = cond(); c.lvh_mv = 4.5; cs[nc].name = "LVH"; cs[nc++].c = c;
    c = cond(); cs[nc].name = "NORM"; cs[nc++].c = c;
    for (int i = 0; i < nc; i++) {
        if (rec_make(&r, cs[i].c)) continue;
        CHECK(has_label(&r, cs[i].name) == 1, "%s labelled (labels %#x)", cs[i].name, r.t.labels);
        /* HR from the R peaks, as a detector counting beats would see it */
        double hr = 60.0 * 500 * (r.nb - 1) / (double)(r.pk[r.nb - 1] - r.pk[0]);
        CHECK(fabs(hr - r.t.hr) < 2 && fabs(hr - cs[i].c.hr_mean) < 4, "%s: HR %g vs truth %g", cs[i].name, hr, r.t.hr);
        /* QRS, PR and QT on the middle beat */
        int64_t b = r.nb / 2, on, off;
        double qrs = measure_qrs(&r, b, &on, &off);
        CHECK(fabs(qrs - r.t.qrs_ms) < 20, "%s: QRS measured %g ms vs truth %g", cs[i].name, qrs, r.t.qrs_ms);
        /* P and T are single Gaussians: their 10% crossings are the same in every lead; II for P, the largest T lead */
        int64_t P = r.w[b * 9 + 1], Tp = r.w[b * 9 + 6];
        double base = r.x[r.n + on - 10], pk = r.x[r.n + P] - base;
        int64_t pon = P;
        while (fabs(r.x[r.n + pon - 1] - base) > 0.1 * fabs(pk)) pon--;
        double pr = (on - pon) * 2.0;
        /* at 125 bpm the P wave starts on the previous T: its onset is not measurable this way */
        int tp_fused = cs[i].c.hr_mean > 110;
        CHECK(tp_fused || fabs(pr - r.t.pr_ms) < 20, "%s: PR measured %g ms vs truth %g", cs[i].name, pr, r.t.pr_ms);
        int tl = 0;
        for (int l = 0; l < 12; l++) if (fabs(r.x[l * r.n + Tp]) > fabs(r.x[tl * r.n + Tp])) tl = l;
        double tb = r.x[tl * r.n + on - 10], tpk = r.x[tl * r.n + Tp] - tb;
        int64_t toff = Tp;
        while (toff + 1 < r.n && fabs(r.x[tl * r.n + toff + 1] - tb) > 0.1 * fabs(tpk)) toff++;
        double qt = (toff - on) * 2.0, qtc = qt / sqrt(60 / r.t.hr);
        CHECK(fabs(qt - r.t.qt_ms) < 20, "%s: QT measured %g ms vs truth %g", cs[i].name, qt, r.t.qt_ms);
        if (!strcmp(cs[i].name, "1AVB")) CHECK(pr > 200, "1AVB: PR %g ms > 200", pr);
        else CHECK(tp_fused || (pr >= 120 && pr <= 200), "%s: PR %g ms normal", cs[i].name, pr);
        if (cs[i].c.bbb) CHECK(qrs >= 120, "%s: QRS %g ms >= 120", cs[i].name, qrs);
        else CHECK(qrs < 110, "%s: QRS %g ms < 110", cs[i].name, qrs);
        if (!strcmp(cs[i].name, "LNGQT")) CHECK(qtc > 470, "long QT: QTc %g ms", qtc);
        else CHECK(has_label(&r, "LNGQT") == 0, "%s: no LNGQT (QTc %g)", cs[i].name, r.t.qtc_ms);
        if (cs[i].c.bbb == EWB_SIM_RBBB) {
            /* terminal R' in V1, terminal (wide) S in I and V6 */
            double v1_end = r.x[6 * r.n + off - 15], i_end = r.x[0 * r.n + off - 15], v6_end = r.x[11 * r.n + off - 15];
            double v1_min = 0;
            for (int64_t k = on; k < off; k++) v1_min = fmin(v1_min, r.x[6 * r.n + k]);
            CHECK(v1_end > 0.3 && v1_min < -0.1, "RBBB: V1 late R' %g mV after an S of %g mV", v1_end, v1_min);
            CHECK(i_end < -0.1 && v6_end < -0.1, "RBBB: late S in I %g, V6 %g mV", i_end, v6_end);
        }
        if (cs[i].c.bbb == EWB_SIM_LBBB) {
            /* V1 QS: no R; V6 and I: broad R with no septal q and a notch */
            double v1max = -1, v1min = 1, v6min = 0, v6max = 0;
            for (int64_t k = on; k <= off; k++) {
                v1max = fmax(v1max, r.x[6 * r.n + k] - r.x[6 * r.n + on]);
                v1min = fmin(v1min, r.x[6 * r.n + k] - r.x[6 * r.n + on]);
                v6max = fmax(v6max, r.x[11 * r.n + k] - r.x[11 * r.n + on]);
            }
            int64_t kmax = on;
            for (int64_t k = on; k <= off; k++) if (r.x[11 * r.n + k] > r.x[11 * r.n + kmax]) kmax = k;
            for (int64_t k = on; k < kmax; k++) v6min = fmin(v6min, r.x[11 * r.n + k] - r.x[11 * r.n + on]);
            int notches = 0; /* local minima inside the R of V6 */
            for (int64_t k = on + 2; k < off - 2; k++) {
                double v = r.x[11 * r.n + k];
                if (v < r.x[11 * r.n + k - 1] && v <= r.x[11 * r.n + k + 1] && v > 0.5 * v6max) notches++;
            }
            CHECK(v1min < -0.8 && v1max < 0.1, "LBBB: V1 QS (min %g, max %g mV)", v1min, v1max);
            CHECK(v6max > 0.8 && v6min > -0.05 && notches == 1, "LBBB: V6 broad notched R %g mV, no q (%g), %d notch", v6max, v6min, notches);
        }
        if (cs[i].c.lvh_mv > 0) {
            double s1 = 0, r5 = 0, r6 = 0;
            for (int64_t k = on; k <= off; k++) {
                s1 = fmin(s1, r.x[6 * r.n + k]); r5 = fmax(r5, r.x[10 * r.n + k]); r6 = fmax(r6, r.x[11 * r.n + k]);
            }
            CHECK(-s1 + fmax(r5, r6) >= 3.5, "LVH: Sokolow-Lyon %g mV", -s1 + fmax(r5, r6));
            CHECK(beat_mean(&r, 10, 6, 0) < -0.05, "LVH strain: T inverted in V5 (%g mV)", beat_mean(&r, 10, 6, 0));
        }
        CHECK(einthoven(r.x, r.n) < 1e-6 && einthoven(ewb_f32(r.ecg), r.n) < 1e-6, "%s: Einthoven", cs[i].name);
        rec_free(&r);
    }

    /* rhythm: AF irregular with no P wave; sinus regular with one (60 s records) */
    c = cond(); c.seconds = 60;
    rec sr;
    if (!rec_make(&sr, c)) {
        CHECK(rr_cv(&sr) < 0.05 && p_bump(&sr) > 0.08, "sinus: RR CV %g < 0.05, P wave %g mV", rr_cv(&sr), p_bump(&sr));
        rec_free(&sr);
    }
    c = cond(); c.seconds = 60; c.rhythm = EWB_SIM_AFIB; c.hr_mean = 95;
    if (!rec_make(&r, c)) {
        CHECK(rr_cv(&r) > 0.12, "AF: RR CV %g > 0.12", rr_cv(&r));
        CHECK(p_bump(&r) < 0.03, "AF: no P wave (R-aligned average %g mV)", p_bump(&r));
        CHECK(has_label(&r, "AFIB") == 1 && has_label(&r, "SR") == 0 && isnan(r.t.pr_ms), "AF labels, no PR");
        CHECK(r.w[9 * 3 + 0] == -1, "AF: no P fiducials");
        /* fibrillatory waves: f-wave energy at 4-9 Hz between T end and the next QRS in V1 */
        double zc = 0, len = 0;
        for (int64_t b = 0; b + 1 < r.nb; b++) {
            int64_t a = r.w[b * 9 + 7] + 10, z = r.w[(b + 1) * 9 + 3] - 10;
            if (a < 0 || z - a < 100) continue;
            double m = 0;
            for (int64_t k = a; k < z; k++) m += r.x[6 * r.n + k] / (z - a);
            for (int64_t k = a + 1; k < z; k++) zc += (r.x[6 * r.n + k] - m) * (r.x[6 * r.n + k - 1] - m) < 0;
            len += (z - a) / 500.0;
        }
        double f = zc / 2 / len;
        CHECK(f > 4 && f < 9, "AF: f waves at %g Hz in V1 (zero crossings)", f);
        CHECK(einthoven(r.x, r.n) < 1e-6, "AF: Einthoven");
        rec_free(&r);
    }

    /* flutter: RR = block x flutter cycle; ~5 Hz atrial activity in the T-Q interval of II */
    c = cond(); c.rhythm = EWB_SIM_AFLT; c.flutter_block = 4; c.seconds = 20;
    if (!rec_make(&r, c)) {
        double tf = 60 / r.t.atrial_rate;
        CHECK(r.t.atrial_rate > 250 && r.t.atrial_rate < 350, "flutter rate %g/min", r.t.atrial_rate);
        int locked = 1;
        for (int64_t b = 1; b < r.nb; b++) if (fabs((r.pk[b] - r.pk[b - 1]) / 500.0 - 4 * tf) > 0.004) locked = 0;
        CHECK(locked && rr_cv(&r) < 0.01, "4:1 block: every RR is 4 flutter cycles");
        /* autocorrelation of II in the T-Q windows: a peak at the flutter cycle */
        double best = -1;
        int lag_best = 0;
        for (int lag = 50; lag <= 150; lag++) { /* 100-300 ms */
            double num = 0, d0 = 0;
            for (int64_t b = 0; b + 1 < r.nb; b++) {
                int64_t a = r.w[b * 9 + 7], z = r.w[(b + 1) * 9 + 3];
                if (a < 0) continue;
                for (int64_t k = a; k + lag < z; k++) { num += r.x[r.n + k] * r.x[r.n + k + lag]; d0 += r.x[r.n + k] * r.x[r.n + k]; }
            }
            if (d0 > 0 && num / d0 > best) { best = num / d0; lag_best = lag; }
        }
        CHECK(fabs(lag_best / 500.0 - tf) < 0.01 && 500.0 / lag_best > 4 && 500.0 / lag_best < 6,
              "flutter waves every %g s (%g Hz), cycle %g s", lag_best / 500.0, 500.0 / lag_best, tf);
        CHECK(p_bump(&r) > 0.05, "flutter: atrial activity locked to the QRS (%g mV)", p_bump(&r));
        CHECK(has_label(&r, "AFLT") == 1 && r.t.flutter_block == 4, "AFLT label and block");
        rec_free(&r);
    }
    c = cond(); c.rhythm = EWB_SIM_AFLT; c.flutter_block = 2;
    if (!rec_make(&r, c)) {
        CHECK(fabs(r.t.hr - r.t.atrial_rate / 2) < 1, "2:1 flutter: HR %g = atrial %g / 2", r.t.hr, r.t.atrial_rate);
        rec_free(&r);
    }
    /* sinus at the same settings: the T-Q interval of II is flat */
    {
        double v = 0;
        int m = 0;
        for (int64_t b = 0; b + 1 < n0.nb; b++) {
            int64_t a = n0.w[b * 9 + 7], z = n0.w[(b + 1) * 9 + 0];
            if (a < 0 || z < 0) continue;
            double mu = 0;
            for (int64_t k = a; k < z; k++) mu += n0.x[n0.n + k] / (z - a);
            for (int64_t k = a; k < z; k++) { v += pow(n0.x[n0.n + k] - mu, 2); m++; }
        }
        CHECK(sqrt(v / m) < 0.03, "sinus: T-P segment of II is flat (rms %g mV)", sqrt(v / m));
    }

    /* PVCs: premature, wide, no P, T opposite the QRS, full compensatory pause */
    c = cond(); c.pvc_prob = 0.3; c.seconds = 30; c.hr_std = 0.5;
    if (!rec_make(&r, c)) {
        int npvc = 0, ok_pause = 1, ok_wide = 1, ok_p = 1, ok_t = 1, ok_early = 1;
        double rr = 60 / 72.0 * 500;
        for (int64_t b = 0; b < r.nb; b++) npvc += r.w[b * 9 + 8] == 1;
        for (int64_t b = 1; b + 1 < r.nb; b++) {
            if (r.w[b * 9 + 8] != 1) continue;
            double before = r.pk[b] - r.pk[b - 1], pair = r.pk[b + 1] - r.pk[b - 1];
            if (before > 0.75 * rr) ok_early = 0;
            if (fabs(pair - 2 * rr) > 0.04 * rr) ok_pause = 0;
            int64_t on, off;
            if (measure_qrs(&r, b, &on, &off) < 120) ok_wide = 0;
            if (r.w[b * 9 + 0] != -1) ok_p = 0;
            /* lead with the largest net QRS: the T has the other sign */
            int best = 0;
            double area_best = 0;
            for (int l = 0; l < 12; l++) {
                double a = 0;
                for (int64_t k = on; k <= off; k++) a += r.x[l * r.n + k] - r.x[l * r.n + on];
                if (fabs(a) > fabs(area_best)) { area_best = a; best = l; }
            }
            double tv = r.x[best * r.n + r.w[b * 9 + 6]] - r.x[best * r.n + on];
            if (tv * area_best >= 0) ok_t = 0;
        }
        CHECK(npvc >= 2 && npvc == r.t.n_pvc && has_label(&r, "PVC") == 1, "%d PVCs, truth %d", npvc, r.t.n_pvc);
        CHECK(ok_early && ok_pause, "PVCs premature, with a full compensatory pause");
        CHECK(ok_wide && ok_p && ok_t, "PVCs wide, without P, T opposite the QRS");
        CHECK(fabs(r.t.hr - 72) < 3, "PVCs keep the mean rate: %g", r.t.hr);
        CHECK(einthoven(r.x, r.n) < 1e-6, "PVC: Einthoven");
        rec_free(&r);
    }

    /* ST elevation by territory: >= 0.1 mV in the territory's leads, < 0.1 elsewhere */
    const int terr[3][5] = {{6, 7, 8, 9, -1}, {1, 2, 5, -1, -1}, {0, 4, 10, 11, -1}};
    const char *tname[3] = {"STE_ANT", "STE_INF", "STE_LAT"};
    for (int k = 0; k < 3; k++) {
        c = cond(); c.st_territory = 1 << k; c.st_mv = 0.15;
        if (rec_make(&r, c)) continue;
        int in_ok = 1, out_ok = 1;
        for (int l = 0; l < 12; l++) {
            int inside = 0;
            for (int j = 0; j < 5 && terr[k][j] >= 0; j++) inside |= terr[k][j] == l;
            double st = st_level(&r, l);
            if (inside && st < 0.1) in_ok = 0;
            if (!inside && st >= 0.1) out_ok = 0;
            if (fabs(st - r.t.st_mv[l]) > 0.02) { in_ok = 0; fprintf(stderr, "  %s lead %s: measured %g truth %g\n", tname[k], ewb_lead_name(l), st, r.t.st_mv[l]); }
        }
        CHECK(in_ok && out_ok, "%s: elevation in its leads only (II %g, V2 %g, V5 %g)", tname[k], st_level(&r, 1), st_level(&r, 7), st_level(&r, 10));
        CHECK(has_label(&r, tname[k]) == 1 && einthoven(r.x, r.n) < 1e-6, "%s labelled, Einthoven", tname[k]);
        rec_free(&r);
    }
    c = cond(); c.std_mv = 0.15;
    if (!rec_make(&r, c)) {
        CHECK(st_level(&r, 10) <= -0.1 && st_level(&r, 1) < -0.05, "ST depression: V5 %g, II %g mV", st_level(&r, 10), st_level(&r, 1));
        CHECK(has_label(&r, "STD_") == 1, "STD_ labelled");
        rec_free(&r);
    }
    for (int l = 0; l < 12; l++) CHECK(fabs(st_level(&n0, l)) < 0.07, "normal ST in %s: %g mV", ewb_lead_name(l), st_level(&n0, l));

    /* T inversion, axis, low voltage */
    c = cond(); c.t_inversion = 1;
    if (!rec_make(&r, c)) {
        CHECK(beat_mean(&r, 1, 6, 0) < -0.1 && beat_mean(&n0, 1, 6, 0) > 0.1 && beat_mean(&r, 9, 6, 0) < -0.1,
              "T inverted in II %g (normal %g), V4 %g", beat_mean(&r, 1, 6, 0), beat_mean(&n0, 1, 6, 0), beat_mean(&r, 9, 6, 0));
        CHECK(has_label(&r, "INVT") == 1, "INVT labelled");
        rec_free(&r);
    }
    const double axes[3] = {-60, 120, 20};
    const char *alab[3] = {"LAD", "RAD", "NORM"};
    for (int k = 0; k < 3; k++) {
        c = cond(); c.set_axis = 1; c.axis_deg = axes[k];
        if (rec_make(&r, c)) continue;
        int64_t b = r.nb / 2, on, off;
        measure_qrs(&r, b, &on, &off);
        double aI = 0, aF = 0;
        for (int64_t k2 = on - 10; k2 <= off + 10; k2++) { aI += r.x[k2] - r.x[on - 10]; aF += r.x[5 * r.n + k2] - r.x[5 * r.n + on - 10]; }
        double ax = atan2(2 * aF / sqrt(3.0), aI) * 180 / M_PI;
        CHECK(fabs(r.t.axis_deg - axes[k]) < 0.5 && fabs(ax - axes[k]) < 5, "axis %g: truth %g, measured %g", axes[k], r.t.axis_deg, ax);
        CHECK(has_label(&r, alab[k]) == 1, "axis %g labelled %s", axes[k], alab[k]);
        rec_free(&r);
    }
    c = cond(); c.low_voltage_mv = 0.35;
    if (!rec_make(&r, c)) {
        double pp = 0;
        for (int l = 0; l < 6; l++) {
            double mn = 1e9, mx = -1e9;
            for (int64_t b = 1; b + 1 < r.nb; b++)
                for (int64_t k = r.w[b * 9 + 3]; k <= r.w[b * 9 + 5]; k++) { mn = fmin(mn, r.x[l * r.n + k]); mx = fmax(mx, r.x[l * r.n + k]); }
            pp = fmax(pp, mx - mn);
        }
        CHECK(pp < 0.5 && pp > 0.25, "low voltage: limb QRS at most %g mV", pp);
        CHECK(has_label(&r, "LVOLT") == 1, "LVOLT labelled");
        rec_free(&r);
    }

    /* every condition at once still keeps Einthoven and gives every label */
    c = cond(); c.bbb = EWB_SIM_RBBB; c.pvc_prob = 0.2; c.st_territory = 3; c.st_mv = 0.2; c.t_inversion = 1;
    c.pr_ms = 240; c.set_axis = 1; c.axis_deg = -50; c.qt_extra_ms = 150; c.noise = 15;
    c.snr_bw = c.snr_pl = c.snr_emg = c.snr_em = 15;
    if (!rec_make(&r, c)) {
        const char *want[] = {"CRBBB", "PVC", "STE_ANT", "STE_INF", "INVT", "1AVB", "LAD", "LNGQT"};
        for (int i = 0; i < 8; i++) CHECK(has_label(&r, want[i]) == 1, "combined: %s", want[i]);
        CHECK(einthoven(r.x, r.n) < 1e-6 && einthoven(ewb_f32(r.ecg), r.n) < 1e-6, "combined and noisy: Einthoven");
        rec_free(&r);
    }
    rec_free(&n0);
}

/* ---- noise ---- */

static double power_in(const float *x, const float *y, int64_t n, double lo, double hi) { /* DFT power of x - y */
    double p = 0;
    for (int64_t k = (int64_t)ceil(lo * n / 500.0); k <= (int64_t)(hi * n / 500.0) && k < n / 2; k++) {
        if (k == 0) continue;
        double re = 0, im = 0;
        for (int64_t t = 0; t < n; t++) { double v = x[t] - y[t]; re += v * cos(2 * M_PI * k * t / n); im -= v * sin(2 * M_PI * k * t / n); }
        p += re * re + im * im;
    }
    return p;
}

static void test_noise(void) {
    rec base;
    ewb_sim_config c = cond();
    c.seconds = 4;
    if (rec_make(&base, c)) return;
    const char *name[4] = {"wander", "powerline", "EMG", "motion"};
    for (int k = 0; k < 4; k++) {
        rec r;
        c = cond(); c.seconds = 4; c.noise = 1 << k; c.snr_bw = c.snr_pl = c.snr_emg = c.snr_em = 10; c.pl_hz = 60;
        if (rec_make(&r, c)) continue;
        CHECK(max_rel_err(r.clean, base.clean) == 0, "%s: the clean signal does not depend on noise", name[k]);
        /* SNR over the 12 leads */
        const float *y = ewb_f32(r.ecg);
        double ps = 0, pn = 0;
        for (int l = 0; l < 12; l++) {
            double m = 0;
            for (int64_t i = 0; i < r.n; i++) m += r.x[l * r.n + i] / r.n;
            for (int64_t i = 0; i < r.n; i++) {
                ps += pow(r.x[l * r.n + i] - m, 2);
                pn += pow(y[l * r.n + i] - r.x[l * r.n + i], 2);
            }
        }
        CHECK(fabs(10 * log10(ps / pn) - 10) < 0.01, "%s: SNR %g dB for 10", name[k], 10 * log10(ps / pn));
        CHECK(einthoven(y, r.n) < 1e-6, "%s: Einthoven holds with electrode noise", name[k]);
        /* spectral signature in the noisiest lead */
        int nl = 0;
        double most = 0;
        for (int l = 0; l < 12; l++) {
            double p = 0;
            for (int64_t i = 0; i < r.n; i++) p += pow(y[l * r.n + i] - r.x[l * r.n + i], 2);
            if (p > most) { most = p; nl = l; }
        }
        const float *a = y + nl * r.n, *b = r.x + nl * r.n;
        double all = power_in(a, b, r.n, 0, 250);
        double band[4][2] = {{0, 1}, {59, 61}, {20, 150}, {0, 12}};
        double frac = power_in(a, b, r.n, band[k][0], band[k][1]) / all;
        CHECK(frac > 0.8, "%s: %g of its power in %g-%g Hz", name[k], frac, band[k][0], band[k][1]);
        rec_free(&r);
    }
    rec_free(&base);
}

/* the ziggurat behind the muscle noise: moments and tails of a standard normal */
static void test_normals(void) {
    int64_t n = 4000000;
    double *x = malloc(sizeof *x * (size_t)n), m[5] = {0};
    ewb_sim_normals(x, n, 3);
    int64_t over[4] = {0};
    const double at[4] = {1, 2, 3, 3.442619855899}; /* 3.44: the ziggurat's tail start */
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], p = 1;
        for (int k = 1; k <= 4; k++) { p *= v; m[k] += p / n; }
        for (int k = 0; k < 4; k++) over[k] += fabs(v) > at[k];
    }
    double sd = sqrt(m[2] - m[1] * m[1]);
    /* the standard errors at n = 4e6: mean 5e-4, variance 7e-4, skewness 1.2e-3, kurtosis 2.4e-3 */
    CHECK(fabs(m[1]) < 0.003 && fabs(m[2] - 1) < 0.004 && fabs(m[3]) < 0.007 && fabs(m[4] - 3) < 0.015,
          "normals: mean %g, variance %g, third moment %g, fourth %g", m[1], m[2], m[3], m[4]);
    int tails_ok = 1;
    for (int k = 0; k < 4; k++) {
        double want = erfc(at[k] / sqrt(2.0)) * n, got = (double)over[k];
        if (fabs(got - want) > 5 * sqrt(want)) tails_ok = 0;
        fprintf(stderr, "normals: P(|x| > %.2f) = %.6f (normal %.6f)\n", at[k], got / n, want / n);
    }
    CHECK(tails_ok && sd > 0.99, "normals: tail fractions within 5 standard errors");
    free(x);
}

/* ---- the baseline ----
   Every record starts on its baseline and stays there: in lead II the PR
   segment (QRS onset - 20 ms) of every beat is within 0.02 mV of the rest
   level 0 and moves by less than 0.01 mV over the record, and the median of
   the record is within 0.03 mV of the PR-segment level where the TP segment is
   long enough to hold the median (up to 80 bpm; above, P and T fill most of
   the cycle and raise it). */
static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}
static void test_baseline(void) {
    const double hrs[6] = {45, 60, 72, 80, 100, 130};
    double worst_pr = 0, worst_drift = 0, worst_med = 0;
    for (int h = 0; h < 6; h++)
        for (uint64_t seed = 1; seed <= 6; seed++) {
            ewb_sim_config c = cond();
            c.hr_mean = hrs[h];
            c.seed = seed;
            c.index = seed * 7;
            rec r;
            if (rec_make(&r, c)) continue;
            const float *ii = r.x + r.n;
            double sum = 0, first = NAN, last = NAN;
            int m = 0;
            for (int64_t b = 0; b < r.nb; b++) {
                int64_t k = r.w[b * 9 + 3] - 10;
                if (r.w[b * 9 + 8] != 0 || r.w[b * 9 + 3] < 0 || k < 0) continue;
                worst_pr = fmax(worst_pr, fabs(ii[k]));
                if (isnan(first)) first = ii[k];
                last = ii[k];
                sum += ii[k];
                m++;
            }
            worst_drift = fmax(worst_drift, fabs(last - first));
            if (hrs[h] <= 80) {
                float *v = malloc(sizeof *v * (size_t)r.n);
                memcpy(v, ii, sizeof *v * (size_t)r.n);
                qsort(v, (size_t)r.n, sizeof *v, cmp_float);
                double med = (v[r.n / 2 - 1] + v[r.n / 2]) / 2;
                worst_med = fmax(worst_med, fabs(med - sum / m));
                free(v);
            }
            rec_free(&r);
        }
    fprintf(stderr, "baseline: PR level within %.4f mV of 0, drift %.4f mV, |median - PR| %.4f mV\n", worst_pr, worst_drift, worst_med);
    CHECK(worst_pr < 0.02, "PR segment in II within %g mV of 0 (36 records, 45-130 bpm)", worst_pr);
    CHECK(worst_drift < 0.01, "PR segment moves by %g mV over a record", worst_drift);
    CHECK(worst_med < 0.03, "median of II within %g mV of the PR segment (24 records, 45-80 bpm)", worst_med);
}

/* ---- reproducibility and the batch API ---- */

static void test_batch(void) {
    ewb_sim_config cfg[6];
    for (int i = 0; i < 6; i++) {
        cfg[i] = cond();
        cfg[i].seconds = 5;
        cfg[i].index = (uint64_t)i;
        cfg[i].rhythm = i % 3;
        cfg[i].pvc_prob = i == 4 ? 0.3 : 0;
        cfg[i].noise = i == 5 ? 15 : 0;
        cfg[i].snr_bw = cfg[i].snr_pl = cfg[i].snr_emg = cfg[i].snr_em = 20;
    }
    ewb_tensor *e1, *c1, *r1, *e2, *c2, *r2;
    ewb_sim_truth t1[6], t2[6];
    int nt = ewb_num_threads();
    ewb_set_num_threads(1);
    OK(ewb_sim_batch(cfg, 6, &e1, &c1, &r1, t1));
    ewb_set_num_threads(2);
    OK(ewb_sim_batch(cfg, 6, &e2, &c2, &r2, t2));
    ewb_set_num_threads(nt);
    CHECK(e1->ndim == 3 && e1->shape[0] == 6 && e1->shape[1] == 12 && e1->shape[2] == 2500, "batch shape %s", ewb_s(e1));
    CHECK(max_rel_err(e1, e2) == 0 && max_rel_err(c1, c2) == 0 && !memcmp(t1, t2, sizeof t1), "1 and 2 threads: identical");
    int same = 1;
    for (int i = 0; i < 6; i++) {
        ewb_tensor *e, *rp;
        ewb_sim_truth t;
        if (ewb_sim_record(&cfg[i], &e, NULL, &rp, NULL, &t)) { same = 0; continue; }
        if (memcmp(ewb_f32(e), ewb_f32(e1) + i * 12 * 2500, 4 * 12 * 2500) || memcmp(&t, &t1[i], sizeof t)) same = 0;
        const int64_t *a = ewb_tensor_data(rp), *b = (const int64_t *)ewb_tensor_data(r1) + i * r1->shape[1];
        for (int64_t j = 0; j < r1->shape[1]; j++) if (b[j] != (j < ewb_tensor_numel(rp) ? a[j] : -1)) same = 0;
        ewb_tensor_free(e);
        ewb_tensor_free(rp);
    }
    CHECK(same, "batch records equal single records with the same (seed, index)");
    ewb_tensor *list[] = {e1, c1, r1, e2, c2, r2};
    for (int i = 0; i < 6; i++) ewb_tensor_free(list[i]);

    /* errors */
    cfg[3].fs = 250;
    ewb_tensor *o = NULL;
    FAILS(ewb_sim_batch(cfg, 6, &o, NULL, NULL, NULL), "sim_batch: record 3 has fs 250");
    FAILS(ewb_sim_batch(cfg, 0, &o, NULL, NULL, NULL), "count must be in [1");
}

static void test_errors(void) {
    ewb_tensor *o = NULL;
    ewb_sim_config c;
    c = cond(); c.rhythm = 3; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "sim_record: rhythm must be 0 (sinus), 1 (AFIB) or 2 (AFLT), got 3");
    c = cond(); c.rhythm = 1; c.pr_ms = 250; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "pr_ms needs sinus rhythm");
    c = cond(); c.flutter_block = 5; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "flutter_block must be 2, 3, 4 or 0");
    c = cond(); c.bbb = 3; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "bbb must be 0 (none), 1 (LBBB) or 2 (RBBB)");
    c = cond(); c.pvc_prob = 0.9; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "pvc_prob must be in [0, 0.5]");
    c = cond(); c.st_territory = 1; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "st_territory and st_mv go together");
    c = cond(); c.lvh_mv = 2; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "lvh_mv must be 0 or in [3.5, 8] mV, got 2");
    c = cond(); c.low_voltage_mv = 0.7; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "low_voltage_mv must be 0 or in (0, 0.5)");
    c = cond(); c.low_voltage_mv = 0.3; c.lvh_mv = 4; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "exclude each other");
    c = cond(); c.lvh_mv = 4; c.set_axis = 1; c.axis_deg = 135; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "lvh_mv needs a frontal axis in [-60, 75] deg, got 135");
    c = cond(); c.lvh_mv = 4; c.set_axis = 1; c.axis_deg = -70; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "got -70");
    c = cond(); c.set_axis = 1; c.axis_deg = 200; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "axis_deg must be in [-180, 180]");
    c = cond(); c.noise = 2; c.snr_pl = 200; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "snr_pl must be in [-20, 80] dB, got 200");
    c = cond(); c.pl_hz = 55; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "pl_hz must be 50 or 60");
    c = cond(); c.sex = 3; FAILS(ewb_sim_record(&c, &o, NULL, NULL, NULL, NULL), "sex must be 0 (drawn), 1 (male) or 2 (female)");
    FAILS(ewb_sim_record(NULL, &o, NULL, NULL, NULL, NULL), "sim_record: config is NULL");
    CHECK(o == NULL, "no output on error");
    CHECK(!strcmp(ewb_sim_label_name(0), "NORM") && !strcmp(ewb_sim_label_name(EWB_SIM_NUM_LABELS - 1), "LVOLT") &&
              !ewb_sim_label_name(EWB_SIM_NUM_LABELS) && !ewb_sim_label_name(-1), "label names");
}

int main(void) {
    ewb_sim_config c = base();
    ewb_tensor *e, *r;
    OK(ewb_sim_ecg(&c, &e, &r));
    CHECK(e->shape[0] == 12 && e->shape[1] == 5000, "shape %s", ewb_s(e));
    const float *x = ewb_f32(e);
    int64_t n = e->shape[1];
    double ein = 0, gold = 0, peak = 0;
    for (int64_t k = 0; k < n; k++) {
        const float *l = x + k;
        ein = fmax(ein, fabs(l[0] + l[2 * n] - l[n]));
        gold = fmax(gold, fabs(l[3 * n] + l[4 * n] + l[5 * n]));
        peak = fmax(peak, fabs(l[n]));
    }
    CHECK(ein < 1e-6 && gold < 1e-6, "I + III - II = %g, aVR + aVL + aVF = %g (mV)", ein, gold);
    CHECK(peak > 0.5 && peak < 2.5, "lead II peak %g mV is physiological", peak);
    CHECK(!strcmp(ewb_lead_name(0), "I") && !strcmp(ewb_lead_name(11), "V6") && !ewb_lead_name(12), "lead names");

    /* R peaks: count and mean RR match the requested rate; each sits on a lead II maximum */
    const int64_t *pk = ewb_tensor_data(r);
    int64_t np = ewb_tensor_numel(r);
    double rr_mean = (double)(pk[np - 1] - pk[0]) / (np - 1) / c.fs;
    CHECK(fabs(60 / rr_mean - c.hr_mean) < 3, "HR from R peaks %g vs %g bpm", 60 / rr_mean, c.hr_mean);
    CHECK(np >= 11 && np <= 13, "%lld R peaks in 10 s at 72 bpm", (long long)np);
    int on_max = 1;
    for (int64_t i = 0; i < np; i++) {
        int64_t p = pk[i], best = p;
        for (int64_t k = p - 25; k <= p + 25; k++)
            if (k >= 0 && k < n && x[n + k] > x[n + best]) best = k;
        if (llabs(best - p) > 2) on_max = 0;
    }
    CHECK(on_max, "every R peak is within 2 samples of the lead II maximum around it");
    /* segments are nearly isoelectric: PR segment (R - 60 ms) vs ST segment
       (R + 100 ms) in II differ by less than half the smallest ST change a
       condition will add (0.1 mV) */
    double st = 0;
    for (int64_t i = 1; i + 1 < np; i++) st = fmax(st, fabs(x[n + pk[i] - 30] - x[n + pk[i] + 50]));
    CHECK(st < 0.05, "PR vs ST level differ by %g mV", st);

    /* reproducibility: (seed, index) fixes the record */
    ewb_tensor *e2, *r2, *e3, *r3;
    OK(ewb_sim_ecg(&c, &e2, &r2));
    CHECK(max_rel_err(e, e2) == 0, "same seed and index: identical");
    c.index = 4;
    OK(ewb_sim_ecg(&c, &e3, &r3));
    CHECK(max_rel_err(e, e3) > 1e-3, "another index: another record");

    /* heart-rate variability: instantaneous HR std near the request */
    c = base();
    c.seconds = 120; c.hr_mean = 60; c.hr_std = 4;
    ewb_tensor *e4, *r4;
    OK(ewb_sim_ecg(&c, &e4, &r4));
    pk = ewb_tensor_data(r4);
    np = ewb_tensor_numel(r4);
    double m = 0, v = 0;
    for (int64_t i = 1; i < np; i++) m += 60 * c.fs / (pk[i] - pk[i - 1]) / (np - 1);
    for (int64_t i = 1; i < np; i++) { double h = 60 * c.fs / (pk[i] - pk[i - 1]) - m; v += h * h / (np - 2); }
    CHECK(fabs(sqrt(v) - 4) < 1.5, "HR std %g bpm vs 4 requested", sqrt(v));

    /* the RR generator: mean and std exact, and its periodogram puts the
       requested LF/HF ratio into the 0.1 and 0.25 Hz bands (the phases are
       random but the magnitudes are the spectrum's, so this is tight) */
    for (int q = 0; q < 2; q++) {
        double want = q ? 2.0 : 0.5;
        ewb_tensor *rt;
        OK(ewb_sim_rr(&rt, 512, 60, 3, want, 5));
        double xs[512], mu = 0, var = 0;
        for (int t = 0; t < 512; t++) { xs[t] = ewb_f32(rt)[t]; mu += xs[t] / 512; }
        for (int t = 0; t < 512; t++) { var += (xs[t] - mu) * (xs[t] - mu) / 511; xs[t] -= mu; }
        double rr_std = 60.0 * 3 / (60 * 60);
        CHECK(fabs(mu - 1.0) < 1e-5 && fabs(sqrt(var) - rr_std) < 1e-5, "RR mean %g s, std %g s", mu, sqrt(var));
        double ratio = band_power(xs, 512, 0.05, 0.15) / band_power(xs, 512, 0.2, 0.3);
        CHECK(fabs(ratio / want - 1) < 0.02, "generator LF/HF %g for %g", ratio, want);
        ewb_tensor_free(rt);
    }
    /* the ECG's own beat-to-beat tachogram follows the request too, more
       loosely: beats sample the RR process about once a second and hold it
       (and so does this test's resampling), damping 0.25 Hz more than 0.1 Hz */
    double low = lf_hf_of(0.5), high = lf_hf_of(2.0);
    CHECK(high / low > 2.5 && high / low < 6.5, "ECG LF/HF scales with the request: %g / %g", high, low);
    CHECK(low > 0.5 && high > 2.0, "hold damping raises LF/HF: %g, %g", low, high);

    /* errors */
    ewb_tensor *o = NULL;
    c = base(); c.fs = 10;
    FAILS(ewb_sim_ecg(&c, &o, NULL), "sim_ecg: fs must be in [50, 10000] Hz, got 10");
    c = base(); c.hr_mean = 400;
    FAILS(ewb_sim_ecg(&c, &o, NULL), "hr_mean must be in [20, 250] bpm");
    c = base(); c.seconds = -1;
    FAILS(ewb_sim_ecg(&c, &o, NULL), "seconds must be in (0, 3600]");
    test_conditions();
    test_noise();
    test_baseline();
    test_normals();
    test_batch();
    test_errors();
    ewb_tensor *list[] = {e, r, e2, r2, e3, r3, e4, r4};
    for (int i = 0; i < 8; i++) ewb_tensor_free(list[i]);
    CHECK(ewb_mem_current() == 0, "memory released");
    return check_report();
}
