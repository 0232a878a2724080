/* signal.c: ECG signal processing: Butterworth and notch filters, baseline
 * removal, resampling, standardisation, Pan-Tompkins R-peak detection,
 * rhythm measures and wave delineation.
 *
 * These are hand-written because the dependency list has no DSP library
 * (oneDNN has no IIR filters; pulling in liquid-dsp or similar for a few
 * hundred lines would be a new dependency on every machine). They follow
 * scipy.signal's definitions so results can be compared with it:
 *  - butter(): analog Butterworth prototype, frequency prewarping, the
 *    bilinear transform, poles grouped into second-order sections;
 *  - iirnotch(), sosfilt() (transposed direct form II, zero state) and
 *    sosfiltfilt() (odd extension of 3*(2*nsec+1) samples, steady-state
 *    initial conditions scaled by the first sample, forward then backward).
 * All arithmetic is in double; tensors are f32 in and out.
 *
 * Shapes: signals are (..., N); every leading index is one row. */
#include "internal.h"
#include <complex.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* ------------------------------------------------------------ helpers */

/* x as a contiguous f32 tensor of rows: sets *rows, *n; new reference */
static ewb_tensor *rows_of(const char *op, ewb_tensor *x, int64_t *rows, int64_t *n) {
    if (!x) { ewb_error("%s: signal is NULL", op); return NULL; }
    if (ewb_check_f32(op, x)) return NULL;
    if (x->ndim < 1) { ewb_error("%s: need a signal (..., samples), got %s", op, ewb_s(x)); return NULL; }
    *n = x->shape[x->ndim - 1];
    *rows = *n ? ewb_tensor_numel(x) / *n : 0;
    return ewb_contig_or_self(x);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of v[0..n) (reorders v); NaN if n == 0 */
static double median(double *v, int64_t n) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------ filter design */

double ewb_sos_gain(const double *sos, int nsec, double f, double fs) {
    double complex z1 = cexp(-I * 2 * PI * f / fs), z2 = z1 * z1, h = 1;
    for (int s = 0; s < nsec; s++) {
        const double *c = sos + 6 * s;
        h *= (c[0] + c[1] * z1 + c[2] * z2) / (c[3] + c[4] * z1 + c[5] * z2);
    }
    return cabs(h);
}

int ewb_butter_sos(int order, int kind, double f1, double f2, double fs, double *sos, int *nsec) {
    if (order < 1 || order > 10) return ewb_error("butter: order must be in [1, 10], got %d", order);
    if (kind < 0 || kind > 3) return ewb_error("butter: kind must be 0 lowpass, 1 highpass, 2 bandpass, 3 bandstop, got %d", kind);
    if (!(fs > 0)) return ewb_error("butter: fs must be > 0, got %g", fs);
    int band = kind >= 2;
    if (!(f1 > 0 && f1 < fs / 2) || (band && !(f2 > f1 && f2 < fs / 2)))
        return ewb_error("butter: need 0 < f1%s < fs/2 = %g, got f1 = %g%s%g", band ? " < f2" : "", fs / 2, f1,
                         band ? ", f2 = " : "", band ? f2 : 0.0);
    /* analog edges, prewarped so the digital filter has its -3 dB points at f1, f2 */
    double W1 = 2 * fs * tan(PI * f1 / fs), W2 = band ? 2 * fs * tan(PI * f2 / fs) : 0;
    double bw = W2 - W1, w0 = sqrt(W1 * W2);
    double complex p[20];
    int np = 0;
    for (int k = 0; k < order; k++) {
        double complex proto = cexp(I * PI * (2 * k + order + 1) / (2.0 * order)); /* left half plane */
        if (kind == EWB_BUTTER_LOWPASS) p[np++] = proto * W1;
        else if (kind == EWB_BUTTER_HIGHPASS) p[np++] = W1 / proto;
        else {
            double complex a = kind == EWB_BUTTER_BANDPASS ? proto * bw / 2 : bw / 2 / proto;
            double complex r = csqrt(a * a - w0 * w0);
            p[np++] = a + r;
            p[np++] = a - r;
        }
    }
    for (int i = 0; i < np; i++) p[i] = (2 * fs + p[i]) / (2 * fs - p[i]); /* bilinear transform */
    /* group poles: each pole with imag > 0 with its conjugate, real poles in pairs */
    double re[20];
    int nre = 0, ns = 0;
    for (int i = 0; i < np; i++) {
        double tol = 1e-10 * (1 + cabs(p[i]));
        if (fabs(cimag(p[i])) <= tol) re[nre++] = creal(p[i]);
        else if (cimag(p[i]) > 0) {
            double *c = sos + 6 * ns++;
            c[3] = 1, c[4] = -2 * creal(p[i]), c[5] = creal(p[i]) * creal(p[i]) + cimag(p[i]) * cimag(p[i]);
        }
    }
    for (int i = 0; i < nre; i += 2) {
        double *c = sos + 6 * ns++;
        if (i + 1 < nre) c[3] = 1, c[4] = -(re[i] + re[i + 1]), c[5] = re[i] * re[i + 1];
        else c[3] = 1, c[4] = -re[i], c[5] = 0;
    }
    /* zeros: lowpass at z = -1, highpass at +1, bandpass one of each per
       section, bandstop on the unit circle at the centre frequency */
    double w0d = 2 * atan(w0 / (2 * fs)), ref = 0;
    for (int s = 0; s < ns; s++) {
        double *c = sos + 6 * s;
        int first = c[5] == 0;
        if (kind == EWB_BUTTER_LOWPASS) c[0] = 1, c[1] = first ? 1 : 2, c[2] = first ? 0 : 1;
        else if (kind == EWB_BUTTER_HIGHPASS) c[0] = 1, c[1] = first ? -1 : -2, c[2] = first ? 0 : 1;
        else if (kind == EWB_BUTTER_BANDPASS) c[0] = 1, c[1] = 0, c[2] = -1;
        else c[0] = 1, c[1] = -2 * cos(w0d), c[2] = 1;
    }
    /* gain: a Butterworth filter's passband peak is exactly 1, at DC (low-pass,
       band-stop), Nyquist (high-pass) or the centre frequency (band-pass) */
    if (kind == EWB_BUTTER_HIGHPASS) ref = fs / 2;
    else if (kind == EWB_BUTTER_BANDPASS) ref = w0d * fs / (2 * PI);
    double g = ewb_sos_gain(sos, ns, ref, fs);
    for (int j = 0; j < 3; j++) sos[j] /= g;
    *nsec = ns;
    return 0;
}

int ewb_notch_sos(double f0, double q, double fs, double *sos) {
    if (!(fs > 0) || !(f0 > 0 && f0 < fs / 2)) return ewb_error("notch: need 0 < f0 < fs/2, got f0 = %g, fs = %g", f0, fs);
    if (!(q > 0)) return ewb_error("notch: quality q must be > 0, got %g", q);
    double w0 = 2 * PI * f0 / fs, beta = tan(w0 / q / 2), g = 1 / (1 + beta);
    sos[0] = g, sos[1] = -2 * g * cos(w0), sos[2] = g;
    sos[3] = 1, sos[4] = -2 * g * cos(w0), sos[5] = 2 * g - 1;
    return 0;
}

/* ------------------------------------------------------------ filtering */

/* in place over x[0..n), transposed direct form II; zi (2 per section) is the
   initial state and is overwritten */
static void sosfilt_row(const double *sos, int nsec, double *x, int64_t n, double *zi) {
    for (int s = 0; s < nsec; s++) {
        const double *c = sos + 6 * s;
        double b0 = c[0] / c[3], b1 = c[1] / c[3], b2 = c[2] / c[3], a1 = c[4] / c[3], a2 = c[5] / c[3];
        double z0 = zi[2 * s], z1 = zi[2 * s + 1];
        for (int64_t t = 0; t < n; t++) {
            double xi = x[t], y = b0 * xi + z0;
            z0 = b1 * xi - a1 * y + z1;
            z1 = b2 * xi - a2 * y;
            x[t] = y;
        }
    }
}

/* steady state of each section for a unit step at the cascade's input
   (scipy.signal.sosfilt_zi): section s sees a constant input u, its output is
   u*H_s(1), and the transposed-DF-II state is z1 = (b2 - a2 y), z0 = b1 - a1 y + z1 */
static void sos_zi(const double *sos, int nsec, double *zi) {
    double u = 1;
    for (int s = 0; s < nsec; s++) {
        const double *c = sos + 6 * s;
        double b0 = c[0] / c[3], b1 = c[1] / c[3], b2 = c[2] / c[3], a1 = c[4] / c[3], a2 = c[5] / c[3];
        double y = u * (b0 + b1 + b2) / (1 + a1 + a2);
        zi[2 * s + 1] = b2 * u - a2 * y;
        zi[2 * s] = b1 * u - a1 * y + zi[2 * s + 1];
        u = y;
    }
}

static int64_t filtfilt_padlen(const double *sos, int nsec) {
    int zb = 0, za = 0;
    for (int s = 0; s < nsec; s++) zb += sos[6 * s + 2] == 0, za += sos[6 * s + 5] == 0;
    return 3 * (2 * nsec + 1 - (zb < za ? zb : za));
}

/* zero-phase filtering of x[0..n) in place; ext has room for n + 2*pad */
static void filtfilt_row(const double *sos, int nsec, double *x, int64_t n, int64_t pad, double *ext) {
    double zi0[20], zi[20];
    sos_zi(sos, nsec, zi0);
    for (int64_t i = 0; i < pad; i++) {
        ext[i] = 2 * x[0] - x[pad - i];
        ext[pad + n + i] = 2 * x[n - 1] - x[n - 2 - i];
    }
    memcpy(ext + pad, x, sizeof *x * (size_t)n);
    int64_t m = n + 2 * pad;
    for (int i = 0; i < 2 * nsec; i++) zi[i] = zi0[i] * ext[0];
    sosfilt_row(sos, nsec, ext, m, zi);
    for (int64_t i = 0; i < m / 2; i++) { double t = ext[i]; ext[i] = ext[m - 1 - i]; ext[m - 1 - i] = t; }
    for (int i = 0; i < 2 * nsec; i++) zi[i] = zi0[i] * ext[0];
    sosfilt_row(sos, nsec, ext, m, zi);
    for (int64_t i = 0; i < n; i++) x[i] = ext[m - 1 - pad - i];
}

/* filter every row of x (rows, n) in double; buf scratch per row */
static int filter_rows(const char *op, ewb_tensor *x, const double *sos, int nsec, int zero_phase, ewb_tensor **out) {
    if (!out) return ewb_error("%s: out is NULL", op);
    if (nsec < 1 || nsec > 10) return ewb_error("%s: need 1..10 sections, got %d", op, nsec);
    for (int s = 0; s < nsec; s++)
        if (sos[6 * s + 3] == 0) return ewb_error("%s: section %d has a0 = 0", op, s);
    int64_t rows, n;
    ewb_tensor *xc = rows_of(op, x, &rows, &n);
    if (!xc) return -1;
    int64_t pad = zero_phase ? filtfilt_padlen(sos, nsec) : 0;
    if (zero_phase && n <= pad) {
        ewb_tensor_free(xc);
        return ewb_error("%s: zero-phase filtering needs more than %lld samples (3 per filter tap), got %s", op,
                         (long long)pad, ewb_s(x));
    }
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);
    if (!y) { ewb_tensor_free(xc); return -1; }
    const float *src = ewb_f32(xc);
    float *dst = ewb_f32(y);
    int fail = 0;
    #pragma omp parallel for if (rows > 1 && rows * n > 100000)
    for (int64_t r = 0; r < rows; r++) {
        double *buf = malloc(sizeof(double) * (size_t)(2 * n + 2 * pad + 1)), zi[20] = {0};
        if (!buf) { fail = 1; continue; }
        for (int64_t t = 0; t < n; t++) buf[t] = src[r * n + t];
        if (zero_phase) filtfilt_row(sos, nsec, buf, n, pad, buf + n);
        else sosfilt_row(sos, nsec, buf, n, zi);
        for (int64_t t = 0; t < n; t++) dst[r * n + t] = (float)buf[t];
        free(buf);
    }
    ewb_tensor_free(xc);
    if (fail) { ewb_tensor_free(y); return ewb_error("%s: out of memory", op); }
    *out = y;
    return 0;
}

