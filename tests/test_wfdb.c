/* test_wfdb.c: core/wfdb.c against the reference WFDB tools' output in
 * $ECGWB_SHARED/data/wfdb (rdsamp for test01_00s, rdann for 100.atr, the
 * headers' checksums and initial values for 100 and binformats), round trips
 * through the writer in formats 16 and 212, hand-built records with samples
 * per frame, skew, byte offsets, several files and multi-segment layouts,
 * bad input, and a small fuzz of the header parser. Without the shared data
 * the test fails. */
#include "check.h"
#include <sys/stat.h>
#include <unistd.h>

static char DATA[1024], TMP[256];

static void path_in(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void write_text(const char *name, const char *text) {
    char p[512];
    path_in(p, sizeof p, TMP, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
}
static void write_bytes(const char *name, const void *b, size_t n) {
    char p[512];
    path_in(p, sizeof p, TMP, name);
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}
static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static ewb_wfdb_read_opts digital(void) {
    ewb_wfdb_read_opts o = {0, EWB_WFDB_LOWRES, 0, 0, 0};
    return o;
}

/* ---- test01_00s (format 16) against rdsamp, sample for sample */
static void test_rdsamp(void) {
    char rec[1100], txt[1100];
    path_in(rec, sizeof rec, DATA, "test01_00s");
    path_in(txt, sizeof txt, DATA, "test01_00s.rdsamp.txt");
    ewb_tensor *x = NULL, *p = NULL;
    ewb_wfdb_header *h = NULL;
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    if (!x) return;
    CHECK(ewb_tensor_size(x, 0) == 4 && ewb_tensor_size(x, 1) == 4000, "%s", ewb_s(x));
    CHECK(h->fs == 500 && h->nsamp == 4000 && h->nsig == 4, "fs %g nsamp %lld", h->fs, (long long)h->nsamp);
    CHECK(strcmp(h->sigs[1].desc, "ECG 2") == 0 && strcmp(h->sigs[1].units, "mV") == 0 && h->sigs[1].gain == 100,
          "'%s' '%s' %g", h->sigs[1].desc, h->sigs[1].units, h->sigs[1].gain);
    CHECK(h->ncomments == 1 && strstr(h->comments[0], "<age>: 25") == h->comments[0], "comments %d", h->ncomments);
    for (int i = 0; i < 4; i++) CHECK(h->sigs[i].checksum_ok == 1, "signal %d checksum_ok %d", i, h->sigs[i].checksum_ok);
    const int32_t *d = ewb_tensor_data(x);
    FILE *f = fopen(txt, "r");
    CHECK(f != NULL, "cannot open %s", txt);
    int rows = 0, bad = 0;
    long v[4];
    while (f && fscanf(f, "%ld %ld %ld %ld", &v[0], &v[1], &v[2], &v[3]) == 4) {
        for (int c = 0; c < 4; c++)
            if (rows < 4000 && d[c * 4000 + rows] != v[c]) {
                if (bad++ < 5) fprintf(stderr, "row %d col %d: %d vs rdsamp %ld\n", rows, c, d[c * 4000 + rows], v[c]);
            }
        rows++;
    }
    if (f) fclose(f);
    CHECK(rows == 4000 && bad == 0, "%d rows read, %d samples differ from rdsamp", rows, bad);
    /* physical = (digital - baseline) / gain, baseline = adczero = 0 here */
    OK(ewb_wfdb_read(rec, NULL, &p, NULL));
    if (p) {
        const float *y = ewb_tensor_data(p);
        double err = 0;
        for (int64_t i = 0; i < 16000; i++) err = fmax(err, fabs(y[i] - d[i] / 100.0));
        CHECK(ewb_tensor_dtype(p) == EWB_DTYPE_F32 && err < 1e-6, "physical err %g", err);
    }
    /* a slice [1000, 1010) */
    ewb_tensor *s = NULL;
    o.start = 1000;
    o.stop = 1010;
    OK(ewb_wfdb_read(rec, &o, &s, NULL));
    if (s) {
        const int32_t *z = ewb_tensor_data(s);
        CHECK(ewb_tensor_size(s, 1) == 10 && z[10 + 3] == d[4000 + 1003], "slice");
    }
    ewb_tensor_free(s);
    ewb_tensor_free(p);
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
}

/* ---- record 100 (format 212, CRLF, comments, a blank line) */
static void test_100(void) {
    char rec[1100];
    path_in(rec, sizeof rec, DATA, "100");
    ewb_tensor *x = NULL;
    ewb_wfdb_header *h = NULL;
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    if (!x) return;
    CHECK(h->nsig == 2 && h->fs == 360 && h->nsamp == 650000 && h->sigs[0].fmt == 212, "header");
    CHECK(strcmp(h->sigs[0].desc, "MLII") == 0 && strcmp(h->sigs[1].desc, "V5") == 0, "'%s' '%s'", h->sigs[0].desc,
          h->sigs[1].desc);
    CHECK(h->sigs[0].gain == 200 && h->sigs[0].baseline == 1024 && h->sigs[0].adcres == 11, "calibration");
    CHECK(h->ncomments == 3 && strcmp(h->comments[1], "69 M 1085 1629 x1") == 0 &&
              strcmp(h->comments[2], "Aldomet, Inderal") == 0,
          "comments %d '%s'", h->ncomments, h->ncomments > 1 ? h->comments[1] : "");
    const int32_t *d = ewb_tensor_data(x);
    CHECK(d[0] == 995 && d[650000] == 1011, "first samples %d %d (header: 995 1011)", d[0], d[650000]);
    CHECK(h->sigs[0].checksum_ok == 1 && h->sigs[1].checksum_ok == 1, "checksums %d %d", h->sigs[0].checksum_ok,
          h->sigs[1].checksum_ok);
    /* the high-resolution mode is the identity when every spf is 1 */
    ewb_tensor *y = NULL;
    o.mode = EWB_WFDB_HIGHRES;
    o.stop = 1000;
    OK(ewb_wfdb_read(rec, &o, &y, NULL));
    if (y) CHECK(ewb_tensor_size(y, 1) == 1000 && ((int32_t *)ewb_tensor_data(y))[1000 + 999] == d[650000 + 999], "highres");
    ewb_tensor_free(y);
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
}

/* ---- 100.atr against rdann; byte-exact rewrite */
static void test_annotations(void) {
    char atr[1100], txt[1100], out[512];
    path_in(atr, sizeof atr, DATA, "100.atr");
    path_in(txt, sizeof txt, DATA, "100.atr.rdann.txt");
    path_in(out, sizeof out, TMP, "copy.atr");
    ewb_wfdb_annotation *a = NULL;
    int64_t n = 0;
    OK(ewb_wfdb_rdann(atr, &a, &n));
    CHECK(n == 2274, "%lld annotations", (long long)n);
    FILE *f = fopen(txt, "r");
    char line[512];
    int64_t i = 0, bad = 0;
    while (f && a && fgets(line, sizeof line, f)) {
        char tm[32], sym[16], aux[256] = "";
        long long samp;
        int sub, chan, num;
        char *tab = strchr(line, '\t');
        if (tab) {
            snprintf(aux, sizeof aux, "%s", tab + 1);
            aux[strcspn(aux, "\r\n")] = 0;
            *tab = 0;
        }
        int k = sscanf(line, "%31s %lld %15s %d %d %d", tm, &samp, sym, &sub, &chan, &num);
        if (k != 6 || i >= n) { bad++; i++; continue; }
        const ewb_wfdb_annotation *x = &a[i++];
        const char *s = ewb_wfdb_ann_symbol(x->type);
        if (x->sample != samp || !s || strcmp(s, sym) || x->subtype != sub || x->chan != chan || x->num != num ||
            strcmp(x->aux, aux)) {
            if (bad++ < 5)
                fprintf(stderr, "annotation %lld: %lld %s %d %d %d '%s' vs rdann %lld %s %d %d %d '%s'\n", (long long)i - 1,
                        (long long)x->sample, s ? s : "?", x->subtype, x->chan, x->num, x->aux, samp, sym, sub, chan, num, aux);
        }
    }
    if (f) fclose(f);
    CHECK(f && i == 2274 && bad == 0, "%lld rdann lines, %lld differ", (long long)i, (long long)bad);
    if (a) {
        CHECK(a[0].sample == 18 && a[0].type == 28 && strcmp(a[0].aux, "(N") == 0, "first annotation");
        CHECK(ewb_wfdb_ann_code("V") == 5 && ewb_wfdb_ann_code("+") == 28 && ewb_wfdb_ann_code("zz") == -1, "codes");
        /* write it back: the same bytes as the file the WFDB library wrote */
        OK(ewb_wfdb_wrann(out, a, n));
        uint8_t *b1 = malloc(8192), *b2 = malloc(8192);
        FILE *f1 = fopen(atr, "rb"), *f2 = fopen(out, "rb");
        size_t n1 = f1 ? fread(b1, 1, 8192, f1) : 0, n2 = f2 ? fread(b2, 1, 8192, f2) : 0;
        if (f1) fclose(f1);
        if (f2) fclose(f2);
        CHECK(n1 == n2 && n1 > 0 && memcmp(b1, b2, n1) == 0, "rewritten 100.atr: %zu bytes vs %zu, differ", n2, n1);
        free(b1);
        free(b2);
    }
    ewb_wfdb_ann_free(a);

    /* SKIP (gaps > 1023), sticky num/chan, negative subtype, odd aux, unsorted input (stable sort) */
    ewb_wfdb_annotation w[5];
    memset(w, 0, sizeof w);
    w[0] = (ewb_wfdb_annotation){.sample = 5000000, .type = 5, .subtype = -3, .chan = 2, .num = 7};
    w[1] = (ewb_wfdb_annotation){.sample = 10, .type = 1};
    w[2] = (ewb_wfdb_annotation){.sample = 10, .type = 28, .aux_len = 3, .aux = "(AF"};
    w[3] = (ewb_wfdb_annotation){.sample = 5000000, .type = 14, .chan = 2, .num = 7};
    w[4] = (ewb_wfdb_annotation){.sample = 5001000, .type = 1, .num = -4};
    OK(ewb_wfdb_wrann(out, w, 5));
    OK(ewb_wfdb_rdann(out, &a, &n));
    int order[5] = {1, 2, 0, 3, 4}, same = n == 5;
    for (int k = 0; same && k < 5; k++) {
        const ewb_wfdb_annotation *x = &a[k], *y = &w[order[k]];
        same = x->sample == y->sample && x->type == y->type && x->subtype == y->subtype && x->chan == y->chan &&
               x->num == y->num && x->aux_len == y->aux_len && strcmp(x->aux, y->aux) == 0;
        if (!same) fprintf(stderr, "annotation %d: %lld %d %d %d %d '%s'\n", k, (long long)x->sample, x->type, x->subtype, x->chan, x->num, x->aux);
    }
    CHECK(same, "annotation round trip with SKIP, num, chan, subtype, aux");
    ewb_wfdb_ann_free(a);
    w[0].type = 0;
    FAILS(ewb_wfdb_wrann(out, w, 5), "type 0 is not in 1..49");
    w[0].type = 5;
    w[0].aux_len = 300;
    FAILS(ewb_wfdb_wrann(out, w, 5), "aux of 300 bytes");
}

/* ---- binformats: one signal in each format; checksum and initial value of the header */
static void test_binformats(void) {
    char rec[1100];
    path_in(rec, sizeof rec, DATA, "binformats");
    ewb_tensor *x = NULL;
    ewb_wfdb_header *h = NULL;
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    if (!x) return;
    const int fmts[10] = {8, 16, 61, 80, 160, 212, 310, 311, 24, 32};
    CHECK(h->nsig == 10 && ewb_tensor_size(x, 1) == 499, "%s", ewb_s(x));
    const int32_t *d = ewb_tensor_data(x);
    for (int i = 0; i < 10 && i < h->nsig; i++) {
        CHECK(h->sigs[i].fmt == fmts[i], "signal %d format %d", i, h->sigs[i].fmt);
        CHECK(h->sigs[i].checksum_ok == 1, "format %d: checksum does not match the header's %d", fmts[i], h->sigs[i].checksum);
        CHECK(d[i * 499] == h->sigs[i].initval, "format %d: first sample %d, header initval %d", fmts[i], d[i * 499],
              h->sigs[i].initval);
        /* every sample within the format's ADC resolution */
        int64_t lo = -((int64_t)1 << (h->sigs[i].adcres - 1)), hi = ((int64_t)1 << (h->sigs[i].adcres - 1)) - 1, out = 0;
        for (int j = 0; j < 499; j++)
            if (d[i * 499 + j] != EWB_WFDB_INVALID && (d[i * 499 + j] < lo || d[i * 499 + j] > hi)) out++;
        CHECK(out == 0, "format %d: %lld samples outside the %d-bit range", fmts[i], (long long)out, h->sigs[i].adcres);
    }
    /* Sample order within packed groups (which a checksum cannot see): each
       signal but format 8's (slew-limited to +-127) is a ramp that wraps
       around its ADC range, so successive differences modulo 2^adcres take
       two adjacent values; and 61 = 16 + 1, 160 = 16 + 3 sample for sample. */
    int32_t *raw = malloc(sizeof(int32_t) * 10 * 499); /* invalid -> the format's code */
    for (int i = 0; i < 10 * 499; i++)
        raw[i] = d[i] == EWB_WFDB_INVALID ? -(int32_t)(((int64_t)1 << (h->sigs[i / 499].adcres - 1))) : d[i];
    for (int i = 1; i < 10 && i < h->nsig; i++) {
        int64_t m = (int64_t)1 << h->sigs[i].adcres, lo = m, hi = -1;
        for (int j = 0; j + 1 < 499; j++) {
            int64_t df = (((int64_t)raw[i * 499 + j + 1] - raw[i * 499 + j]) % m + m) % m;
            if (df < lo) lo = df;
            if (df > hi) hi = df;
        }
        CHECK(hi - lo == 1, "format %d: steps from %lld to %lld, not one ramp", fmts[i], (long long)lo, (long long)hi);
    }
    int offsets_ok = 1;
    for (int j = 0; j < 499; j++)
        if (raw[2 * 499 + j] - raw[499 + j] != 1 || raw[4 * 499 + j] - raw[499 + j] != 3)
            offsets_ok = 0;
    CHECK(offsets_ok, "formats 16, 61 and 160 disagree");
    free(raw);
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
}

/* ---- writer round trips */
static ewb_wfdb_header *make_header(int nsig, int fmt, double fs) {
    ewb_wfdb_header *h = calloc(1, sizeof *h);
    h->nsig = nsig;
    h->fs = fs;
    h->sigs = calloc((size_t)nsig, sizeof *h->sigs);
    for (int i = 0; i < nsig; i++) {
        h->sigs[i].fmt = fmt;
        h->sigs[i].gain = 200 + 50 * i;
        h->sigs[i].baseline = i * 3 - 2;
        strcpy(h->sigs[i].units, i == 1 ? "uV" : "mV");
        snprintf(h->sigs[i].desc, sizeof h->sigs[i].desc, "lead %d", i);
    }
    h->ncomments = 2;
    h->comments = calloc(2, sizeof(char *));
    h->comments[0] = strdup("age: 61 sex: F");
    h->comments[1] = strdup("two\nlines");
    return h;
}

static void roundtrip(int fmt, int nsig, int64_t n) {
    int32_t lim = fmt == 16 ? 32767 : 2047;
    int64_t shape[2] = {nsig, n};
    int32_t *v = malloc(sizeof(int32_t) * (size_t)(nsig * n + 1));
    uint64_t s = 12345;
    for (int64_t i = 0; i < nsig * n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (int32_t)((s >> 33) % (2 * (uint64_t)lim + 1)) - lim;
    }
    if (nsig * n > 0) v[0] = lim;
    if (nsig * n > 2) { v[1] = -lim; v[2] = EWB_WFDB_INVALID; }
    if (nsig * n > 7) v[nsig * n - 1] = EWB_WFDB_INVALID;
    ewb_tensor *t = NULL, *r = NULL;
    OK(ewb_tensor_from_data(&t, EWB_DTYPE_I32, 2, shape, v));
    ewb_wfdb_header *h = make_header(nsig, fmt, 257.5), *g = NULL;
    char rec[512], dat[600];
    snprintf(rec, sizeof rec, "%s/rt%d_%lld", TMP, fmt, (long long)n);
    snprintf(dat, sizeof dat, "%s.dat", rec);
    OK(ewb_wfdb_write(rec, h, t));
    int64_t total = nsig * n;
    long expect = fmt == 16 ? 2 * total : total / 2 * 3 + (total % 2 ? 2 : 0);
    CHECK(file_size(dat) == expect, "format %d, %lld samples: %ld bytes, expected %ld", fmt, (long long)total,
          file_size(dat), expect);
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &r, &g));
    if (r && g) {
        CHECK(memcmp(ewb_tensor_data(r), v, sizeof(int32_t) * (size_t)total) == 0 && ewb_tensor_numel(r) == total,
              "format %d (%d x %lld): digital round trip differs", fmt, nsig, (long long)n);
        CHECK(g->fs == 257.5 && g->nsamp == n && g->ncomments == 3 && strcmp(g->comments[2], "lines") == 0, "header");
        for (int i = 0; i < nsig; i++) {
            CHECK(g->sigs[i].checksum_ok == 1 && g->sigs[i].gain == h->sigs[i].gain &&
                      g->sigs[i].baseline == h->sigs[i].baseline && strcmp(g->sigs[i].units, h->sigs[i].units) == 0 &&
                      strcmp(g->sigs[i].desc, h->sigs[i].desc) == 0 && g->sigs[i].fmt == fmt,
                  "signal %d fields", i);
        }
    }
    ewb_tensor_free(r);
    ewb_wfdb_header_free(g);
    ewb_tensor_free(t);
    ewb_wfdb_header_free(h);
    free(v);
}

