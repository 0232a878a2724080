/* test_plot.c: the cairo figures. Files are valid PNG (signature, IHDR size
 * as the paper size and dpi give) and well-formed SVG (sized in mm); memory
 * output equals file output; and, on raw pixels: the grid lies every 1 mm
 * at the requested dpi (minor and major colours), a 0 mV trace sits on its
 * row's baseline, 1 mV moves it by exactly 10 mm (also the calibration
 * pulse), every lead of the 12-lead layout lands in its panel, marks, gaps,
 * overlays, log axes; then the errors. Example figures of a simulated ECG
 * are written into $BUILD/tests/ for looking at. */
#include "check.h"
#include <errno.h>
#include <sys/stat.h>

static const char *build_dir(void) { return getenv("BUILD") ? getenv("BUILD") : "build"; }
static char *path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/tests/%s", build_dir(), name);
    return buf[k];
}

static unsigned char *read_file(const char *p, long *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)*n + 1);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    b[*n > 0 ? *n : 0] = 0;
    fclose(f);
    return b;
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* PNG signature, IHDR first, width and height */
static int png_size(const unsigned char *b, long n, int *w, int *h) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(b, sig, 8) || be32(b + 8) != 13 || memcmp(b + 12, "IHDR", 4)) return 0;
    *w = (int)be32(b + 16);
    *h = (int)be32(b + 20);
    return 1;
}

/* XML well-formedness: balanced start and end tags, names matching; counts
   elements named `count_name`. Returns 0 when malformed. */
static int xml_ok(const char *s, const char *count_name, int *count) {
    char stack[64][32];
    int depth = 0, roots = 0;
    *count = 0;
    for (const char *p = s; (p = strchr(p, '<'));) {
        if (!strncmp(p, "<?", 2)) { p = strstr(p, "?>"); if (!p) return 0; continue; }
        if (!strncmp(p, "<!--", 4)) { p = strstr(p, "-->"); if (!p) return 0; continue; }
        const char *end = strchr(p, '>');
        if (!end) return 0;
        int closing = p[1] == '/', selfclose = end[-1] == '/';
        const char *n0 = p + 1 + closing, *n1 = n0;
        while (n1 < end && *n1 != ' ' && *n1 != '/' && *n1 != '\n') n1++;
        int len = (int)(n1 - n0);
        if (len <= 0 || len >= 32) return 0;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], n0, (size_t)len) || stack[depth - 1][len]) return 0;
            depth--;
        } else {
            if ((int)strlen(count_name) == len && !strncmp(n0, count_name, (size_t)len)) (*count)++;
            if (depth == 0) roots++;
            if (!selfclose) {
                if (depth == 64) return 0;
                memcpy(stack[depth], n0, (size_t)len);
                stack[depth++][len] = 0;
            }
        }
        p = end + 1;
    }
    return depth == 0 && roots == 1;
}

/* equal SVG texts, up to cairo's process-wide surface ids (id="surface12") */
static int same_svg(const char *a, const char *b) {
    static const char key[] = "id=\"surface";
    while (*a && *a == *b) {
        if (!strncmp(a, key, sizeof key - 1) && !strncmp(b, key, sizeof key - 1)) {
            a += sizeof key - 1, b += sizeof key - 1;
            while (*a >= '0' && *a <= '9') a++;
            while (*b >= '0' && *b <= '9') b++;
            continue;
        }
        a++, b++;
    }
    return *a == 0 && *b == 0;
}

/* ---- raw pixels ---- */
typedef struct { uint32_t *px; int w, h; } image;
static int R(uint32_t p) { return (int)(p >> 16 & 255); }
static int G(uint32_t p) { return (int)(p >> 8 & 255); }
static int B(uint32_t p) { return (int)(p & 255); }
static uint32_t at(const image *im, int x, int y) { return im->px[(size_t)y * im->w + x]; }
/* traces are black (or blue): the red channel, which the grid leaves at 255, measures them */
static double dark(uint32_t p) { return 1 - R(p) / 255.0; }
static int is_white(uint32_t p) { return R(p) == 255 && G(p) == 255 && B(p) == 255; }
static int is_grid(uint32_t p) { return R(p) == 255 && G(p) < 235 && G(p) == B(p); }

/* darkness-weighted centre (pixel-centre coordinates) of column x over rows [y0, y1) */
static double centroid(const image *im, int x, int y0, int y1) {
    double s = 0, sw = 0;
    for (int y = y0; y < y1; y++) {
        double d = dark(at(im, x, y));
        s += (y + 0.5) * d;
        sw += d;
    }
    return sw > 0 ? s / sw : NAN;
}