int ewb_sos_filter(ewb_tensor *x, const double *sos, int nsec, int zero_phase, ewb_tensor **out) {
    if (!sos) return ewb_error("sos_filter: sos is NULL");
    return filter_rows("sos_filter", x, sos, nsec, zero_phase, out);
}

int ewb_butter_filter(ewb_tensor *x, double fs, int kind, double f1, double f2, int order, int zero_phase,
                      ewb_tensor **out) {
    double sos[60];
    int ns;
    EWB_TRY(ewb_butter_sos(order, kind, f1, f2, fs, sos, &ns));
    return filter_rows("butter_filter", x, sos, ns, zero_phase, out);
}

int ewb_notch_filter(ewb_tensor *x, double fs, double f0, double q, int zero_phase, ewb_tensor **out) {
    double sos[6];
    EWB_TRY(ewb_notch_sos(f0, q, fs, sos));
    return filter_rows("notch_filter", x, sos, 1, zero_phase, out);
}

/* ------------------------------------------------------------ baseline */

/* running median of width w (odd) of x[0..n) into m; near the edges the
   window is cut to the samples inside the record (the median of an even
   count is the mean of the middle two): padding with the end value would
   take a wave cut by the edge (the tail of a QRS) for the baseline. A
   sorted window updated by one insertion and one removal. */
static void running_median(const double *x, int64_t n, int64_t w, double *m, double *win) {
    int64_t h = w / 2, k = 0; /* win[0..k) sorted: x[t-h .. t+h] within the record */
    for (int64_t t = 0; t < n; t++) {
        int64_t ko = t - h - 1;
        if (ko >= 0) { /* remove x[ko] */
            double vo = x[ko];
            int64_t lo = 0, hi = k - 1;
            while (lo < hi) { int64_t mid = (lo + hi) / 2; if (win[mid] < vo) lo = mid + 1; else hi = mid; }
            memmove(win + lo, win + lo + 1, sizeof *win * (size_t)(k - 1 - lo));
            k--;
        }
        for (int64_t ki = t == 0 ? 0 : t + h; ki <= t + h && ki < n; ki++) { /* insert x[ki] */
            double vi = x[ki];
            int64_t lo = 0, hi = k;
            while (lo < hi) { int64_t mid = (lo + hi) / 2; if (win[mid] < vi) lo = mid + 1; else hi = mid; }
            memmove(win + lo + 1, win + lo, sizeof *win * (size_t)(k - lo));
            win[lo] = vi, k++;
        }
        m[t] = k & 1 ? win[k / 2] : 0.5 * (win[k / 2 - 1] + win[k / 2]);
    }
}

int ewb_baseline_remove(ewb_tensor *x, double fs, int method, ewb_tensor **out) {
    if (!(fs > 1)) return ewb_error("baseline_remove: fs must be > 1 Hz, got %g", fs);
    if (method == 0) return ewb_butter_filter(x, fs, EWB_BUTTER_HIGHPASS, 0.5, 0, 2, 1, out);
    if (method != 1) return ewb_error("baseline_remove: method must be 0 (high-pass) or 1 (median), got %d", method);
    if (!out) return ewb_error("baseline_remove: out is NULL");
    int64_t rows, n;
    ewb_tensor *xc = rows_of("baseline_remove", x, &rows, &n);
    if (!xc) return -1;
    int64_t w1 = (int64_t)(0.2 * fs) | 1, w2 = (int64_t)(0.6 * fs) | 1;
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);
    if (!y) { ewb_tensor_free(xc); return -1; }
    int fail = 0;
    #pragma omp parallel for if (rows > 1 && rows * n > 100000)
    for (int64_t r = 0; r < rows; r++) {
        double *a = malloc(sizeof(double) * (size_t)(3 * n + w2));
        if (!a) { fail = 1; continue; }
        double *b = a + n, *c = b + n, *win = c + n;
        const float *src = ewb_f32(xc) + r * n;
        for (int64_t t = 0; t < n; t++) a[t] = src[t];
        running_median(a, n, w1, b, win); /* removes QRS and P */
        running_median(b, n, w2, c, win); /* removes T: what is left is the baseline */
        for (int64_t t = 0; t < n; t++) ewb_f32(y)[r * n + t] = (float)(a[t] - c[t]);
        free(a);
    }
    ewb_tensor_free(xc);
    if (fail) { ewb_tensor_free(y); return ewb_error("baseline_remove: out of memory"); }
    *out = y;
    return 0;
}

/* ------------------------------------------------------------ resampling */

/* Kaiser-windowed sinc, as scipy.signal.resample_poly designs its filter
   (Kaiser beta 5, 10 zero crossings of the lower rate each side), but
   evaluated at arbitrary fractional positions so any two rates work. The
   kernel is tabulated at TAB_RES points per zero crossing and interpolated
   linearly; each output's weights are normalised to sum 1, so a constant
   stays exact. Beyond the ends the signal is extended by odd reflection
   (2 x[0] - x[k]), which keeps constants and linear trends without edge
   transients. */
enum { RS_ZC = 10, TAB_RES = 512 };
static double bessel_i0(double x) {
    double s = 1, t = 1;
    for (int k = 1; k < 50; k++) { t *= (x / (2 * k)) * (x / (2 * k)); s += t; if (t < 1e-17 * s) break; }
    return s;
}

int ewb_resample(ewb_tensor *x, double fs_in, double fs_out, ewb_tensor **out) {
    if (!out) return ewb_error("resample: out is NULL");
    if (!(fs_in > 0) || !(fs_out > 0)) return ewb_error("resample: rates must be > 0, got %g -> %g", fs_in, fs_out);
    int64_t rows, n;
    ewb_tensor *xc = rows_of("resample", x, &rows, &n);
    if (!xc) return -1;
    if (n < 2) { ewb_tensor_free(xc); return ewb_error("resample: need at least 2 samples, got %s", ewb_s(x)); }
    int64_t m = (int64_t)llround((double)n * fs_out / fs_in), shape[EWB_MAX_DIMS];
    if (m < 1) { ewb_tensor_free(xc); return ewb_error("resample: %s at %g Hz gives no samples at %g Hz", ewb_s(x), fs_in, fs_out); }
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = m;
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, shape);
    double *tab = malloc(sizeof(double) * (RS_ZC * TAB_RES + 2));
    if (!y || !tab) { ewb_tensor_free(xc); ewb_tensor_free(y); free(tab); return ewb_error("resample: out of memory"); }
    const double beta = 5.0, i0b = bessel_i0(beta);
    for (int i = 0; i <= RS_ZC * TAB_RES + 1; i++) { /* u in zero crossings */
        double u = (double)i / TAB_RES, v = u / RS_ZC;
        double sinc = u == 0 ? 1 : sin(PI * u) / (PI * u);
        tab[i] = v >= 1 ? 0 : sinc * bessel_i0(beta * sqrt(1 - v * v)) / i0b;
    }
    double step = fs_in / fs_out, fc = fs_out < fs_in ? fs_out / fs_in : 1; /* cutoff, cycles per input sample x 2 */
    double half = RS_ZC / fc;                                                  /* half width in input samples */
    const float *src = ewb_f32(xc);
    float *dst = ewb_f32(y);
    #pragma omp parallel for if (m * rows > 20000)
    for (int64_t j = 0; j < m; j++) {
        double t = j * step, wsum = 0, w[4096];
        int64_t k0 = (int64_t)ceil(t - half), k1 = (int64_t)floor(t + half);
        if (k1 - k0 + 1 > 4096) k1 = k0 + 4095;
        for (int64_t k = k0; k <= k1; k++) {
            double u = fabs(t - k) * fc * TAB_RES;
            int64_t i = (int64_t)u;
            double f = u - i, h = i >= RS_ZC * TAB_RES ? 0 : tab[i] + f * (tab[i + 1] - tab[i]);
            w[k - k0] = h;
            wsum += h;
        }
        for (int64_t r = 0; r < rows; r++) {
            const float *s = src + r * n;
            double acc = 0;
            for (int64_t k = k0; k <= k1; k++) {
                double v;
                if (k < 0) v = 2.0 * s[0] - s[-k < n ? -k : n - 1];
                else if (k >= n) { int64_t q = 2 * (n - 1) - k; v = 2.0 * s[n - 1] - s[q >= 0 ? q : 0]; }
                else v = s[k];
                acc += w[k - k0] * v;
            }
            dst[r * m + j] = (float)(acc / wsum);
        }
    }
    free(tab);
    ewb_tensor_free(xc);
    *out = y;
    return 0;
}