static void test_write(void) {
    roundtrip(16, 3, 1001);
    roundtrip(212, 3, 1001); /* 3003 samples: an odd last sample in 2 bytes */
    roundtrip(212, 1, 1);
    roundtrip(212, 2, 500);
    roundtrip(16, 1, 0);

    /* physical input: digital = round(x * gain + baseline), NaN -> invalid */
    int64_t shape[2] = {2, 5};
    float x[10] = {0.5f, -1.25f, NAN, 3.0f, 0.001f, 1, 2, 3, NAN, -4};
    ewb_tensor *t = NULL, *r = NULL;
    OK(ewb_tensor_from_data(&t, EWB_DTYPE_F32, 2, shape, x));
    ewb_wfdb_header *h = make_header(2, 212, 100);
    char rec[512];
    snprintf(rec, sizeof rec, "%s/phys", TMP);
    OK(ewb_wfdb_write(rec, h, t));
    OK(ewb_wfdb_read(rec, NULL, &r, NULL));
    if (r) {
        const float *y = ewb_tensor_data(r);
        int ok = 1;
        for (int i = 0; i < 10; i++) {
            const ewb_wfdb_signal *s = &h->sigs[i / 5];
            double want = isnan(x[i]) ? NAN : (nearbyint(x[i] * s->gain + s->baseline) - s->baseline) / s->gain;
            if (isnan(want) ? !isnan(y[i]) : fabs(y[i] - want) > 1e-6) ok = 0;
        }
        CHECK(ok, "physical round trip");
    }
    ewb_tensor_free(r);
    /* out of range, invalid code, dtype, format */
    x[0] = 11; /* 11 mV * 200 = 2200 > 2047 */
    ewb_tensor_free(t);
    OK(ewb_tensor_from_data(&t, EWB_DTYPE_F32, 2, shape, x));
    FAILS(ewb_wfdb_write(rec, h, t), "signal 0 sample 0 is 2198 ADC units, outside format 212's range");
    int32_t bad[10] = {-2048};
    ewb_tensor_free(t);
    OK(ewb_tensor_from_data(&t, EWB_DTYPE_I32, 2, shape, bad));
    FAILS(ewb_wfdb_write(rec, h, t), "-2048 is the invalid code");
    h->sigs[1].fmt = 16;
    FAILS(ewb_wfdb_write(rec, h, t), "all signals share one file and one format");
    h->sigs[0].fmt = h->sigs[1].fmt = 310;
    FAILS(ewb_wfdb_write(rec, h, t), "format 310 cannot be written");
    ewb_tensor_free(t);
    int64_t s3[1] = {10};
    OK(ewb_tensor_new(&t, EWB_DTYPE_F32, 1, s3));
    FAILS(ewb_wfdb_write(rec, h, t), "shape (nsig, n)");
    ewb_tensor_free(t);
    ewb_wfdb_header_free(h);
}

