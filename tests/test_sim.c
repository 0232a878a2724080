/* test_sim.c: the ECGSYN dipole simulator: Einthoven's and Goldberger's
 * identities, heart rate and variability against the request, the RR
 * spectrum's LF/HF balance, R peaks on lead II maxima, isoelectric
 * segments, reproducibility, and argument errors. */
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
    ewb_tensor *list[] = {e, r, e2, r2, e3, r3, e4, r4};
    for (int i = 0; i < 8; i++) ewb_tensor_free(list[i]);
    CHECK(ewb_mem_current() == 0, "memory released");
    return check_report();
}