int ewb_standardize(ewb_tensor *x, double eps, ewb_tensor **out) {
    if (!out) return ewb_error("standardize: out is NULL");
    if (!(eps >= 0)) return ewb_error("standardize: eps must be >= 0, got %g", eps);
    int64_t rows, n;
    ewb_tensor *xc = rows_of("standardize", x, &rows, &n);
    if (!xc) return -1;
    ewb_tensor *y = ewb_empty(EWB_DTYPE_F32, x->ndim, x->shape);
    if (!y) { ewb_tensor_free(xc); return -1; }
    for (int64_t r = 0; r < rows; r++) {
        const float *s = ewb_f32(xc) + r * n;
        double mean = 0, var = 0;
        for (int64_t t = 0; t < n; t++) mean += s[t];
        mean /= n;
        for (int64_t t = 0; t < n; t++) var += (s[t] - mean) * (s[t] - mean);
        double sd = sqrt(var / n) + eps;
        for (int64_t t = 0; t < n; t++) ewb_f32(y)[r * n + t] = (float)(sd > 0 ? (s[t] - mean) / sd : 0);
    }
    ewb_tensor_free(xc);
    *out = y;
    return 0;
}

/* ------------------------------------------------------------ R peaks */

/* rows of x filtered into double buffers: out[r*n + t] */
static double *filtered_rows(const float *x, int64_t rows, int64_t n, const double *sos, int nsec) {
    int64_t pad = filtfilt_padlen(sos, nsec);
    double *out = malloc(sizeof(double) * (size_t)(rows * n)), *ext = malloc(sizeof(double) * (size_t)(n + 2 * pad));
    if (!out || !ext) { free(out); free(ext); return NULL; }
    for (int64_t r = 0; r < rows; r++) {
        double *o = out + r * n;
        for (int64_t t = 0; t < n; t++) o[t] = x[r * n + t];
        filtfilt_row(sos, nsec, o, n, pad, ext);
    }
    free(ext);
    return out;
}

/* the signal the R location and the delineation look at: each row less
   its median-filter baseline (200 ms then 600 ms: this keeps the PR and ST
   segments at zero, where a high-pass would shift them by the mean of the
   waves), then a 40 Hz zero-phase low-pass (order 2; skipped below 100 Hz) */
static double *clean_rows(const float *x, int64_t rows, int64_t n, double fs) {
    double sos[60];
    int ns = 0;
    if (fs > 100) ewb_butter_sos(2, EWB_BUTTER_LOWPASS, 40, 0, fs, sos, &ns);
    int64_t w1 = (int64_t)(0.2 * fs) | 1, w2 = (int64_t)(0.6 * fs) | 1, pad = ns ? filtfilt_padlen(sos, ns) : 0;
    double *out = malloc(sizeof(double) * (size_t)(rows * n));
    double *a = malloc(sizeof(double) * (size_t)(4 * n + w2 + 2 * pad));
    if (!out || !a) { free(out); free(a); return NULL; }
    double *b = a + n, *c = b + n, *win = c + n, *ext = win + w2; /* ext: n + 2 pad */
    for (int64_t r = 0; r < rows; r++) {
        double *o = out + r * n;
        for (int64_t t = 0; t < n; t++) a[t] = x[r * n + t];
        running_median(a, n, w1, b, win);
        running_median(b, n, w2, c, win);
        for (int64_t t = 0; t < n; t++) o[t] = a[t] - c[t];
        if (ns && n > pad) filtfilt_row(sos, ns, o, n, pad, ext);
    }
    free(a);
    return out;
}

/* each row through a 40 Hz zero-phase low-pass (order 2; a copy below 100 Hz) */
static double *lowpass_rows(const float *x, int64_t rows, int64_t n, double fs) {
    double sos[60];
    int ns;
    if (fs > 100) {
        ewb_butter_sos(2, EWB_BUTTER_LOWPASS, 40, 0, fs, sos, &ns);
        return filtered_rows(x, rows, n, sos, ns);
    }
    double *out = malloc(sizeof(double) * (size_t)(rows * n));
    for (int64_t i = 0; out && i < rows * n; i++) out[i] = x[i];
    return out;
}

/* largest slope (sqrt of the summed squared slope) within w samples before t */
static double slope_at(const double *sq, int64_t t, int64_t w) {
    double m = 0;
    for (int64_t u = t - w < 0 ? 0 : t - w; u <= t; u++) m = sq[u] > m ? sq[u] : m;
    return sqrt(m);
}

/* Pan & Tompkins (IEEE TBME 32(3), 1985), with zero-phase filters so no
   delay bookkeeping is needed:
     1. band-pass 5-15 Hz (Butterworth order 2, forward-backward);
     2. five-point derivative, squared; with several leads each lead's
        squared slope is divided by its mean so every lead weighs the same,
        then the leads are summed;
     3. moving-window integration over 150 ms (centred; near the record's
        edges the mean of the samples inside it);
     4. local maxima of the integrated signal are QRS candidates; adaptive
        thresholds SPKI/NPKI (THR1 = NPKI + 0.25 (SPKI - NPKI), THR2 = THR1/2),
        learnt on the first 2 s; a 200 ms refractory period (of candidates
        closer than that, only the largest can be a QRS); a candidate
        within 360 ms of the last QRS whose maximal slope is under half the
        last QRS's slope is a T wave; when no QRS comes within 1.66 mean RR
        (of the last 8), search back for the largest candidate above THR2
        whose maximal slope is at least half the last QRS's (an f wave or a
        T wave in a long pause of atrial fibrillation is not);
     5. each QRS is placed at the largest deflection of the clean signal
        (clean_rows; sum over leads of the squared, unit-variance-scaled
        signal) within +-75 ms;
     6. the record's edges: a beat whose deflection peaks outside the
        record is dropped, a QRS cut at its peak by the end is looked for,
        and a first or last beat as small as a T or P wave is dropped. */