/* ---- samples per frame, skew, byte offset, two files, format 0, by hand */
static void test_frames(void) {
    /* mf.dat: 4-byte prolog, then frames of sig0 (spf 2), sig1 (spf 1), format 16;
       sig1 has skew 1. mf2.dat: sig2, format 212, 1 per frame. 4 frames. */
    int16_t s0[8] = {1, 2, 3, 6, -1, -2, -32768, 5}, s1[5] = {100, 10, 20, 30, 40};
    int16_t stream[2 + 12];
    stream[0] = 0x7777;
    stream[1] = 0x7777;
    for (int f = 0; f < 4; f++) {
        stream[2 + 3 * f] = s0[2 * f];
        stream[2 + 3 * f + 1] = s0[2 * f + 1];
        stream[2 + 3 * f + 2] = s1[f];
    }
    write_bytes("mf.dat", stream, sizeof stream);
    uint8_t b212[6] = {0x01, 0xF0, 0xFF, 0x05, 0x80, 0x00}; /* 1, -1, 5, -2048 */
    write_bytes("mf2.dat", b212, 6);
    int cks0 = 1 + 2 + 3 + 6 - 1 - 2 - 32768 + 5, cks1 = 100 + 10 + 20 + 30, cks2 = 1 - 1 + 5 - 2048;
    char hea[1024];
    snprintf(hea, sizeof hea,
             "mf 4 100 4\r\nmf.dat 16x2+4 10(1)/mV 16 0 1 %d 0 fast\r\n# between signal lines\r\n"
             "mf.dat 16:1+4 20/mV 16 0 100 %d 0 skewed\r\nmf2.dat 212 1 12 0 1 %d 0 packed\r\n"
             "~ 0 200 16 0 0 0 0 nothing\r\n",
             cks0, cks1, cks2);
    write_text("mf.hea", hea);
    char rec[512];
    snprintf(rec, sizeof rec, "%s/mf", TMP);
    ewb_tensor *x = NULL, *y = NULL;
    ewb_wfdb_header *h = NULL;
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    const int32_t I = EWB_WFDB_INVALID;
    /* LOWRES: mean of each frame's two samples, floor((a + b + 1) / 2) */
    int32_t want_lo[16] = {2, 5, -1, I, /* skew 1 */ 10, 20, 30, I, /* 212 */ 1, -1, 5, I, I, I, I, I};
    if (x) {
        CHECK(ewb_tensor_size(x, 0) == 4 && ewb_tensor_size(x, 1) == 4, "%s", ewb_s(x));
        CHECK(memcmp(ewb_tensor_data(x), want_lo, sizeof want_lo) == 0, "low-resolution frames");
        CHECK(h->sigs[0].spf == 2 && h->sigs[1].skew == 1 && h->sigs[0].offset == 4 && h->sigs[0].baseline == 1 &&
                  h->sigs[2].gain == 1 && h->sigs[3].fmt == 0,
              "header fields");
        CHECK(h->sigs[0].checksum_ok == 1 && h->sigs[1].checksum_ok == 1 && h->sigs[2].checksum_ok == 1 &&
                  h->sigs[3].checksum_ok == -1,
              "checksums %d %d %d %d", h->sigs[0].checksum_ok, h->sigs[1].checksum_ok, h->sigs[2].checksum_ok,
              h->sigs[3].checksum_ok);
    }
    /* HIGHRES: 2 per frame, the others held */
    o.mode = EWB_WFDB_HIGHRES;
    OK(ewb_wfdb_read(rec, &o, &y, NULL));
    int32_t want_hi[32] = {1, 2, 3, 6, -1, -2, I, 5, 10, 10, 20, 20, 30, 30, I, I,
                           1, 1, -1, -1, 5, 5, I, I, I, I, I, I, I, I, I, I};
    if (y) CHECK(ewb_tensor_size(y, 1) == 8 && memcmp(ewb_tensor_data(y), want_hi, sizeof want_hi) == 0, "high-resolution frames");
    ewb_tensor_free(y);
    /* physical: (d - baseline) / gain, NaN where invalid */
    OK(ewb_wfdb_read(rec, NULL, &y, NULL));
    if (y) {
        const float *p = ewb_tensor_data(y);
        CHECK(fabsf(p[0] - 0.1f) < 1e-7 && isnan(p[3]) && fabsf(p[4] - 0.5f) < 1e-7 && isnan(p[12]), "physical");
    }
    ewb_tensor_free(y);
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);

    /* a checksum mismatch: a flag, or an error when strict */
    snprintf(hea, sizeof hea, "mf 1 100 4\nmf2.dat 212 1 12 0 1 %d 0 packed\n", cks2 + 1);
    write_text("mfbad.hea", hea);
    snprintf(rec, sizeof rec, "%s/mfbad", TMP);
    o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    if (h) CHECK(h->sigs[0].checksum_ok == 0, "mismatch flag %d", h->sigs[0].checksum_ok);
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
    o.strict_checksum = 1;
    FAILS(ewb_wfdb_read(rec, &o, &x, &h), "checksum mismatch in signal 0 (packed, file mf2.dat)");
    /* header without nsamp: frames from the file size */
    write_text("mfn.hea", "mfn 1 100\nmf2.dat 212\n");
    snprintf(rec, sizeof rec, "%s/mfn", TMP);
    OK(ewb_wfdb_read(rec, NULL, &x, &h));
    if (x) CHECK(ewb_tensor_size(x, 1) == 4 && h->nsamp == 4 && h->sigs[0].gain == 200, "inferred nsamp");
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
}