static image pixels(int (*fn)(const ewb_tensor *, const ewb_plot_ecg_opts *, ewb_plot_output *), const ewb_tensor *x,
                    const ewb_plot_ecg_opts *o, double dpi) {
    ewb_plot_output out = {.format = "argb32", .dpi = dpi};
    image im = {0};
    if (fn(x, o, &out) != 0) { fprintf(stderr, "render: %s\n", ewb_last_error()); return im; }
    im.px = (uint32_t *)out.data;
    im.w = (int)out.width;
    im.h = (int)out.height;
    CHECK(out.nbytes == (int64_t)im.w * im.h * 4, "argb32 bytes %lld for %d x %d", (long long)out.nbytes, im.w, im.h);
    return im;
}

/* (L, n) f32 filled with f(lead, sample) */
static ewb_tensor *signal(int L, int n, double (*f)(int, int)) {
    int64_t s[2] = {L, n};
    ewb_tensor *t;
    if (ewb_tensor_new(&t, EWB_DTYPE_F32, 2, s)) exit(2);
    float *p = ewb_f32(t);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < n; i++) p[(size_t)l * n + i] = (float)f(l, i);
    return t;
}
static double zero(int l, int i) { return 0; }
static double step_at_1s(int l, int i) { return i >= 500 ? 1.0 : 0.0; }      /* fs 500 */
static double per_lead(int l, int i) { return 0.1 * (l + 1); }             /* lead l at (l+1)/10 mV */
static double gap(int l, int i) { return i >= 200 && i < 300 ? NAN : 0.0; } /* 0.4..0.6 s missing */

/* ---- files ---- */
static void test_files(void) {
    ewb_sim_config c = {.fs = 500, .seconds = 10, .hr_mean = 72, .hr_std = 2, .lf_hf = 0.5, .seed = 1};
    ewb_tensor *e, *rp;
    OK(ewb_sim_ecg(&c, &e, &rp));
    ewb_plot_ecg_opts o = {.fs = 500, .title = "Simulated sinus rhythm, 72 bpm"};

    /* 12-lead PNG at 100 dpi: 280 × 185 mm (cal 10 + 250 mm of grid, 4 rows of 40 mm) */
    ewb_plot_output out = {.file = path("plot_ecg12.png"), .dpi = 100};
    OK(ewb_plot_ecg12(e, &o, &out));
    long n;
    int w, h;
    unsigned char *b = read_file(out.file, &n);
    CHECK(b && png_size(b, n, &w, &h), "%s is a PNG", out.file);
    CHECK(w == lround(280 / 25.4 * 100) && h == lround(185 / 25.4 * 100), "PNG %d x %d, expected 1102 x 728", w, h);
    CHECK(out.width == w && out.height == h && out.data == NULL, "reported %g x %g", out.width, out.height);
    /* the same figure in memory is the same file */
    ewb_plot_output mem = {.dpi = 100};
    OK(ewb_plot_ecg12(e, &o, &mem));
    CHECK(mem.data && mem.nbytes == n && !memcmp(mem.data, b, (size_t)n), "PNG in memory (%lld bytes) == file (%ld)",
          (long long)mem.nbytes, n);
    ewb_plot_free(mem.data);
    free(b);

    /* 300 dpi, no rhythm strip (3 rows), 50 mm/s: cal 15 mm, grid 15 + 500 mm */
    ewb_plot_ecg_opts o2 = o;
    o2.rhythm = "";
    o2.speed = 50;
    out = (ewb_plot_output){.file = path("plot_ecg12_50mm.png"), .dpi = 300};
    OK(ewb_plot_ecg12(e, &o2, &out));
    b = read_file(out.file, &n);
    CHECK(b && png_size(b, n, &w, &h) && w == lround(535 / 25.4 * 300) && h == lround(145 / 25.4 * 300),
          "PNG %d x %d at 300 dpi", w, h);
    free(b);

    /* SVG: in mm, well-formed, with paths (grid, traces) */
    out = (ewb_plot_output){.file = path("plot_ecg12.svg")};
    OK(ewb_plot_ecg12(e, &o, &out));
    b = read_file(out.file, &n);
    int npath = 0;
    CHECK(b && !strncmp((char *)b, "<?xml", 5) && xml_ok((char *)b, "path", &npath), "%s is well-formed XML", out.file);
    CHECK(b && strstr((char *)b, "<svg") && strstr((char *)b, "width=\"280mm\"") && strstr((char *)b, "height=\"185mm\"") &&
              strstr((char *)b, "viewBox=\"0 0 280 185\""),
          "SVG sized 280 x 185 mm");
    CHECK(npath >= 16, "SVG has %d paths: grid, pulses, 13 traces", npath);
    CHECK(out.width == 280 && out.height == 185, "SVG size %g x %g mm", out.width, out.height);
    mem = (ewb_plot_output){.format = "svg"};
    OK(ewb_plot_ecg12(e, &o, &mem));
    char *svg = mem.data ? strndup((char *)mem.data, (size_t)mem.nbytes) : NULL;
    CHECK(svg && b && same_svg(svg, (char *)b), "SVG in memory == file");
    free(svg);
    ewb_plot_free(mem.data);
    free(b);

    /* the other figures, for looking at */
    ewb_plot_ecg_opts os = {.fs = 500, .markers = rp, .marker_lead = "II", .seconds = 5, .title = "R peaks on lead II"};
    out = (ewb_plot_output){.file = path("plot_strips.png")};
    OK(ewb_plot_strips(e, &os, &out));
    b = read_file(out.file, &n);
    /* 12 rows of 30 mm; 5 s: cal 10 + 125 mm -> grid 135 mm */
    CHECK(b && png_size(b, n, &w, &h) && w == lround(155 / 25.4 * 100) && h == lround((15 + 360 + 10) / 25.4 * 100),
          "strips %d x %d", w, h);
    free(b);
    c.hr_mean = 110;
    c.seed = 2;
    ewb_tensor *e2;
    OK(ewb_sim_ecg(&c, &e2, NULL));
    ewb_plot_ecg_opts op = {.fs = 500, .name1 = "real", .name2 = "generated", .title = "real vs generated"};
    out = (ewb_plot_output){.file = path("plot_pair.png")};
    OK(ewb_plot_ecg_pair(e, e2, &op, &out));
    CHECK(out.width == lround(550 / 25.4 * 100) && out.height == 728, "pair %g x %g", out.width, out.height);
    op.overlay = 1;
    out = (ewb_plot_output){.file = path("plot_overlay.svg")};
    OK(ewb_plot_ecg_pair(e, e2, &op, &out));
    CHECK(out.width == 280, "overlay %g mm wide", out.width);
    ewb_tensor_free(e2);
    ewb_tensor_free(e);
    ewb_tensor_free(rp);
}