int ewb_rpeaks(ewb_tensor *x, double fs, ewb_tensor **out) {
    if (!out) return ewb_error("rpeaks: out is NULL");
    if (!(fs >= 50 && fs <= 20000)) return ewb_error("rpeaks: fs must be in [50, 20000] Hz, got %g", fs);
    if (x && (x->ndim < 1 || x->ndim > 2)) return ewb_error("rpeaks: need (samples) or (leads, samples), got %s", ewb_s(x));
    int64_t rows, n;
    ewb_tensor *xc = rows_of("rpeaks", x, &rows, &n);
    if (!xc) return -1;
    if (n < (int64_t)(fs * 0.5) || rows < 1) {
        ewb_tensor_free(xc);
        return ewb_error("rpeaks: need at least 0.5 s of signal, got %s at %g Hz", ewb_s(x), fs);
    }
    const float *src = ewb_f32(xc);
    double sos[60];
    int ns;
    ewb_butter_sos(2, EWB_BUTTER_BANDPASS, 5, 15, fs, sos, &ns);
    double *bp = filtered_rows(src, rows, n, sos, ns), *clean = clean_rows(src, rows, n, fs);
    double *sq = calloc((size_t)n, sizeof(double)), *mwi = calloc((size_t)n, sizeof(double));
    int64_t *cand = malloc(sizeof(int64_t) * (size_t)n), *qrs = malloc(sizeof(int64_t) * (size_t)n);
    double *lead = malloc(sizeof(double) * (size_t)n);
    if (!bp || !clean || !sq || !mwi || !cand || !qrs || !lead) {
        free(bp); free(clean); free(sq); free(mwi); free(cand); free(qrs); free(lead);
        ewb_tensor_free(xc);
        return ewb_error("rpeaks: out of memory for %s", ewb_s(x));
    }
    /* 2. squared slope, leads summed with equal weight */
    for (int64_t r = 0; r < rows; r++) {
        const double *b = bp + r * n;
        double mean = 0;
        for (int64_t t = 0; t < n; t++) {
            double d = 0;
            if (t >= 2 && t + 2 < n) d = (2 * b[t + 2] + b[t + 1] - b[t - 1] - 2 * b[t - 2]) * fs / 8;
            lead[t] = d * d;
            mean += lead[t];
        }
        mean /= n;
        for (int64_t t = 0; t < n; t++) sq[t] += mean > 0 ? lead[t] / mean : 0;
    }
    /* 3. centred moving-window integration */
    int64_t hw = (int64_t)llround(0.075 * fs);
    double acc = 0;
    for (int64_t t = -hw; t < n + hw; t++) { /* acc = sum sq[t-hw .. t+hw] */
        if (t + hw < n) acc += sq[t + hw];
        if (t - hw - 1 >= 0) acc -= sq[t - hw - 1];
        if (t >= 0 && t < n) mwi[t] = acc / (double)((t + hw < n ? t + hw : n - 1) - (t - hw > 0 ? t - hw : 0) + 1);
    }
    /* 4. candidates and thresholds */
    int64_t nc = 0;
    for (int64_t t = 0; t < n; t++)
        if ((t == 0 || mwi[t] > mwi[t - 1]) && (t == n - 1 || mwi[t] >= mwi[t + 1])) cand[nc++] = t;
    int64_t learn = (int64_t)(2 * fs) < n ? (int64_t)(2 * fs) : n;
    double mx = 0, mean = 0;
    for (int64_t t = 0; t < learn; t++) { mx = mwi[t] > mx ? mwi[t] : mx; mean += mwi[t]; }
    double spki = mx / 3, npki = mean / learn / 2;
    int64_t refr = (int64_t)llround(0.2 * fs), twin = (int64_t)llround(0.36 * fs), sw = (int64_t)llround(0.075 * fs);
    double rr[8];
    int nrr = 0, rri = 0;
    int64_t nq = 0, last = -1;
    double last_slope = 0;
    int64_t ci = 0;
    for (;;) {
        int64_t p = ci < nc ? cand[ci] : n;
        double thr1 = npki + 0.25 * (spki - npki), thr2 = 0.5 * thr1;
        /* search back when the gap since the last QRS is too long */
        if (last >= 0 && nrr >= 2) {
            double rr_avg = 0;
            for (int i = 0; i < nrr; i++) rr_avg += rr[i];
            rr_avg /= nrr;
            if (p - last > 1.66 * rr_avg) {
                int64_t best = -1;
                for (int64_t j = 0; j < ci; j++) {
                    int64_t q = cand[j];
                    if (q > last + refr && q < p - refr && mwi[q] > thr2 && (best < 0 || mwi[q] > mwi[best]) &&
                        slope_at(sq, q, sw) >= 0.5 * last_slope)
                        best = q;
                }
                if (best >= 0) {
                    spki = 0.25 * mwi[best] + 0.75 * spki;
                    rr[rri] = (double)(best - last), rri = (rri + 1) % 8, nrr += nrr < 8;
                    qrs[nq++] = best, last = best, last_slope = slope_at(sq, best, sw);
                    continue; /* re-examine p against the new last QRS */
                }
            }
        }
        if (ci >= nc) break;
        ci++;
        if (last >= 0 && p - last < refr) continue;
        /* of two candidates closer than the refractory period the larger is
           the QRS: a P wave just before a (not yet seen) R must not claim
           the beat and push the R into the refractory period */
        int bigger_follows = 0;
        for (int64_t j = ci; j < nc && cand[j] - p < refr && !bigger_follows; j++) bigger_follows = mwi[cand[j]] > mwi[p];
        if (mwi[p] > thr1 && !bigger_follows) {
            double slope = slope_at(sq, p, sw);
            if (last >= 0 && p - last < twin && slope < 0.5 * last_slope) {
                npki = 0.125 * mwi[p] + 0.875 * npki; /* a T wave */
                continue;
            }
            spki = 0.125 * mwi[p] + 0.875 * spki;
            if (last >= 0) rr[rri] = (double)(p - last), rri = (rri + 1) % 8, nrr += nrr < 8;
            qrs[nq++] = p, last = p, last_slope = slope;
        } else {
            npki = 0.125 * mwi[p] + 0.875 * npki;
        }
    }
    /* the record's end: a QRS cut by it fills only part of its integration
       window and the thresholds, learnt on whole ones, miss it. Energy
       still rising at the last sample, outside the refractory period and
       the T wave's 360 ms, is taken as a beat; the placement and the edge
       rule below keep it only if its deflection peaks inside the record and
       is as large as a QRS's. */
    if (nq >= 1 && n >= 2 && mwi[n - 1] > mwi[n - 2] && n - 1 - qrs[nq - 1] >= twin) qrs[nq++] = n - 1;
    /* 5. place each QRS at its largest deflection */
    memset(sq, 0, sizeof(double) * (size_t)n);
    for (int64_t r = 0; r < rows; r++) {
        const double *c = clean + r * n;
        double var = 0;
        for (int64_t t = 0; t < n; t++) var += c[t] * c[t];
        var /= n;
        for (int64_t t = 0; t < n; t++) sq[t] += var > 0 ? c[t] * c[t] / var : 0;
    }
    int64_t k = 0;
    for (int64_t i = 0; i < nq; i++) {
        int64_t best = qrs[i];
        for (int64_t t = qrs[i] - sw; t <= qrs[i] + sw; t++)
            if (t >= 0 && t < n && sq[t] > sq[best]) best = t;
        /* a deflection still growing at the window's edge that grows on to
           the record's edge peaks outside the record: a beat cut by the
           edge, whose R is not in the record */
        int dir = best <= qrs[i] - sw || best == 0 ? -1 : best >= qrs[i] + sw || best == n - 1 ? 1 : 0;
        int64_t u = best;
        while (dir && u + dir >= 0 && u + dir < n && sq[u + dir] >= sq[u]) u += dir;
        if (dir && (u == 0 || u == n - 1)) continue;
        if (k > 0 && best - qrs[k - 1] < refr) { /* two marks on one beat: keep the larger */
            if (sq[best] > sq[qrs[k - 1]]) qrs[k - 1] = best;
            continue;
        }
        qrs[k++] = best;
    }
    /* the record's edges: the first QRS has none before it to be tested
       against, so the T wave of a beat just before the record passes for a
       QRS, as does the P wave of a beat just after it for the last one.
       Within 0.6 s of its edge, a first or last QRS whose deflection is
       under half the median QRS's (amplitude; a quarter in sq) is such a
       wave. */
    if (k >= 4) {
        for (int64_t i = 0; i < k; i++) lead[i] = sq[qrs[i]];
        double amed = median(lead, k), edge = 0.6 * fs;
        int64_t lo = 0, hi = k;
        if (qrs[0] < edge && sq[qrs[0]] < 0.25 * amed) lo = 1;
        if (qrs[k - 1] > n - 1 - edge && sq[qrs[k - 1]] < 0.25 * amed) hi = k - 1;
        memmove(qrs, qrs + lo, sizeof(int64_t) * (size_t)(hi - lo));
        k = hi - lo;
    }
    ewb_tensor *res = ewb_empty(EWB_DTYPE_I64, 1, &k);
    if (res) memcpy(ewb_tensor_data(res), qrs, sizeof(int64_t) * (size_t)k);
    free(bp); free(clean); free(sq); free(mwi); free(cand); free(qrs); free(lead);
    ewb_tensor_free(xc);
    if (!res) return -1;
    *out = res;
    return 0;
}

/* ------------------------------------------------------------ rhythm */

static int peaks_of(const char *op, ewb_tensor *rp, int64_t **pk, int64_t *np) {
    if (!rp) return ewb_error("%s: rpeaks is NULL", op);
    if (ewb_check_alive(op, rp)) return -1;
    if (rp->ndim != 1 || (rp->dtype != EWB_DTYPE_I64 && rp->dtype != EWB_DTYPE_I32))
        return ewb_error("%s: rpeaks must be a 1-D i64 or i32 tensor, got %s", op, ewb_s(rp));
    *np = rp->shape[0];
    *pk = malloc(sizeof(int64_t) * (size_t)(*np + 1));
    for (int64_t i = 0; i < *np; i++) {
        int64_t idx = i;
        double v;
        ewb_tensor_get(rp, &idx, &v);
        (*pk)[i] = (int64_t)v;
        if (i > 0 && (*pk)[i] <= (*pk)[i - 1]) {
            long long a = (long long)(*pk)[i], b = (long long)(*pk)[i - 1];
            free(*pk);
            return ewb_error("%s: rpeaks must be increasing, got %lld after %lld", op, a, b);
        }
    }
    return 0;
}

int ewb_rhythm_measures(ewb_tensor *rpeaks, double fs, ewb_rhythm *out) {
    if (!out) return ewb_error("rhythm_measures: out is NULL");
    if (!(fs > 0)) return ewb_error("rhythm_measures: fs must be > 0, got %g", fs);
    int64_t *pk, np;
    EWB_TRY(peaks_of("rhythm_measures", rpeaks, &pk, &np));
    memset(out, 0, sizeof *out);
    out->nbeats = np;
    out->hr_bpm = out->rr_mean_ms = out->rr_median_ms = out->sdnn_ms = out->rmssd_ms = out->rr_cv = NAN;
    if (np >= 2) {
        int64_t m = np - 1;
        double *rr = malloc(sizeof(double) * (size_t)m), mean = 0, var = 0, ss = 0;
        for (int64_t i = 0; i < m; i++) { rr[i] = 1000.0 * (pk[i + 1] - pk[i]) / fs; mean += rr[i]; }
        mean /= m;
        for (int64_t i = 0; i < m; i++) var += (rr[i] - mean) * (rr[i] - mean);
        for (int64_t i = 1; i < m; i++) ss += (rr[i] - rr[i - 1]) * (rr[i] - rr[i - 1]);
        out->rr_mean_ms = mean;
        out->hr_bpm = 60000.0 / mean;
        out->sdnn_ms = m > 1 ? sqrt(var / (m - 1)) : 0;
        out->rmssd_ms = m > 1 ? sqrt(ss / (m - 1)) : NAN;
        out->rr_cv = out->sdnn_ms / mean;
        out->rr_median_ms = median(rr, m);
        free(rr);
    }
    free(pk);
    return 0;
}

/* ------------------------------------------------------------ delineation */

/* The delineator, stage by stage:
     1. each lead through a 40 Hz low-pass, then an isoelectric correction:
        each lead less its level at one PR-segment point per beat (the
        flattest 20 ms before the QRS), joined linearly; a high-pass would
        shift the segments by the mean of the waves;
     2. the spatial signal (spatial_components): the vectorcardiogram by the
        inverse Dower transform with the 12 standard leads, else the leads;
        E(t) its magnitude, a wave being a bump of E whatever its polarity
        in each lead, V and A the magnitudes of its first and second
        derivatives;
     3. QRS onset and offset per beat (qrs_bounds): 5% of the QRS's peak
        magnitude, with atrial activity and the ST segment kept out;
     4. T: E's maximum from QRS offset + 30 ms to R + 0.62 RR; its offset by
        the tangent method within 150 ms after the peak (the tangent to E at
        its steepest point meeting E's local minimum; centre + 2 sigma for a
        Gaussian wave);
     5. P: E's maximum from R - min(0.45 RR, 400 ms) (or the previous T
        offset) to QRS onset - 10 ms, when it is an interior local maximum
        rising at least 4% of the QRS peak above the window's minimum and
        the window holds no second bump like it (second_bump); onset and
        offset by tangents. Then P waves must recur at one PR interval
        (see the summary), which tells sinus P waves from f waves;
     6. intervals are medians over beats: PR = QRS onset - P onset, QRS =
        offset - onset, QT = T offset - QRS onset; QTc by Bazett QT/sqrt(RR)
        and Fridericia QT/cbrt(RR), RR the median in s. The frontal axis is
        atan2(2 aVF / sqrt 3, I) of the net QRS areas (onset to offset, above
        the isoelectric level) summed over beats: with Einthoven's
        equilateral triangle, aVF = (sqrt 3 / 2) H_y and I = H_x. */
typedef struct { const double *E, *dE; int64_t n; } env;

static double win_min(const env *e, int64_t a, int64_t b) {
    double m = INFINITY;
    for (int64_t t = a < 0 ? 0 : a; t <= b && t < e->n; t++) m = e->E[t] < m ? e->E[t] : m;
    return m;
}
static int64_t win_argmax(const env *e, int64_t a, int64_t b) {
    int64_t best = -1;
    for (int64_t t = a < 0 ? 0 : a; t <= b && t < e->n; t++)
        if (best < 0 || e->E[t] > e->E[best]) best = t;
    return best;
}
/* rising (dir = 1) or falling (dir = -1) tangent over [a, b] meeting `level`:
   fractional sample, NaN if no slope in that direction */
static double tangent(const env *e, int64_t a, int64_t b, double level, int dir) {
    int64_t best = -1;
    for (int64_t t = a < 1 ? 1 : a; t <= b && t < e->n - 1; t++)
        if (best < 0 || dir * e->dE[t] > dir * e->dE[best]) best = t;
    if (best < 0 || !(dir * e->dE[best] > 0)) return NAN;
    return (double)best - (e->E[best] - level) / e->dE[best];
}