/* ---- multi-segment records, fixed and variable layouts, null segments */
static void test_multiseg(void) {
    /* segments written by the writer: sa (I, II; 6 frames), sb (II only, other gain; 4), sc (I, II; 3) */
    int64_t sh2[2] = {2, 6}, sh1[2] = {1, 4}, sh3[2] = {2, 3};
    int32_t va[12] = {1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60}, vb[4] = {7, EWB_WFDB_INVALID, 9, 11},
            vc[6] = {-1, -2, -3, -4, -5, -6};
    ewb_tensor *ta, *tb, *tc;
    ewb_tensor_from_data(&ta, EWB_DTYPE_I32, 2, sh2, va);
    ewb_tensor_from_data(&tb, EWB_DTYPE_I32, 2, sh1, vb);
    ewb_tensor_from_data(&tc, EWB_DTYPE_I32, 2, sh3, vc);
    ewb_wfdb_header *ha = make_header(2, 16, 250), *hb = make_header(1, 212, 250), *hc = make_header(2, 212, 250);
    for (int i = 0; i < 2; i++) {
        strcpy(ha->sigs[i].desc, i ? "II" : "I");
        strcpy(hc->sigs[i].desc, i ? "II" : "I");
        ha->sigs[i].gain = hc->sigs[i].gain = 100;
        ha->sigs[i].baseline = hc->sigs[i].baseline = 0;
    }
    strcpy(hb->sigs[0].desc, "II");
    hb->sigs[0].gain = 50;
    hb->sigs[0].baseline = 1;
    char rec[512];
    snprintf(rec, sizeof rec, "%s/sa", TMP);
    OK(ewb_wfdb_write(rec, ha, ta));
    snprintf(rec, sizeof rec, "%s/sb", TMP);
    OK(ewb_wfdb_write(rec, hb, tb));
    snprintf(rec, sizeof rec, "%s/sc", TMP);
    OK(ewb_wfdb_write(rec, hc, tc));
    const int32_t I = EWB_WFDB_INVALID;

    /* variable layout: layout header, sa, a null segment, sb */
    write_text("var.hea", "var/4 2 250 12\nvar_layout 0\nsa 6\n~ 2\nsb 4\n# a comment\n");
    write_text("var_layout.hea", "var_layout 2 250 0\n~ 0 100/mV 16 0 0 0 0 I\n~ 0 100/mV 16 0 0 0 0 II\n");
    snprintf(rec, sizeof rec, "%s/var", TMP);
    ewb_tensor *x = NULL;
    ewb_wfdb_header *h = NULL;
    ewb_wfdb_read_opts o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    /* sb's II: digital 7 at gain 50 baseline 1 is (7-1)/50 mV = 12 at gain 100 */
    int32_t want[24] = {1, 2, 3, 4, 5, 6, I, I, I, I, I, I, 10, 20, 30, 40, 50, 60, I, I, 12, I, 16, 20};
    if (x) {
        CHECK(h->nseg == 4 && h->variable_layout && h->nsamp == 12 && strcmp(h->sigs[1].desc, "II") == 0, "layout");
        CHECK(ewb_tensor_size(x, 1) == 12 && memcmp(ewb_tensor_data(x), want, sizeof want) == 0, "variable layout digital");
        CHECK(h->sigs[0].checksum_ok == 1 && h->sigs[1].checksum_ok == 1, "segment checksums");
    }
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
    OK(ewb_wfdb_read(rec, NULL, &x, NULL));
    if (x) {
        const float *p = ewb_tensor_data(x);
        CHECK(fabsf(p[0] - 0.01f) < 1e-7 && isnan(p[6]) && isnan(p[11]) && fabsf(p[20] - 0.12f) < 1e-6 &&
                  isnan(p[21]) && fabsf(p[23] - 0.2f) < 1e-6,
              "variable layout physical");
    }
    ewb_tensor_free(x);
    /* a slice across segment boundaries: frames [5, 10) */
    o.start = 5;
    o.stop = 10;
    OK(ewb_wfdb_read(rec, &o, &x, NULL));
    int32_t want_slice[10] = {6, I, I, I, I, 60, I, I, 12, I};
    if (x) CHECK(memcmp(ewb_tensor_data(x), want_slice, sizeof want_slice) == 0, "multi-segment slice");
    ewb_tensor_free(x);

    /* fixed layout: sa then sc, no layout header */
    write_text("fix.hea", "fix/2 2 250\nsa 6\nsc 3\n");
    snprintf(rec, sizeof rec, "%s/fix", TMP);
    o = digital();
    OK(ewb_wfdb_read(rec, &o, &x, &h));
    int32_t want_f[18] = {1, 2, 3, 4, 5, 6, -1, -2, -3, 10, 20, 30, 40, 50, 60, -4, -5, -6};
    if (x) {
        CHECK(h->nsamp == 9 && !h->variable_layout && h->sigs[0].fmt == 16, "fixed header");
        CHECK(memcmp(ewb_tensor_data(x), want_f, sizeof want_f) == 0, "fixed layout");
    }
    ewb_tensor_free(x);
    ewb_wfdb_header_free(h);
    /* a master header longer than its segments: the rest is invalid */
    write_text("long.hea", "long/1 2 250 8\nsa 6\n");
    snprintf(rec, sizeof rec, "%s/long", TMP);
    OK(ewb_wfdb_read(rec, &o, &x, NULL));
    if (x) {
        const int32_t *z = ewb_tensor_data(x);
        CHECK(ewb_tensor_size(x, 1) == 8 && z[5] == 6 && z[6] == I && z[7] == I && z[8] == 10 && z[15] == I,
              "frames past the last segment");
    }
    ewb_tensor_free(x);
    /* a fixed layout whose segment has the wrong number of signals */
    write_text("fixbad.hea", "fixbad/2 2 250\nsa 6\nsb 4\n");
    snprintf(rec, sizeof rec, "%s/fixbad", TMP);
    FAILS(ewb_wfdb_read(rec, &o, &x, NULL), "sb.hea: has 1 signals, the record's fixed layout has 2");
    /* a segment shorter than the master says */
    write_text("short.hea", "short/1 2 250\nsa 7\n");
    snprintf(rec, sizeof rec, "%s/short", TMP);
    FAILS(ewb_wfdb_read(rec, &o, &x, NULL), "has 6 frames, the multi-segment header says 7");
    ewb_tensor_free(ta);
    ewb_tensor_free(tb);
    ewb_tensor_free(tc);
    ewb_wfdb_header_free(ha);
    ewb_wfdb_header_free(hb);
    ewb_wfdb_header_free(hc);
}