/* ---- pixels: grid, baseline, gain ---- */
static void test_grid_and_gain(void) {
    ewb_tensor *x = signal(1, 1000, step_at_1s); /* 2 s: 0 mV, then 1 mV */
    ewb_plot_ecg_opts o = {.fs = 500};
    /* 254 dpi: 10 px per mm. Grid from (10, 15) mm; cal 10 mm; the row's
       baseline at 15 + 30/2 = 30 mm = 300 px; t = 0.5 s at 10 + 10 + 12.5 mm */
    image im = pixels(ewb_plot_strips, x, &o, 254);
    CHECK(im.w == 10 * (20 + 60) && im.h == 10 * (15 + 30 + 10), "strip %d x %d px", im.w, im.h);
    if (im.px) {
        /* along row 18.5 mm (between grid lines, away from the trace): a line
           exactly every 10 px, major (darker) every 50, white in between */
        int y = 185, lines = 0, bad = 0;
        for (int xp = 100; xp <= 100 + 600; xp++) {
            uint32_t p = at(&im, xp, y);
            int k = xp - 100;
            if (k % 10 == 0) {
                int major = k % 50 == 0;
                lines += is_grid(p);
                if (!is_grid(p) || (major ? G(p) > 150 : G(p) < 180)) bad++;
            } else if (k % 10 >= 2 && k % 10 <= 8 && !is_white(p)) {
                bad++;
            }
        }
        CHECK(lines == 61 && bad == 0, "grid: %d lines at 10 px (1 mm) spacing, %d misplaced pixels", lines, bad);
        /* down a column at 10.5 mm: horizontal lines every 10 px from the grid top (150) to its bottom (450) */
        lines = bad = 0;
        for (int yp = 150; yp <= 450; yp++) {
            uint32_t p = at(&im, 105, yp);
            if ((yp - 150) % 10 == 0) lines += is_grid(p);
            else if ((yp - 150) % 10 >= 2 && (yp - 150) % 10 <= 8 && !is_white(p)) bad++;
        }
        CHECK(lines == 31 && bad == 0, "grid rows: %d lines, %d misplaced pixels", lines, bad);
        /* 0 mV: the trace (0.25 mm = 3 px) is centred on pixel row 300 (the row
           below y = 300 px) and covers rows 299..301 exactly */
        int xa = 325;
        double c0 = centroid(&im, xa, 150, 450);
        CHECK(fabs(c0 - 300.5) < 1e-6, "0 mV trace centred at %.3f: on pixel row 300 (baseline 30 mm)", c0);
        CHECK(dark(at(&im, xa, 299)) > 0.95 && dark(at(&im, xa, 300)) > 0.95 && dark(at(&im, xa, 301)) > 0.95 &&
                  dark(at(&im, xa, 297)) == 0 && dark(at(&im, xa, 303)) == 0,
              "0 mV trace covers whole pixel rows 299..301");
        /* 1 mV, at t = 1.5 s (x = 57.5 mm): exactly 10 mm = 100 px higher */
        double c1 = centroid(&im, 575, 150, 450);
        CHECK(fabs((c0 - c1) - 100) < 1e-6, "1 mV moves the trace by %.4f px, expected 100 (10 mm)", c0 - c1);
        /* the calibration pulse's top (at x = 15 mm) is 1 mV up as well */
        double cp = centroid(&im, 150, 150, 450);
        CHECK(fabs((c0 - cp) - 100) < 1e-6, "calibration pulse height %.4f px", c0 - cp);
    }
    free(im.px);

    /* 100 dpi (3.937 px/mm): lines land on the nearest pixels, the spacing
       averages 1 mm and 1 mV = 39.37 px (antialiased) */
    im = pixels(ewb_plot_strips, x, &o, 100);
    if (im.px) {
        /* each run of grid pixels along row 18.5 mm is one line: its centre
           lies within half a pixel of a whole mm, and the lines count 0..60 mm */
        double s = 100 / 25.4;
        int y = (int)(18.5 * s), runs = 0, bad = 0;
        for (int xp = 0; xp < im.w; xp++) {
            if (!is_grid(at(&im, xp, y)) || (xp > 0 && is_grid(at(&im, xp - 1, y)))) continue;
            int end = xp;
            while (end + 1 < im.w && is_grid(at(&im, end + 1, y))) end++;
            double centre = (xp + end + 1) / 2.0, mm = centre / s - 10; /* from the grid's left edge */
            if (fabs(mm * s - runs * s) > 0.5 + 1e-9) bad++;
            runs++;
        }
        CHECK(runs == 61 && bad == 0, "100 dpi: %d grid lines, %d not within half a pixel of k mm (k = 0, 1, ...)", runs, bad);
        int top = (int)(15 * s), bottom = (int)(45 * s); /* the grid's rows, not the caption's */
        double c0 = centroid(&im, (int)(32.5 * s), top, bottom), c1 = centroid(&im, (int)(57.5 * s), top, bottom);
        CHECK(fabs(c0 - 30 * s) <= 0.5, "100 dpi: baseline at %.3f px, expected %.3f", c0, 30 * s);
        CHECK(fabs((c0 - c1) - 10 * s) < 0.05, "100 dpi: 1 mV = %.3f px, expected %.3f", c0 - c1, 10 * s);
    }
    free(im.px);

    /* 20 mm/mV doubles it; 50 mm/s moves t = 1.5 s to 10 + 15 + 75 mm */
    o.gain = 20;
    o.speed = 50;
    o.row = 40;
    im = pixels(ewb_plot_strips, x, &o, 254);
    if (im.px) {
        double c0 = centroid(&im, 10 * 50, 100, 550), c1 = centroid(&im, 10 * 100, 100, 550);
        CHECK(fabs(c0 - 350.5) < 1e-6 && fabs((c0 - c1) - 200) < 1e-6, "20 mm/mV: baseline %.3f, 1 mV = %.3f px", c0, c0 - c1);
    }
    free(im.px);
    ewb_tensor_free(x);
}