/* Dower's matrix (Dower et al. 1980), rows V1..V6, I, II, columns X, Y, Z:
   the leads a dipole (X, Y, Z) produces. */
static const double DOWER[8][3] = {
    {-0.515, 0.157, -0.917}, {0.044, 0.164, -1.387}, {0.882, 0.098, -1.277}, {1.213, 0.127, -0.601},
    {1.125, 0.127, -0.086},  {0.831, 0.076, 0.230},  {0.632, -0.235, 0.059}, {0.235, 1.066, -0.132},
};

/* The multi-lead signal the boundaries are measured on, (K, n). With the 12
   standard leads (I and aVF at rows 0 and 5) it is the vectorcardiogram by
   the inverse Dower transform, the least-squares dipole (D'D)^-1 D' l of the
   eight independent leads V1-V6, I, II (Edenbrandt & Pahlm 1988 derived the
   clinical inverse Dower matrix the same way): its magnitude is the heart
   vector's, whatever the direction, so one threshold fits every axis and
   every conduction pattern. Otherwise the leads themselves (K = rows). */
static double *spatial_components(const double *y, int64_t rows, int64_t n, int lead_i, int lead_avf, int *K) {
    if (!(rows == 12 && lead_i == 0 && lead_avf == 5)) {
        double *c = malloc(sizeof(double) * (size_t)(rows * n));
        if (c) memcpy(c, y, sizeof(double) * (size_t)(rows * n));
        *K = (int)rows;
        return c;
    }
    double G[3][3] = {{0}}, Gi[3][3], Pm[3][8];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int r = 0; r < 8; r++) G[i][j] += DOWER[r][i] * DOWER[r][j];
    double det = G[0][0] * (G[1][1] * G[2][2] - G[1][2] * G[2][1]) - G[0][1] * (G[1][0] * G[2][2] - G[1][2] * G[2][0]) +
                 G[0][2] * (G[1][0] * G[2][1] - G[1][1] * G[2][0]);
    for (int i = 0; i < 3; i++) /* inverse by cofactors (G is symmetric) */
        for (int j = 0; j < 3; j++) {
            int i1 = (j + 1) % 3, i2 = (j + 2) % 3, j1 = (i + 1) % 3, j2 = (i + 2) % 3;
            Gi[i][j] = (G[i1][j1] * G[i2][j2] - G[i1][j2] * G[i2][j1]) / det;
        }
    for (int i = 0; i < 3; i++)
        for (int r = 0; r < 8; r++) {
            Pm[i][r] = 0;
            for (int j = 0; j < 3; j++) Pm[i][r] += Gi[i][j] * DOWER[r][j];
        }
    static const int ROW[8] = {6, 7, 8, 9, 10, 11, 0, 1}; /* V1..V6, I, II in the standard order */
    double *c = calloc((size_t)(3 * n), sizeof(double));
    if (!c) return NULL;
    for (int i = 0; i < 3; i++)
        for (int r = 0; r < 8; r++)
            for (int64_t t = 0; t < n; t++) c[i * n + t] += Pm[i][r] * y[ROW[r] * n + t];
    *K = 3;
    return c;
}

/* per sample: E the magnitude of the K components, V the magnitude of their
   slope (spatial velocity) and A of their second derivative (spatial
   acceleration), the derivatives by the 5-point least-squares filter */
static void magnitudes(const double *c, int K, int64_t n, double *E, double *V, double *A) {
    double *d = malloc(sizeof(double) * (size_t)(K * n));
    for (int64_t t = 0; t < n; t++) E[t] = V[t] = A[t] = 0;
    for (int k = 0; k < K && d; k++) {
        const double *x = c + k * n;
        double *dx = d + k * n;
        for (int64_t t = 0; t < n; t++) {
            E[t] += x[t] * x[t];
            dx[t] = t >= 2 && t + 2 < n ? (2 * x[t + 2] + x[t + 1] - x[t - 1] - 2 * x[t - 2]) / 10 : 0;
            V[t] += dx[t] * dx[t];
        }
        for (int64_t t = 2; t + 2 < n; t++) {
            double a = (2 * dx[t + 2] + dx[t + 1] - dx[t - 1] - 2 * dx[t - 2]) / 10;
            A[t] += a * a;
        }
    }
    for (int64_t t = 0; t < n; t++) E[t] = sqrt(E[t]), V[t] = sqrt(V[t]), A[t] = sqrt(A[t]);
    free(d);
}

/* first sample from `from` in direction dir (+1 / -1), at most `lim` samples
   away, where f stays below thr for `hold` more samples; -1 if none */
static int64_t quiet_from(const double *f, int64_t n, int64_t from, int dir, int64_t lim, double thr, int64_t hold) {
    int64_t run = 0;
    for (int64_t k = 0; k <= lim; k++) {
        int64_t t = from + dir * k;
        if (t < 2 || t >= n - 2) return -1;
        run = f[t] < thr ? run + 1 : 0;
        if (run > hold) return t - dir * hold;
    }
    return -1;
}

/* QRS onset and offset (fractional samples) of the beat at R peak pk, on the
   spatial signal c (K, n) with magnitude E, velocity V and acceleration A.
   The simulator's truth (core/sim.c) puts them where the QRS's own vector
   magnitude crosses 5% of its peak, so that is what is measured, with the
   atrial activity before and the ST segment after kept out of it:
     onset: walking back from the peak of E, the first sample below 5% of it
       (E is isoelectric-corrected, so the PR segment is at 0); when f or
       flutter waves hold E above that level, the onset moves forward to
       where the QRS's slope starts (V above 20% of its peak).
     offset: first the ST segment is found, where the complex falls quiet
       for 10 ms: velocity below 7% of its peak (q_v) or acceleration below
       5% of its peak (q_a). Two estimates of the J point follow, biased in
       opposite directions: (a) the earlier quiet point, late when a slow
       terminal component (LBBB) keeps the slope up; (b) walking back from
       q_v (q_a if none) to the last sample whose vector differs from the
       ST segment's by more than 5% of the QRS peak, the magnitude criterion
       with the ST level in place of 0, early when the ST segment slopes
       (ST depression). The offset is their mean. */
static void qrs_bounds(const env *e, const double *c, int K, const double *V, const double *A, int64_t pk, double ms,
                       double rr_prev, double rr_next, int resid, double *on, double *off) {
    *on = *off = NAN;
    int64_t n = e->n;
    int64_t r = win_argmax(e, pk - (int64_t)(60 * ms), pk + (int64_t)(60 * ms));
    int64_t pre = (int64_t)fmin(150 * ms, 0.35 * rr_prev), post = (int64_t)fmin(200 * ms, 0.4 * rr_next);
    double Er = e->E[r], Vpk = 0, Apk = 0;
    for (int64_t t = r - pre; t <= r + post; t++)
        if (t >= 0 && t < n) Vpk = fmax(Vpk, V[t]), Apk = fmax(Apk, A[t]);
    /* onset */
    int64_t a = quiet_from(e->E, n, r, -1, pre, 0.05 * Er, 0);
    if (a < 0) return;
    if (V[a] < 0.2 * Vpk) {
        while (a < r && V[a] < 0.2 * Vpk) a++;
        *on = (double)a;
    } else {
        *on = a + (0.05 * Er - e->E[a]) / (e->E[a + 1] - e->E[a] + 1e-300); /* E rises through 5% in (a, a+1) */
    }
    /* offset */
    int64_t hold = (int64_t)(10 * ms);
    double fv = 0, fa = 0; /* the residual activity's largest velocity and acceleration before the onset */
    for (int64_t u = a - (int64_t)(80 * ms); resid && u < a - (int64_t)(10 * ms); u++)
        if (u >= 0) fv = fmax(fv, V[u]), fa = fmax(fa, A[u]);
    int64_t qv = quiet_from(V, n, r, 1, post, fmax(0.07 * Vpk, fv), hold);
    int64_t qa = quiet_from(A, n, r, 1, post, fmax(0.05 * Apk, fa), hold);
    if (qv < 0 && qa < 0) { *on = NAN; return; }
    int64_t quiet = qv < 0 ? qa : qa < 0 ? qv : qv < qa ? qv : qa; /* (a) */
    int64_t q = qv >= 0 ? qv : qa, t = q;                            /* (b) */
    for (; t > r; t--) {
        double s2 = 0;
        for (int k = 0; k < K; k++) s2 += (c[k * n + t] - c[k * n + q]) * (c[k * n + t] - c[k * n + q]);
        if (sqrt(s2) > 0.05 * Er) break;
    }
    *off = 0.5 * ((double)quiet + (double)t);
}

/* ------------------------------------------------------------ delineation passes */

/* One delineation: the leads y (rows, n) after the isoelectric correction,
   the spatial signal comp (K, n) with its magnitude E, slope dE, velocity V
   and acceleration A, and the 8 points of each beat (pts, (np, 8)). */
typedef struct {
    int64_t rows, n, np;
    const int64_t *pk;
    double fs, ms;
    int lead_i, lead_avf, K;
    double *y, *comp, *E, *dE, *V, *A, *pts, *tmp;
    double tq_on, tq_off; /* QRS onset and offset from the representative beat (samples from R), or NaN */
} dl_state;

static void dl_free(dl_state *s) {
    free(s->y); free(s->comp); free(s->E); free(s->dE); free(s->V); free(s->A); free(s->pts); free(s->tmp);
}

/* isoelectric baseline: per beat, the centre of the flattest 20 ms (least
   spatial velocity summed over the window) between R - min(250 ms, 0.4 RR)
   and R - 20 ms is a PR- (or TP-) segment point: a stretch, not a sample, so
   the top of a wave (flat for an instant, like the first hump of a notched
   LBBB complex) is not taken for it; each lead's level there, joined
   linearly from beat to beat, is subtracted. E and dE are scratch. */