/* ---- bad input: clear errors naming file and line or byte */
static void test_bad_input(void) {
    char rec[512];
    ewb_tensor *x = NULL;
    ewb_wfdb_header *h = NULL;
    snprintf(rec, sizeof rec, "%s/none", TMP);
    FAILS(ewb_wfdb_read(rec, NULL, &x, NULL), "cannot open");
    FAILS(ewb_wfdb_read(rec, NULL, &x, NULL), "none.hea");
    struct { const char *text, *needle; } cases[] = {
        {"", "bad.hea:1: no record line"},
        {"# only a comment\n", "no record line"},
        {"bad 2 360 10\nmf2.dat 212\n", "bad.hea:2: header ends after 1 of 2 signal lines"},
        {"bad two 360\n", "bad.hea:1: bad number of signals 'two'"},
        {"bad 1 -5\n", "bad.hea:1: bad sampling frequency '-5'"},
        {"bad 1 360 12x\n", "bad number of samples '12x'"},
        {"bad 1 360/0 12\n", "bad counter frequency"},
        {"\n\nbad 1 360 4\r\nmf2.dat 213 200\r\n", "bad.hea:4: bad signal format '213'"},
        {"bad 1 360 4\nmf2.dat 212x0\n", "bad.hea:2: bad samples per frame in '212x0'"},
        {"bad 1 360 4\nmf2.dat 212:-1\n", "bad skew"},
        {"bad 1 360 4\nmf2.dat 212+\n", "bad format field '212+'"},
        {"bad 1 360 4\nmf2.dat 212 20(5/mV\n", "bad baseline '(5'"},
        {"bad 1 360 4\nmf2.dat 212 abc\n", "bad gain 'abc'"},
        {"bad 1 360 4\nmf2.dat 212 200 12 0 1 x\n", "bad.hea:2: bad checksum 'x'"},
        {"bad 1 360 4\nmf2.dat 212\nextra 16\n", "bad.hea:3: unexpected line after the signal lines"},
        {"bad/2 1 360\nseg 4\n", "bad.hea:2: header ends after 1 of 2 segment lines"},
        {"bad/2 1 360\nseg\n", "segment line 'seg' has no number of samples"},
        {"bad/2 1 360\nseg 4\nseg2 0\n", "bad.hea:3: only the first segment"},
        {"bad/0 1 360\n", "bad number of segments '0'"},
        {"bad 1 360 5\nmf2.dat 212\n", "mf2.dat: truncated: data ends at byte 6 after 4 complete frames"},
        {"bad 1 360 5\nmf2.dat 212+7\n", "byte offset 7 is beyond the end of the file"},
        {"bad 1 360 5\nmissing.dat 16\n", "cannot open"},
        {"bad 2 360 2\nmf.dat 16\nmf.dat 212\n", "share the file mf.dat but have formats 16 and 212"},
        {"bad 3 360 2\nmf.dat 16\nmf2.dat 212\nmf.dat 16\n", "share the file mf.dat but are not listed together"},
    };
    snprintf(rec, sizeof rec, "%s/bad", TMP);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text("bad.hea", cases[i].text);
        ewb_clear_error();
        int rc = ewb_wfdb_read(rec, NULL, &x, &h);
        CHECK(rc != 0 && strstr(ewb_last_error(), cases[i].needle), "case %zu: want '%s', got rc %d '%s'", i,
              cases[i].needle, rc, ewb_last_error());
        CHECK(x == NULL && h == NULL, "case %zu: outputs set on error", i);
    }
    write_text("bad.hea", "bad 1 360 4\nmf2.dat 212 200 12 zero\n");
    FAILS(ewb_wfdb_header_read(rec, &h), "bad.hea:2: bad ADC zero 'zero'");
    /* truncated annotation files: in an AUX string, and an odd byte */
    char atr[1100];
    path_in(atr, sizeof atr, DATA, "100.atr");
    FILE *f = fopen(atr, "rb");
    uint8_t buf[16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    CHECK(n == 16, "read 100.atr");
    write_bytes("t1.atr", buf, 5);
    write_bytes("t2.atr", buf, 9);
    write_bytes("t3.atr", "\x00\xE4", 2); /* code 57 */
    write_bytes("t4.atr", "\x00\xF0\x00\x00", 4); /* NUM before any annotation */
    char p[512];
    ewb_wfdb_annotation *a = NULL;
    int64_t na;
    path_in(p, sizeof p, TMP, "t1.atr");
    FAILS(ewb_wfdb_rdann(p, &a, &na), "t1.atr: truncated aux at byte 2");
    path_in(p, sizeof p, TMP, "t2.atr");
    FAILS(ewb_wfdb_rdann(p, &a, &na), "t2.atr: truncated: odd byte at offset 8");
    path_in(p, sizeof p, TMP, "t3.atr");
    FAILS(ewb_wfdb_rdann(p, &a, &na), "unknown annotation code 57 at byte 0");
    path_in(p, sizeof p, TMP, "t4.atr");
    FAILS(ewb_wfdb_rdann(p, &a, &na), "modifier code 60 before any annotation at byte 0");
    path_in(p, sizeof p, TMP, "nothing.atr");
    FAILS(ewb_wfdb_rdann(p, &a, &na), "cannot open");
    ewb_wfdb_read_opts o = {0, 7, 0, 0, 0};
    snprintf(rec, sizeof rec, "%s/mf", TMP);
    FAILS(ewb_wfdb_read(rec, &o, &x, NULL), "mode 7");
    o.mode = 0;
    o.start = 9;
    FAILS(ewb_wfdb_read(rec, &o, &x, NULL), "start 9 is outside [0, 4]");
}