/* ---- pixels: each lead in its panel of the 12-lead layout ---- */
static void test_layout12(void) {
    ewb_tensor *x = signal(12, 5000, per_lead);
    ewb_plot_ecg_opts o = {.fs = 500};
    image im = pixels(ewb_plot_ecg12, x, &o, 254);
    if (im.px) {
        /* lead l = 3j + r: column j (t in 2.5j..2.5j+2.5 s), row r, baseline
           15 + 40 (r + 1/2) mm; its trace (l+1)/10 mV above it, at the middle
           of its panel: x = 10 + 10 + 25 (2.5 j + 1.25) mm */
        for (int l = 0; l < 12; l++) {
            int j = l / 3, r = l % 3;
            int xp = (int)(10 * (20 + 25 * (2.5 * j + 1.25)));
            double base = 10 * (15 + 40 * (r + 0.5)), want = base - 10 * 10 * 0.1 * (l + 1);
            double got = centroid(&im, xp, (int)(base - 200), (int)(base + 200));
            CHECK(fabs(got - (want + 0.5)) < 0.01, "lead %s: trace at row %.2f, expected %.2f", ewb_lead_name(l), got, want);
        }
        /* the rhythm strip: lead II (0.2 mV) across the whole 10 s, in row 4 */
        for (double t = 0.5; t < 10; t += 3) {
            double base = 10 * (15 + 40 * 3.5), got = centroid(&im, (int)(10 * (20 + 25 * t)), (int)base - 200, (int)base + 200);
            CHECK(fabs(got - (base - 20 + 0.5)) < 0.01, "rhythm strip at %.1f s: row %.2f, expected %.2f", t, got, base - 20);
        }
    }
    free(im.px);
    /* a strided view of the same data gives the same figure */
    int64_t s[2] = {5000, 12};
    ewb_tensor *xt, *v;
    OK(ewb_tensor_new(&xt, EWB_DTYPE_F32, 2, s));
    for (int i = 0; i < 5000; i++)
        for (int l = 0; l < 12; l++) ewb_f32(xt)[i * 12 + l] = (float)per_lead(l, i);
    OK(ewb_transpose(xt, 0, 1, &v));
    ewb_plot_output a = {.format = "argb32", .dpi = 50}, b = a;
    OK(ewb_plot_ecg12(x, &o, &a));
    OK(ewb_plot_ecg12(v, &o, &b));
    CHECK(a.data && b.data && a.nbytes == b.nbytes && !memcmp(a.data, b.data, (size_t)a.nbytes),
          "a transposed view draws the same pixels");
    ewb_plot_free(a.data);
    ewb_plot_free(b.data);
    ewb_tensor_free(v);
    ewb_tensor_free(xt);
    ewb_tensor_free(x);
}