static void iso_correct(dl_state *s) {
    int64_t n = s->n, rows = s->rows, np = s->np;
    const int64_t *pk = s->pk;
    double *y = s->y, *E = s->E, *dE = s->dE, fs = s->fs;
    for (int64_t t = 0; t < n; t++) {
        double q = 0;
        for (int64_t r = 0; r < rows; r++) {
            const double *yr = y + r * n;
            double d = t >= 2 && t + 2 < n ? 2 * yr[t + 2] + yr[t + 1] - yr[t - 1] - 2 * yr[t - 2] : 0;
            q += d * d;
        }
        dE[t] = q; /* spatial velocity squared */
    }
    int64_t hw = (int64_t)(0.01 * fs);
    for (int64_t t = 0; t < n; t++) { /* summed over +-10 ms */
        double q = 0;
        for (int64_t u = t - hw; u <= t + hw; u++) q += dE[u < 0 ? 0 : u >= n ? n - 1 : u];
        E[t] = q;
    }
    int64_t *iso = malloc(sizeof(int64_t) * (size_t)(np + 1)), niso = 0;
    for (int64_t b = 0; b < np && iso; b++) {
        double rr = b > 0 ? (double)(pk[b] - pk[b - 1]) : b + 1 < np ? (double)(pk[b + 1] - pk[b]) : fs;
        int64_t a = pk[b] - (int64_t)fmin(0.25 * fs, 0.4 * rr), z = pk[b] - (int64_t)(0.02 * fs), best = -1;
        for (int64_t t = a < 2 ? 2 : a; t <= z && t < n - 2; t++)
            if (best < 0 || E[t] < E[best]) best = t;
        if (best >= 0 && (niso == 0 || best > iso[niso - 1])) iso[niso++] = best;
    }
    for (int64_t r = 0; r < rows && niso > 0; r++) {
        double *yr = y + r * n, lv, *lvl = s->tmp; /* levels at the iso points, averaged over +-2 samples */
        int64_t k2 = 0;
        for (int64_t i = 0; i < niso; i++) {
            double q = 0;
            for (int64_t u = iso[i] - 2; u <= iso[i] + 2; u++) q += yr[u];
            lvl[i] = q / 5;
        }
        for (int64_t t = 0; t < n; t++) {
            while (k2 < niso && iso[k2] <= t) k2++;
            if (k2 == 0) lv = lvl[0];
            else if (k2 == niso) lv = lvl[niso - 1];
            else lv = lvl[k2 - 1] + (lvl[k2] - lvl[k2 - 1]) * (double)(t - iso[k2 - 1]) / (double)(iso[k2] - iso[k2 - 1]);
            yr[t] -= lv;
        }
    }
    free(iso);
}

/* whether E has, in [a, b] besides its maximum at pp, another bump: a
   maximum over +-w samples standing out at least h above E on both sides
   of it within the window (its prominence there). A P wave is a lone bump
   before the QRS, while the f waves of atrial fibrillation are several
   alike; the +-w (20 ms) keeps the narrow bumps of noise out of it. */
static int second_bump(const env *e, int64_t a, int64_t b, int64_t pp, double h, int64_t w) {
    const double *E = e->E;
    for (int64_t q = a + 1; q < b; q++) {
        if (q == pp || !(E[q] > E[q - 1] && E[q] >= E[q + 1])) continue;
        if (E[q] < E[win_argmax(e, q - w, q + w)]) continue;
        double left = win_min(e, a, q), right = win_min(e, q, b);
        if (E[q] - fmax(left, right) >= h) return 1;
    }
    return 0;
}

/* the P wave's threshold is 4% of the QRS peak, the QRS peak taken at most
   P_QRS_CAP mV (a normal QRS): it follows the recording's gain and low
   voltage, but the large QRS of LVH says nothing of the atria */
static const double P_QRS_CAP = 2.0;

/* the points of every beat (stages 3-5) on the current spatial signal */
static void beats_pass(dl_state *s) {
    int64_t n = s->n, np = s->np;
    const int64_t *pk = s->pk;
    double *E = s->E, ms = s->ms, prev_toff = NAN;
    env e = {s->E, s->dE, n};
    for (int64_t b = 0; b < np; b++) {
        double *P = s->pts + 8 * b;
        for (int j = 0; j < 8; j++) P[j] = NAN;
        double rr_next = b + 1 < np ? (double)(pk[b + 1] - pk[b]) : b > 0 ? (double)(pk[b] - pk[b - 1]) : s->fs;
        double rr_prev = b > 0 ? (double)(pk[b] - pk[b - 1]) : rr_next;
        P[4] = (double)pk[b];
        if (isnan(s->tq_on))
            qrs_bounds(&e, s->comp, s->K, s->V, s->A, pk[b], ms, rr_prev, rr_next, 0, &P[3], &P[5]);
        else {
            P[3] = (double)pk[b] + s->tq_on, P[5] = (double)pk[b] + s->tq_off;
            /* the representative QRS runs past an end of the signal: this beat is not measured */
            if (P[3] < 0 || P[5] > (double)(n - 1)) P[3] = P[5] = NAN;
        }
        if (isnan(P[3]) || isnan(P[5])) { prev_toff = NAN; continue; }
        int64_t r = win_argmax(&e, (int64_t)P[3], (int64_t)P[5]);
        double Er = E[r];
        /* T wave */
        int64_t ts = (int64_t)(P[5] + 30 * ms), te = r + (int64_t)(0.62 * rr_next);
        int64_t lim = pk[b] + (int64_t)(0.75 * rr_next);
        if (te < n && te > ts) {
            int64_t tp = win_argmax(&e, ts, te);
            /* a long QT: E still rising at the window's end; the peak is
               sought on, to 100 ms before the next R */
            int64_t far = b + 1 < np ? pk[b + 1] - (int64_t)(100 * ms) : n - 1;
            if (tp >= te - 1 && far > te + 1) {
                int64_t t2 = te;
                while (t2 + 1 <= far && t2 + 1 < n && E[t2 + 1] >= E[t2]) t2++;
                if (t2 < far) tp = t2, te = far, lim = b + 1 < np ? pk[b + 1] - (int64_t)(40 * ms) : n - 1;
            }
            if (tp > ts && tp < te) {
                int64_t tend = tp + (int64_t)(150 * ms) < lim ? tp + (int64_t)(150 * ms) : lim;
                double lvl = win_min(&e, tp, tp + (int64_t)(250 * ms) < lim ? tp + (int64_t)(250 * ms) : lim);
                /* the tangent on the final descent: from the last point
                   at 70% of the T's height above the level to the first at
                   10% (an ST plateau before the T makes a second, earlier
                   maximum of E; a Gaussian is steepest at 61%). Not in
                   atrial fibrillation (the representative-beat pass), where
                   f waves hold E up after the T and the 10% point wanders */
                int64_t t10 = tp, t70;
                while (t10 < lim && E[t10] > lvl + 0.1 * (E[tp] - lvl)) t10++;
                if (t10 < lim && t10 > tend && isnan(s->tq_on)) {
                    for (t70 = t10; t70 > tp && E[t70] < lvl + 0.7 * (E[tp] - lvl); t70--) {}
                    tend = t10;
                } else t70 = tp;
                P[6] = (double)tp;
                P[7] = tangent(&e, t70, tend, lvl, -1);
                if (!(P[7] < n)) P[7] = NAN;
            }
        }
        /* P wave */
        double psd = fmin(0.45 * rr_prev, 400 * ms);
        int64_t ps = (int64_t)(r - psd), pe = (int64_t)(P[3] - 10 * ms);
        if (!isnan(prev_toff) && prev_toff > ps) ps = (int64_t)prev_toff;
        if (ps >= 2 && pe > ps + 4) {
            int64_t pp = win_argmax(&e, ps, pe);
            double lvl_on = win_min(&e, ps, pp), lvl_off = win_min(&e, pp, pe);
            double hgt = E[pp] - fmax(lvl_on, lvl_off);
            if (pp > ps && pp < pe && hgt >= 0.04 * fmin(Er, P_QRS_CAP) && !second_bump(&e, ps, pe, pp, 0.5 * hgt, (int64_t)(20 * ms))) {
                P[1] = (double)pp;
                P[0] = tangent(&e, ps, pp, lvl_on, 1);
                P[2] = tangent(&e, pp, pe, lvl_off, -1);
                if (isnan(P[0]) || isnan(P[2])) P[0] = P[1] = P[2] = NAN;
            }
        }
        prev_toff = P[7];
    }
}

/* stages 1-5 on the low-passed leads y0 (rows, n): y, comp, E, dE, V, A, pts */
static int measure(dl_state *s, const double *y0) {
    int64_t n = s->n;
    memcpy(s->y, y0, sizeof(double) * (size_t)(s->rows * n));
    iso_correct(s);
    free(s->comp);
    s->comp = spatial_components(s->y, s->rows, n, s->lead_i, s->lead_avf, &s->K);
    if (!s->comp) return -1;
    magnitudes(s->comp, s->K, n, s->E, s->V, s->A);
    for (int64_t t = 0; t < n; t++) /* slope per sample: 5-point least-squares derivative */
        s->dE[t] = t >= 2 && t + 2 < n ? (2 * s->E[t + 2] + s->E[t + 1] - s->E[t - 1] - 2 * s->E[t - 2]) / 10 : 0;
    beats_pass(s);
    return 0;
}

/* ------------------------------------------------------------ representative beat */

/* Without P waves and without flutter (atrial fibrillation), f waves run
   under every QRS and move its onset and offset beat by beat: a slow QRS
   (LBBB) is the worst hit, its slope near the J point no larger than the f
   waves'. The f waves are not time-locked to the QRS, so the QRS bounds are
   measured once on the representative beat: per sample and per spatial
   component, the median over beats aligned at their R peaks (the median
   beat of clinical programs, robust to a minority of PVCs), then the mean
   of the beats close to it. Returns
   onset and offset in samples from R, 0; -1 with fewer than 4 beats. */