/* ---- fuzz: random truncations and byte edits of real and built headers */
static void test_fuzz(void) {
    const char *names[] = {"100.hea", "test01_00s.hea", "binformats.hea"};
    char *texts[6];
    size_t lens[6];
    int nt = 0;
    for (int i = 0; i < 3; i++) {
        char p[1100];
        path_in(p, sizeof p, DATA, names[i]);
        FILE *f = fopen(p, "rb");
        texts[nt] = calloc(1, 4096);
        lens[nt] = f ? fread(texts[nt], 1, 4095, f) : 0;
        if (f) fclose(f);
        nt++;
    }
    const char *built[] = {"fz/4 2 250 12\nvar_layout 0\nsa 6\n~ 2\nsb 4\n",
                           "fz 4 100 4\r\nmf.dat 16x2+4 10(1)/mV 16 0 1 -32656 0 fast\r\nmf.dat 16:1+4 20/mV 16 0 100 160 0 s\r\nmf2.dat 212 1 12 0 1 -2043 0 p\r\n~ 0 200 16 0 0 0 0 n\r\n",
                           "fz/2 2 250\nsa 6\nsc 3\n"};
    for (int i = 0; i < 3; i++) {
        texts[nt] = strdup(built[i]);
        lens[nt] = strlen(built[i]);
        nt++;
    }
    /* the data files the headers name, beside the fuzzed header */
    const char *data[] = {"test01_00s.dat", "binformats.d0", "binformats.d1", "binformats.d2", "binformats.d3",
                          "binformats.d4", "binformats.d5", "binformats.d6", "binformats.d7", "binformats.d8",
                          "binformats.d9"};
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
        char src[1100], dst[512];
        path_in(src, sizeof src, DATA, data[i]);
        path_in(dst, sizeof dst, TMP, data[i]);
        if (symlink(src, dst) != 0) CHECK(0, "symlink %s", dst);
    }
    const char alphabet[] = "0123456789 \t\r\n#/x:+()~-.e~abc\x01\xff";
    uint64_t s = 99;
    int parsed = 0, failed = 0, unclear = 0, iters = 3000;
    char rec[512];
    snprintf(rec, sizeof rec, "%s/fz", TMP);
    char buf[4096];
    for (int it = 0; it < iters; it++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int k = (int)((s >> 33) % (uint64_t)nt);
        size_t len = lens[k];
        memcpy(buf, texts[k], len);
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int kind = (int)((s >> 40) % 3);
        if (kind == 0) len = (size_t)((s >> 20) % (len + 1)); /* truncate */
        int edits = kind == 0 ? 0 : 1 + (int)((s >> 10) % 4);
        for (int e = 0; e < edits && len; e++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[(s >> 33) % len] = alphabet[(s >> 20) % (sizeof alphabet - 1)];
        }
        if (kind == 2 && len) len = (size_t)((s >> 5) % (len + 1));
        char p[512];
        path_in(p, sizeof p, TMP, "fz.hea");
        FILE *f = fopen(p, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        ewb_tensor *x = NULL;
        ewb_wfdb_header *h = NULL;
        ewb_wfdb_read_opts o = {it % 2, it % 3 == 0 ? EWB_WFDB_HIGHRES : EWB_WFDB_LOWRES, 0, 0, 0};
        ewb_clear_error();
        if (ewb_wfdb_read(rec, &o, &x, &h) == 0) {
            parsed++;
            ewb_tensor_free(x);
            ewb_wfdb_header_free(h);
        } else {
            failed++;
            /* every message names a file of the record */
            const char *m = ewb_last_error();
            if (!strstr(m, "wfdb") || !strstr(m, TMP)) {
                if (unclear++ < 3) fprintf(stderr, "unclear error: %s\n", m);
            }
        }
    }
    fprintf(stderr, "fuzz: %d headers read, %d rejected\n", parsed, failed);
    CHECK(parsed > 100 && failed > 100, "fuzz should both accept and reject (%d, %d)", parsed, failed);
    CHECK(unclear == 0, "%d errors do not name the file", unclear);
    for (int i = 0; i < nt; i++) free(texts[i]);
}

int main(void) {
    const char *shared = getenv("ECGWB_SHARED");
    snprintf(DATA, sizeof DATA, "%s/data/wfdb", shared && *shared ? shared : "../shared");
    char probe[1100];
    path_in(probe, sizeof probe, DATA, "100.hea");
    if (access(probe, R_OK) != 0) {
        fprintf(stderr,
                "test_wfdb: FAIL: the reference WFDB data is missing (%s not readable).\n"
                "Set ECGWB_SHARED to the folder that holds data/wfdb (e.g. ECGWB_SHARED=/work/shared).\n",
                probe);
        return 1;
    }
    snprintf(TMP, sizeof TMP, "/tmp/ewb_wfdb_XXXXXX");
    if (!mkdtemp(TMP)) { perror("mkdtemp"); return 1; }
    test_rdsamp();
    test_100();
    test_annotations();
    test_binformats();
    test_write();
    test_frames();
    test_multiseg();
    test_bad_input();
    test_fuzz();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", TMP);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", TMP);
    return check_report();
}