/* ---- pixels: marks, gaps, overlay ---- */
static void test_marks_gaps_overlay(void) {
    ewb_tensor *x = signal(2, 1000, zero);
    int64_t ms[1] = {2};
    int64_t mk[2] = {250, 750}; /* t = 0.5 s and 1.5 s */
    ewb_tensor *marks;
    OK(ewb_tensor_from_data(&marks, EWB_DTYPE_I64, 1, ms, mk));
    ewb_plot_ecg_opts o = {.fs = 500, .markers = marks, .marker_lead = "2"};
    image im = pixels(ewb_plot_strips, x, &o, 254);
    if (im.px) {
        /* rows of 30 mm: lead 1 at 300 px, lead 2 at 600 px; marks only on lead 2 */
        uint32_t m1 = at(&im, 325, 300), m2 = at(&im, 325, 600), m3 = at(&im, 575, 600);
        CHECK(R(m1) < 40 && B(m1) < 40, "lead 1 unmarked: black trace (%d,%d,%d)", R(m1), G(m1), B(m1));
        CHECK(B(m2) > 150 && R(m2) < 60 && B(m3) > 150 && R(m3) < 60, "lead 2 marked: blue dots (%d,%d,%d)", R(m2), G(m2), B(m2));
        CHECK(is_white(at(&im, 325, 600 - 12)) || is_grid(at(&im, 325, 600 - 12)), "a mark is a small dot (0.7 mm)");
    }
    free(im.px);
    ewb_tensor_free(x);

    x = signal(1, 1000, gap);
    o = (ewb_plot_ecg_opts){.fs = 500};
    im = pixels(ewb_plot_strips, x, &o, 254);
    if (im.px) {
        /* NaN from 0.4 to 0.6 s: nothing at 0.5 s (x = 32.5 mm), trace at 0.3 and 0.7 s */
        double inside = 0;
        for (int y = 150; y < 450; y++) inside += dark(at(&im, 325, y));
        CHECK(inside == 0, "NaN samples leave a gap (darkness %g)", inside);
        CHECK(fabs(centroid(&im, 290, 150, 450) - 300.5) < 1e-6 && fabs(centroid(&im, 360, 150, 450) - 300.5) < 1e-6,
              "the trace resumes after the gap");
    }
    free(im.px);
    ewb_tensor_free(x);

    /* overlay: record B (1 mV everywhere) in blue over record A (0 mV) in black */
    ewb_tensor *a = signal(12, 5000, zero), *b = signal(12, 5000, per_lead);
    o = (ewb_plot_ecg_opts){.fs = 500, .overlay = 1};
    ewb_plot_output out = {.format = "argb32", .dpi = 254};
    OK(ewb_plot_ecg_pair(a, b, &o, &out));
    if (out.data) {
        image p = {(uint32_t *)out.data, (int)out.width, (int)out.height};
        int xp = 10 * (20 + 25 * 1.25);
        uint32_t pa = at(&p, xp, 350), pb = at(&p, xp, 350 - 10);
        CHECK(p.w == 2800, "overlay is one layout wide: %d px", p.w);
        CHECK(R(pa) < 40 && B(pa) < 40, "record A black on its baseline (%d,%d,%d)", R(pa), G(pa), B(pa));
        CHECK(B(pb) > 150 && R(pb) < 60, "record B blue 0.1 mV above (%d,%d,%d)", R(pb), G(pb), B(pb));
    }
    ewb_plot_free(out.data);
    /* side by side: B's lead I in the second layout, 10 mm right of the first (280 mm) */
    o.overlay = 0;
    out = (ewb_plot_output){.format = "argb32", .dpi = 254};
    OK(ewb_plot_ecg_pair(a, b, &o, &out));
    if (out.data) {
        image p = {(uint32_t *)out.data, (int)out.width, (int)out.height};
        int xa = 10 * (20 + 25 * 1.25), xb = xa + 10 * 270;
        CHECK(p.w == 5500, "pair is %d px wide", p.w);
        CHECK(fabs(centroid(&p, xa, 150, 550) - 350.5) < 0.01 && fabs(centroid(&p, xb, 150, 550) - 340.5) < 0.01,
              "A's lead I at 350, B's at 340: %.2f %.2f", centroid(&p, xa, 150, 550), centroid(&p, xb, 150, 550));
    }
    ewb_plot_free(out.data);
    ewb_tensor_free(a);
    ewb_tensor_free(b);
    ewb_tensor_free(marks);
}