static int template_qrs(dl_state *s, double *on, double *off) {
    int64_t n = s->n, np = s->np, K = s->K, pre = (int64_t)(250 * s->ms), post = (int64_t)(300 * s->ms);
    int64_t W = pre + post + 1, nb = 0;
    for (int64_t b = 0; b + 1 < np; b++) s->tmp[nb++] = (double)(s->pk[b + 1] - s->pk[b]);
    double rr = median(s->tmp, nb);
    int64_t *use = malloc(sizeof(int64_t) * (size_t)(np + 1));
    double *tc = malloc(sizeof(double) * (size_t)(K * W)), *E = malloc(sizeof(double) * (size_t)(3 * W));
    nb = 0;
    for (int64_t b = 0; b < np && use; b++)
        if (s->pk[b] - pre >= 0 && s->pk[b] + post < n) use[nb++] = s->pk[b];
    int ok = use && tc && E && nb >= 4 && !isnan(rr);
    for (int64_t k = 0; k < K && ok; k++) /* (K, W) median beat */
        for (int64_t t = 0; t < W; t++) {
            for (int64_t b = 0; b < nb; b++) s->tmp[b] = s->comp[k * n + use[b] - pre + t];
            tc[k * W + t] = median(s->tmp, nb);
        }
    /* the beats like it (QRS within +-60 ms of R: squared distance at most
       3 times the median beat's) averaged: a mean removes the f waves
       better than a median */
    int64_t h = (int64_t)(60 * s->ms), m = 0;
    double *d = E; /* scratch, nb <= np < 3 W */
    for (int64_t b = 0; b < nb && ok; b++) {
        d[b] = 0;
        for (int64_t k = 0; k < K; k++)
            for (int64_t t = pre - h; t <= pre + h; t++) {
                double v = s->comp[k * n + use[b] - pre + t] - tc[k * W + t];
                d[b] += v * v;
            }
        s->tmp[b] = d[b];
    }
    double dmed = ok ? median(s->tmp, nb) : 0;
    for (int64_t b = 0; b < nb && ok; b++)
        if (d[b] <= 3 * dmed) use[m++] = use[b];
    for (int64_t k = 0; k < K && ok; k++) /* (K, W) mean beat */
        for (int64_t t = 0; t < W; t++) {
            double q = 0;
            for (int64_t b = 0; b < m; b++) q += s->comp[k * n + use[b] - pre + t];
            tc[k * W + t] = q / (double)m;
        }
    if (ok) {
        magnitudes(tc, (int)K, W, E, E + W, E + 2 * W);
        env e = {E, NULL, W};
        qrs_bounds(&e, tc, (int)K, E + W, E + 2 * W, pre, s->ms, rr, rr, 1, on, off);
        *on -= (double)pre, *off -= (double)pre;
        ok = !isnan(*on) && !isnan(*off);
    }
    free(use); free(tc); free(E);
    return ok ? 0 : -1;
}

/* P waves must recur: a sinus P comes at the same PR interval every beat,
   while in atrial fibrillation the largest bump before each QRS (an f wave)
   lands anywhere. A P is kept when its PR is within 20 ms of the median PR
   of the beats that have one; the others are cleared. Returns the number
   kept. */
static int64_t recurring_p(dl_state *s) {
    int64_t k = 0, kept = 0;
    double *pts = s->pts;
    for (int64_t b = 0; b < s->np; b++)
        if (!isnan(pts[8 * b])) s->tmp[k++] = pts[8 * b + 3] - pts[8 * b];
    double pr_med = median(s->tmp, k);
    for (int64_t b = 0; b < s->np; b++) {
        double *P = pts + 8 * b;
        if (isnan(P[0])) continue;
        if (fabs(P[3] - P[0] - pr_med) > 20 * s->ms) P[0] = P[1] = P[2] = NAN;
        else kept++;
    }
    return kept;
}

/* ------------------------------------------------------------ atrial flutter */

/* Atrial flutter waves run through the whole cardiac cycle, as large as a
   fifth of the QRS, with no isoelectric line between them: they move the QRS
   onset and offset and hide the end of the T wave. They are removed before
   the intervals are measured, by estimating the periodic atrial signal and
   subtracting it (periodic-component, or harmonic, modelling of the atrial
   activity: the flutter counterpart of QRST cancellation):
     1. a first delineation gives each beat's QRS onset and T offset; the
        atrial windows run from the T offset to the next QRS onset - 8 ms,
        where only atrial activity is seen (in the first pass from T offset
        - 15 ms, as flutter waves make the first T offsets late);
     2. a record is a candidate when the windows hold atrial activity (a
        spatial magnitude above 1% of the QRS peak) with no isoelectric
        line: at most 10% of their samples with a spatial velocity below a
        fifth of its RMS (sinus P waves leave a flat PR and TP segment);
     3. the cycle: the atrial signal is modelled as a periodic wave of period
        T (6 harmonics with a smoothness prior, T from 170 to 250 ms, atrial
        rates 240-350/min) plus a constant per window (the window's own
        baseline), fitted by least squares to the spatial signal in the
        windows; T is the period of least residual (a 0.5 ms grid, then
        golden-section refinement). This is the autocorrelation of the
        QRST-blanked signal taken to its limit: at 2:1 block the windows are
        shorter than a cycle, so no lag of one cycle joins two windows, but
        the model still joins them. It is flutter when the periodic wave
        leaves at most 15% of the windows' variance (the f waves of atrial
        fibrillation leave 50-95%). With a regular rhythm every window sits
        at the same phase of the cycle and the fit cannot test periodicity;
        then the rhythm must also have a fixed conduction ratio's regularity
        (RR coefficient of variation below 0.005, where sinus rhythm varies
        with respiration): a sinus tachycardia without heart-rate
        variability at twice a flutter cycle would be taken for 2:1 flutter;
     4. the same model (at that T) is fitted to each lead and its periodic
        part subtracted from the whole lead, under the QRS and T too; the
        delineation is repeated, the windows taken from it, and the fit and
        subtraction repeated (3 passes in all).
   Flutter waves are not P waves: a flutter record has none (p_fraction 0). */
enum { FL_H = 6 };
/* the model's smoothness prior (ridge on the harmonics, growing as h^2), the
   windows' margins after the T offset (first and later passes) and before
   the QRS onset (ms), the number of subtraction passes */
static const double FL_SMOOTH = 1e-3, FL_MT1 = -15, FL_MT = 15, FL_MQ = 8;
enum { FL_PASSES = 3 };

/* atrial windows [a, b) between beats from s->pts: returns their number,
   bounds in win (2 per window) */
static int64_t atrial_windows(const dl_state *s, int64_t *win, double mt) {
    int64_t nw = 0;
    for (int64_t b = 0; b + 1 < s->np; b++) {
        double toff = s->pts[8 * b + 7], on = s->pts[8 * (b + 1) + 3];
        if (isnan(toff) || isnan(on)) continue;
        int64_t a = (int64_t)ceil(toff + mt * s->ms), z = (int64_t)floor(on - FL_MQ * s->ms);
        if (z - a >= (int64_t)(20 * s->ms)) win[2 * nw] = a, win[2 * nw + 1] = z, nw++;
    }
    return nw;
}

/* basis at sample t for period per (samples): H cosines and sines */
static void harmonics(double t, double per, double *b) {
    double ph = 2 * PI * t / per, c1 = cos(ph), s1 = sin(ph), c = c1, sn = s1;
    for (int h = 0; h < FL_H; h++) {
        b[2 * h] = c, b[2 * h + 1] = sn;
        double c2 = c * c1 - sn * s1;
        sn = sn * c1 + c * s1, c = c2;
    }
}

/* Least squares of the rows x (K, n) on the 2H harmonics of period per plus a
   constant per window, over the windows, every `step`-th sample. The window
   constants are eliminated (each window's samples and basis less their
   means). coef (K, 2H) if not NULL. Returns the residual over the windows'
   variance about their own means, summed over rows (1 when nothing fits). */
static double harmonic_fit(const double *x, int K, int64_t n, const int64_t *win, int64_t nw, int step, double per,
                           double *coef) {
    enum { M = 2 * FL_H };
    double G[M][M] = {{0}}, rhs[12][M], xx = 0, b[M];
    double *rp = K <= 12 ? &rhs[0][0] : NULL;
    if (!rp) return 1;
    memset(rhs, 0, sizeof rhs);
    for (int64_t w = 0; w < nw; w++) {
        double sb[M] = {0}, sx[12] = {0}, cnt = 0;
        double Gw[M][M] = {{0}}, rw[12][M];
        memset(rw, 0, sizeof rw);
        for (int64_t t = win[2 * w]; t < win[2 * w + 1] && t < n; t += step) {
            harmonics((double)t, per, b);
            for (int i = 0; i < M; i++) {
                sb[i] += b[i];
                for (int j = i; j < M; j++) Gw[i][j] += b[i] * b[j];
            }
            for (int k = 0; k < K; k++) {
                double v = x[k * n + t];
                sx[k] += v;
                xx += v * v;
                for (int i = 0; i < M; i++) rw[k][i] += b[i] * v;
            }
            cnt++;
        }
        if (cnt == 0) continue;
        for (int i = 0; i < M; i++) {
            for (int j = i; j < M; j++) G[i][j] += Gw[i][j] - sb[i] * sb[j] / cnt;
            for (int k = 0; k < K; k++) rhs[k][i] += rw[k][i] - sb[i] * sx[k] / cnt;
        }
        for (int k = 0; k < K; k++) xx -= sx[k] * sx[k] / cnt;
    }
    if (!(xx > 0)) return 1;
    /* Cholesky of G (+ a tiny ridge) */
    double L[M][M] = {{0}}, tr = 0;
    for (int i = 0; i < M; i++) tr += G[i][i];
    for (int i = 0; i < M; i++) G[i][i] += FL_SMOOTH * tr / M * (i / 2 + 1) * (i / 2 + 1);
    for (int i = 0; i < M; i++)
        for (int j = 0; j <= i; j++) {
            double v = G[j][i];
            for (int k = 0; k < j; k++) v -= L[i][k] * L[j][k];
            if (i == j) {
                if (!(v > 0)) return 1;
                L[i][i] = sqrt(v);
            } else L[i][j] = v / L[j][j];
        }
    double res = xx;
    for (int k = 0; k < K; k++) {
        double z[M], c[M];
        for (int i = 0; i < M; i++) {
            double v = rhs[k][i];
            for (int j = 0; j < i; j++) v -= L[i][j] * z[j];
            z[i] = v / L[i][i];
        }
        for (int i = M - 1; i >= 0; i--) {
            double v = z[i];
            for (int j = i + 1; j < M; j++) v -= L[j][i] * c[j];
            c[i] = v / L[i][i];
        }
        for (int i = 0; i < M; i++) res -= c[i] * rhs[k][i];
        if (coef)
            for (int i = 0; i < M; i++) coef[k * M + i] = c[i];
    }
    return fmax(res, 0) / xx;
}

/* the flutter cycle in samples, or 0 when the record is not atrial flutter;
   c: the spatial signal of the low-passed leads, (K, n) */
static double flutter_cycle(const dl_state *s, const double *c, const int64_t *win, int64_t nw) {
    int64_t n = s->n, nvis = 0, low = 0;
    double vv = 0, ee = 0;
    for (int64_t w = 0; w < nw; w++)
        for (int64_t t = win[2 * w]; t < win[2 * w + 1]; t++) vv += s->V[t] * s->V[t], ee += s->E[t] * s->E[t], nvis++;
    if (nvis < (int64_t)(0.8 * s->fs)) return 0;
    double vrms = sqrt(vv / nvis), erms = sqrt(ee / nvis);
    for (int64_t w = 0; w < nw; w++)
        for (int64_t t = win[2 * w]; t < win[2 * w + 1]; t++) low += s->V[t] < 0.2 * vrms;
    /* the QRS peak: median over beats of E at R */
    int64_t k = 0;
    for (int64_t b = 0; b < s->np; b++) s->tmp[k++] = s->E[s->pk[b]];
    double er = median(s->tmp, k), iso_frac = (double)low / nvis;
    int step = s->fs > 300 ? (int)(s->fs / 250) : 1;
    double best = 1, bt = 0;
    if (!(erms >= 0.01 * er) || iso_frac > 0.1) return 0;
    /* a regular rhythm puts every window at one phase of the cycle, where
       the fit cannot test periodicity: only a fixed conduction ratio's
       regularity (RR coefficient of variation below 0.005) counts then */
    double m1 = 0, m2 = 0;
    for (int64_t b = 0; b + 1 < s->np; b++) {
        double rr = (double)(s->pk[b + 1] - s->pk[b]);
        m1 += rr, m2 += rr * rr;
    }
    m1 /= (double)(s->np - 1), m2 /= (double)(s->np - 1);
    double cv = sqrt(fmax(m2 - m1 * m1, 0)) / m1;
    if (cv < 0.05 && cv >= 0.005) return 0;
    for (double per = 0.170 * s->fs; per <= 0.250 * s->fs; per += 0.0005 * s->fs) {
        double r = harmonic_fit(c, s->K, n, win, nw, step, per, NULL);
        if (r < best) best = r, bt = per;
    }
    if (bt == 0) return 0;
    /* golden-section refinement within one grid step either side */
    double a = bt - 0.0005 * s->fs, z = bt + 0.0005 * s->fs, g = (sqrt(5.0) - 1) / 2;
    double x1 = z - g * (z - a), x2 = a + g * (z - a);
    double f1 = harmonic_fit(c, s->K, n, win, nw, step, x1, NULL), f2 = harmonic_fit(c, s->K, n, win, nw, step, x2, NULL);
    for (int it = 0; it < 20; it++) {
        if (f1 < f2) z = x2, x2 = x1, f2 = f1, x1 = z - g * (z - a), f1 = harmonic_fit(c, s->K, n, win, nw, step, x1, NULL);
        else a = x1, x1 = x2, f1 = f2, x2 = a + g * (z - a), f2 = harmonic_fit(c, s->K, n, win, nw, step, x2, NULL);
    }
    if (fmin(f1, f2) < best) best = fmin(f1, f2), bt = f1 < f2 ? x1 : x2;
    return best <= 0.15 ? bt : 0;
}

/* y0 (rows, n) less its periodic part of period per fitted over the windows */
static void subtract_flutter(const double *y0, double *y1, int64_t rows, int64_t n, const int64_t *win, int64_t nw,
                             double per) {
    double coef[2 * FL_H], b[2 * FL_H];
    for (int64_t r = 0; r < rows; r++) {
        const double *x = y0 + r * n;
        double *o = y1 + r * n;
        if (harmonic_fit(x, 1, n, win, nw, 1, per, coef) >= 1) {
            memcpy(o, x, sizeof(double) * (size_t)n);
            continue;
        }
        for (int64_t t = 0; t < n; t++) {
            harmonics((double)t, per, b);
            double v = 0;
            for (int i = 0; i < 2 * FL_H; i++) v += coef[i] * b[i];
            o[t] = x[t] - v;
        }
    }
}

int ewb_delineate(ewb_tensor *x, double fs, ewb_tensor *rpeaks, int lead_i, int lead_avf, ewb_tensor **points,
                  ewb_intervals *out) {
    if (!out) return ewb_error("delineate: out is NULL");
    if (!(fs >= 100 && fs <= 20000)) return ewb_error("delineate: fs must be in [100, 20000] Hz, got %g", fs);
    if (x && x->ndim != 2) return ewb_error("delineate: need x (leads, samples), got %s", ewb_s(x));
    int64_t rows, n;
    ewb_tensor *xc = rows_of("delineate", x, &rows, &n);
    if (!xc) return -1;
    if (lead_i >= rows || lead_avf >= rows || (lead_i < 0) != (lead_avf < 0)) {
        ewb_tensor_free(xc);
        return ewb_error("delineate: leads I = %d and aVF = %d must both be rows of %s or both -1", lead_i, lead_avf, ewb_s(x));
    }
    int64_t *pk, np;
    if (peaks_of("delineate", rpeaks, &pk, &np)) { ewb_tensor_free(xc); return -1; }
    if (np > 0 && (pk[0] < 0 || pk[np - 1] >= n)) {
        int64_t bad = pk[0] < 0 ? pk[0] : pk[np - 1];
        free(pk);
        ewb_tensor_free(xc);
        return ewb_error("delineate: R peak %lld outside the signal %s", (long long)bad, ewb_s(x));
    }
    int64_t pad = 12; /* clean_rows needs more samples than the filter's padding */
    if (n <= pad * 2) { free(pk); ewb_tensor_free(xc); return ewb_error("delineate: signal too short: %s", ewb_s(x)); }
    dl_state s = {rows, n, np, pk, fs, fs / 1000.0, lead_i, lead_avf, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NAN, NAN};
    size_t nb = sizeof(double) * (size_t)n;
    double *y0 = lowpass_rows(ewb_f32(xc), rows, n, fs), *y1 = malloc(nb * (size_t)rows);
    int64_t *win = malloc(sizeof(int64_t) * (size_t)(2 * np + 2));
    s.y = malloc(nb * (size_t)rows), s.E = malloc(nb), s.dE = malloc(nb), s.V = malloc(nb), s.A = malloc(nb);
    s.pts = malloc(sizeof(double) * (size_t)(8 * (np + 1))), s.tmp = malloc(sizeof(double) * (size_t)(np + 1));
    ewb_tensor *ptens = NULL;
    if (points) {
        int64_t shp[2] = {np, 8};
        ptens = ewb_empty(EWB_DTYPE_I64, 2, shp);
    }
    int fail = !y0 || !y1 || !win || !s.y || !s.E || !s.dE || !s.V || !s.A || !s.pts || !s.tmp || (points && !ptens);
    if (!fail) fail = measure(&s, y0);
    /* atrial flutter: estimate the periodic atrial wave and measure without it */
    int flutter = 0;
    if (!fail && np >= 4) {
        int64_t nw = atrial_windows(&s, win, FL_MT1);
        int K = 0;
        double *c = spatial_components(y0, rows, n, lead_i, lead_avf, &K), per = 0;
        if (c) per = flutter_cycle(&s, c, win, nw);
        free(c);
        for (int pass = 0; per > 0 && pass < FL_PASSES && !fail; pass++) {
            subtract_flutter(y0, y1, rows, n, win, nw, per);
            fail = measure(&s, y1);
            flutter = 1;
            nw = atrial_windows(&s, win, FL_MT);
        }
    }
    /* no P waves and no flutter: the QRS bounds of the median beat */
    if (!fail && !flutter && np >= 4 && recurring_p(&s) < 0.5 * np) {
        double on, off;
        if (template_qrs(&s, &on, &off) == 0) s.tq_on = on, s.tq_off = off, beats_pass(&s);
    }
    if (fail) {
        dl_free(&s); free(y0); free(y1); free(win); free(pk);
        ewb_tensor_free(ptens);
        ewb_tensor_free(xc);
        return ewb_error("delineate: out of memory for %s", ewb_s(x));
    }
    double *pts = s.pts, *tmp = s.tmp, *y = s.y, ms = s.ms;
    /* when fewer than half of all beats keep a recurring P wave, the record
       has no P waves; nor has atrial flutter */
    int64_t k = 0, kept = recurring_p(&s);
    if (kept < 0.5 * np || flutter) {
        for (int64_t b = 0; b < np; b++) pts[8 * b] = pts[8 * b + 1] = pts[8 * b + 2] = NAN;
        kept = 0;
    }
    /* net QRS area for the axis (y is isoelectric-corrected) */
    double area_i = 0, area_f = 0;
    for (int64_t b = 0; b < np && lead_i >= 0; b++) {
        if (isnan(pts[8 * b + 3]) || isnan(pts[8 * b + 5])) continue;
        int64_t on = (int64_t)ceil(pts[8 * b + 3]), off = (int64_t)floor(pts[8 * b + 5]);
        const double *yi = y + (int64_t)lead_i * n, *yf = y + (int64_t)lead_avf * n;
        for (int64_t t = on; t <= off; t++) area_i += yi[t], area_f += yf[t];
    }
    /* summary */
    memset(out, 0, sizeof *out);
    out->nbeats = np;
    double *iv[3] = {&out->pr_ms, &out->qrs_ms, &out->qt_ms};
    const int from[3] = {0, 3, 3}, to[3] = {3, 5, 7}; /* PR, QRS, QT as differences of points */
    for (int j = 0; j < 3; j++) {
        k = 0;
        for (int64_t b = 0; b < np; b++) {
            double v = (pts[8 * b + to[j]] - pts[8 * b + from[j]]) / ms;
            if (!isnan(v)) tmp[k++] = v;
        }
        *iv[j] = median(tmp, k);
    }
    k = 0;
    for (int64_t b = 0; b + 1 < np; b++) tmp[k++] = (double)(pk[b + 1] - pk[b]) / fs;
    double rr_s = median(tmp, k);
    out->hr_bpm = 60.0 / rr_s;
    out->qtc_bazett_ms = out->qt_ms / sqrt(rr_s);
    out->qtc_fridericia_ms = out->qt_ms / cbrt(rr_s);
    out->axis_deg = lead_i >= 0 && (area_i != 0 || area_f != 0) ? atan2(2 * area_f / sqrt(3.0), area_i) * 180 / PI : NAN;
    out->p_fraction = np ? (double)kept / np : NAN;
    if (ptens) {
        int64_t *o = ewb_tensor_data(ptens);
        for (int64_t i = 0; i < 8 * np; i++) o[i] = isnan(pts[i]) ? -1 : (int64_t)llround(pts[i]);
        *points = ptens;
    }
    dl_free(&s); free(y0); free(y1); free(win); free(pk);
    ewb_tensor_free(xc);
    return 0;
}