/* ---- charts ---- */
static int series_color(uint32_t p) { return B(p) > R(p) + 60; } /* palette[0] is blue */

/* first and last rows holding the series colour in column x */
static double series_row(const image *im, int x) {
    double s = 0, n = 0;
    for (int y = 0; y < im->h; y++)
        if (series_color(at(im, x, y))) s += y, n++;
    return n ? s / n : NAN;
}

static void test_charts(void) {
    /* y = 10^x over x = 0..3: a straight line on a log axis, curved on a linear one */
    float yv[31], xv[31];
    for (int i = 0; i <= 30; i++) xv[i] = (float)(i / 10.0), yv[i] = (float)pow(10, i / 10.0);
    int64_t n[1] = {31};
    ewb_tensor *x, *y;
    OK(ewb_tensor_from_data(&x, EWB_DTYPE_F32, 1, n, xv));
    OK(ewb_tensor_from_data(&y, EWB_DTYPE_F32, 1, n, yv));
    ewb_plot_series s = {x, y, NULL};
    for (int logy = 0; logy < 2; logy++) {
        ewb_plot_chart_opts o = {.logy = logy};
        ewb_plot_output out = {.format = "argb32", .dpi = 100};
        OK(ewb_plot_lines(&s, 1, &o, &out));
        CHECK(out.width == lround(160 / 25.4 * 100) && out.height == lround(100 / 25.4 * 100), "chart %g x %g", out.width,
              out.height);
        if (!out.data) continue;
        image im = {(uint32_t *)out.data, (int)out.width, (int)out.height};
        /* three columns evenly spaced across the middle */
        double r1 = series_row(&im, im.w * 3 / 10), r2 = series_row(&im, im.w * 5 / 10), r3 = series_row(&im, im.w * 7 / 10);
        double bend = fabs((r1 - r2) - (r2 - r3));
        if (logy) CHECK(bend < 2 && r1 > r3, "log y: 10^x is straight (rows %.1f %.1f %.1f)", r1, r2, r3);
        else CHECK(bend > 20 && r1 > r3, "linear y: 10^x bends (rows %.1f %.1f %.1f)", r1, r2, r3);
        ewb_plot_free(out.data);
    }
    /* several series with names, x omitted, NaN and non-positive points skipped on a log axis */
    float l2[5] = {4, NAN, 1, 0, -1};
    int64_t n5[1] = {5};
    ewb_tensor *y2;
    OK(ewb_tensor_from_data(&y2, EWB_DTYPE_F32, 1, n5, l2));
    ewb_plot_series two[2] = {{x, y, "train"}, {NULL, y2, "val"}};
    ewb_plot_chart_opts o = {.title = "loss", .xlabel = "step", .ylabel = "loss", .logy = 1, .width = 120, .height = 80};
    ewb_plot_output out = {.file = path("plot_loss.png"), .dpi = 150};
    OK(ewb_plot_lines(two, 2, &o, &out));
    CHECK(out.width == lround(120 / 25.4 * 150) && out.height == lround(80 / 25.4 * 150), "loss chart %g x %g", out.width, out.height);
    out = (ewb_plot_output){.file = path("plot_loss.svg")};
    OK(ewb_plot_lines(two, 2, &o, &out));
    long nb;
    unsigned char *b = read_file(out.file, &nb);
    int npath = 0;
    CHECK(b && xml_ok((char *)b, "path", &npath) && strstr((char *)b, "width=\"120mm\"") && npath >= 4,
          "chart SVG well-formed, %d paths", npath);
    free(b);
    /* scatter */
    o = (ewb_plot_chart_opts){.points = 1, .xlabel = "x", .ylabel = "10^x"};
    out = (ewb_plot_output){.file = path("plot_scatter.png")};
    OK(ewb_plot_lines(&s, 1, &o, &out));
    /* an integer x (steps) and a constant y still make a frame */
    int64_t steps[3] = {100, 200, 300};
    ewb_tensor *xi, *yc;
    int64_t n3[1] = {3};
    OK(ewb_tensor_from_data(&xi, EWB_DTYPE_I64, 1, n3, steps));
    OK(ewb_full(&yc, EWB_DTYPE_F32, 1, n3, 2.5));
    ewb_plot_series si = {xi, yc, NULL};
    out = (ewb_plot_output){.format = "png"};
    OK(ewb_plot_lines(&si, 1, NULL, &out));
    ewb_plot_free(out.data);

    /* errors */
    FAILS(ewb_plot_lines(&s, 0, NULL, &out), "1 to 1000 series");
    ewb_plot_series bad = {x, y2, NULL};
    FAILS(ewb_plot_lines(&bad, 1, NULL, &out), "differ in length");
    ewb_plot_series noy = {x, NULL, NULL};
    FAILS(ewb_plot_lines(&noy, 1, NULL, &out), "series 0 has no y");
    int64_t s2[2] = {2, 3};
    ewb_tensor *m;
    OK(ewb_tensor_new(&m, EWB_DTYPE_F32, 2, s2));
    ewb_plot_series twod = {NULL, m, NULL};
    FAILS(ewb_plot_lines(&twod, 1, NULL, &out), "must be a 1-D numeric tensor, got f32[2,3]");
    o = (ewb_plot_chart_opts){.width = 10};
    FAILS(ewb_plot_lines(&s, 1, &o, &out), "at least 40 × 30 mm");
    FAILS(ewb_plot_lines(&s, 1, NULL, NULL), "no output");
    ewb_tensor_free(m);
    ewb_tensor_free(xi);
    ewb_tensor_free(yc);
    ewb_tensor_free(y2);
    ewb_tensor_free(x);
    ewb_tensor_free(y);
}

static void test_errors(void) {
    ewb_tensor *x = signal(12, 1000, zero), *x11 = signal(11, 1000, zero), *xi;
    int64_t s[2] = {12, 1000};
    OK(ewb_tensor_new(&xi, EWB_DTYPE_I32, 2, s));
    ewb_plot_ecg_opts o = {.fs = 500};
    ewb_plot_output out = {.format = "png"};
    FAILS(ewb_plot_ecg12(x11, &o, &out), "plot_ecg12: expected a 12-lead f32 signal (12, n) in mV, got f32[11,1000]");
    FAILS(ewb_plot_ecg12(xi, &o, &out), "got i32[12,1000]");
    FAILS(ewb_plot_ecg12(NULL, &o, &out), "no signal");
    FAILS(ewb_plot_ecg_pair(x, x11, &o, &out), "got f32[11,1000]");
    FAILS(ewb_plot_strips(xi, &o, &out), "plot_strips: expected an f32 signal");
    FAILS(ewb_plot_ecg12(x, NULL, &out), "options are required");
    FAILS(ewb_plot_ecg12(x, &o, NULL), "no output");
    double bad_fs[3] = {0, -500, NAN};
    for (int i = 0; i < 3; i++) {
        ewb_plot_ecg_opts b = {.fs = bad_fs[i]};
        FAILS(ewb_plot_ecg12(x, &b, &out), "fs must be > 0 Hz");
        FAILS(ewb_plot_strips(x, &b, &out), "fs must be > 0 Hz");
    }
    ewb_plot_ecg_opts b = {.fs = 500, .gain = -1};
    FAILS(ewb_plot_ecg12(x, &b, &out), "gain must be >= 0");
    b = (ewb_plot_ecg_opts){.fs = 500, .start = 2};
    FAILS(ewb_plot_ecg12(x, &b, &out), "start 2 s is past the end of the record (2 s)");
    b = (ewb_plot_ecg_opts){.fs = 500, .rhythm = "V7"};
    FAILS(ewb_plot_ecg12(x, &b, &out), "rhythm-strip lead 'V7' is not among the leads (I, II, III");
    int64_t ms[1] = {2}, mk[2] = {10, 1000};
    ewb_tensor *marks, *fmarks;
    OK(ewb_tensor_from_data(&marks, EWB_DTYPE_I64, 1, ms, mk));
    OK(ewb_tensor_new(&fmarks, EWB_DTYPE_F32, 1, ms));
    b = (ewb_plot_ecg_opts){.fs = 500, .markers = marks};
    FAILS(ewb_plot_ecg12(x, &b, &out), "marker 1 is at sample 1000, outside the record (0..999)");
    b.markers = fmarks;
    FAILS(ewb_plot_ecg12(x, &b, &out), "markers must be (m) i64 or i32 sample positions, got f32[2]");
    mk[1] = 20;
    ewb_tensor *ok_marks;
    OK(ewb_tensor_from_data(&ok_marks, EWB_DTYPE_I64, 1, ms, mk));
    b = (ewb_plot_ecg_opts){.fs = 500, .markers = ok_marks, .marker_lead = "X"};
    FAILS(ewb_plot_strips(x, &b, &out), "marker lead 'X' is not among the leads");

    /* outputs */
    out = (ewb_plot_output){.file = "/nonexistent-dir/ecg.png"};
    FAILS(ewb_plot_ecg12(x, &o, &out), "plot_ecg12: cannot write '/nonexistent-dir/ecg.png'");
    CHECK(out.data == NULL && out.width == 0, "a failed write returns nothing");
    out = (ewb_plot_output){.file = "/nonexistent-dir/ecg.svg"};
    FAILS(ewb_plot_ecg12(x, &o, &out), "cannot write '/nonexistent-dir/ecg.svg'");
    out = (ewb_plot_output){.file = path("ecg.jpg")};
    FAILS(ewb_plot_ecg12(x, &o, &out), "use a .png or .svg file name");
    out = (ewb_plot_output){.format = "gif"};
    FAILS(ewb_plot_ecg12(x, &o, &out), "unknown figure format 'gif'");
    out = (ewb_plot_output){.dpi = 5};
    FAILS(ewb_plot_ecg12(x, &o, &out), "dpi must be in 10..2400");
    /* 2000 s of strip at 600 dpi is far beyond a raster's limits, but fine as SVG */
    ewb_tensor *longx = signal(1, 200000, zero);
    ewb_plot_ecg_opts lo = {.fs = 100};
    out = (ewb_plot_output){.dpi = 600};
    FAILS(ewb_plot_strips(longx, &lo, &out), "figure too large");
    out = (ewb_plot_output){.format = "svg"};
    OK(ewb_plot_strips(longx, &lo, &out));
    CHECK(out.width == 50030, "2000 s at 25 mm/s: %g mm", out.width);
    ewb_plot_free(out.data);
    /* a disposed tensor */
    ewb_tensor *d = signal(12, 100, zero);
    ewb_tensor_dispose(d);
    out = (ewb_plot_output){.format = "png"};
    FAILS(ewb_plot_ecg12(d, &o, &out), "plot_ecg12");
    ewb_tensor_free(d);
    ewb_tensor_free(longx);
    ewb_tensor_free(ok_marks);
    ewb_tensor_free(marks);
    ewb_tensor_free(fmarks);
    ewb_tensor_free(xi);
    ewb_tensor_free(x11);
    ewb_tensor_free(x);
}

int main(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tests", build_dir());
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) perror(dir);
    test_files();
    test_grid_and_gain();
    test_layout12();
    test_marks_gaps_overlay();
    test_charts();
    test_errors();
    return check_report();
}
