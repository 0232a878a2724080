/* plot.c: figures with cairo, the only file that calls cairo.
 *
 * ECG figures are drawn as a cardiologist reads them: on ECG paper (1 mm
 * minor and 5 mm major grid) at a paper speed in mm/s and a gain in mm/mV,
 * with a 1 mV calibration pulse at the start of each row. Besides the
 * clinical 12-lead layout there are stacked strips (any number of leads,
 * optional marks such as R peaks or wave boundaries) and a pair figure
 * (two records side by side or overlaid, e.g. real against generated).
 * Charts are line plots of training curves and scatter plots.
 *
 * Every figure is laid out in millimetres and drawn through a `canvas`
 * that maps mm to device units: pixels at the requested dpi for PNG and raw
 * pixels, millimetres for SVG (the SVG document unit is set to mm). On a
 * raster, grid lines and trace baselines are snapped to whole pixels, so the
 * grid is crisp and a flat 0 mV trace covers whole pixel rows.
 *
 * Text uses cairo's toy API with the generic "sans-serif" face. It is drawn
 * in a second pass with its own cairo context, after all shapes: where no
 * font is installed (minimal CI images) text may fail or be missing, but
 * the figure itself is still complete (cairo then falls back to its built-in
 * font, which has ASCII only, so the figure's own text is ASCII). Layout
 * never depends on measured text; only wrapping and alignment do. */
#include "internal.h"
#include <cairo-svg.h>
#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PI 3.14159265358979323846

static const double INK[3] = {0, 0, 0};
static const double MINOR_RGB[3] = {1.0, 0.80, 0.80}; /* red channel 1: the traces alone darken it */
static const double MAJOR_RGB[3] = {1.0, 0.50, 0.50};
static const double SECOND_RGB[3] = {0.05, 0.35, 0.95}; /* the second record of a pair overlay */
static const double MARK_RGB[3] = {0.0, 0.45, 0.85};
static const double PALETTE[10][3] = {
    {0.12, 0.47, 0.71}, {1.00, 0.50, 0.05}, {0.17, 0.63, 0.17}, {0.84, 0.15, 0.16}, {0.58, 0.40, 0.74},
    {0.55, 0.34, 0.29}, {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}, {0.74, 0.74, 0.13}, {0.09, 0.75, 0.81},
};
static const double MAX_PIXELS = 100e6;

/* ------------------------------------------------------------------ canvas */

typedef struct {
    double x, y, size; /* mm; y is the text baseline */
    double rgb[3];
    int align;         /* -1 left, 0 centre, 1 right */
    int bold;
    double angle;      /* radians, counter-clockwise on the page */
    double maxw;       /* mm: wrap width (0 = no wrap) */
    int maxlines;
    char *s;
} text_item;

typedef struct {
    cairo_t *cr;
    double s;       /* device units per mm */
    int raster;     /* snap lines to pixels */
    text_item *text;
    int ntext, cap;
    int oom;
} canvas;

static double dev(const canvas *c, double mm) { return mm * c->s; }
/* a line width in device units: whole pixels (at least one) on a raster */
static double line_w(const canvas *c, double mm) {
    double w = mm * c->s;
    return c->raster ? fmax(1, round(w)) : w;
}
/* the centre of a line of width w near dev: on a raster, so that the line
   covers whole pixels */
static double snap(const canvas *c, double d, double w) { return c->raster ? round(d - w / 2) + w / 2 : d; }
static void rgb(canvas *c, const double *k) { cairo_set_source_rgb(c->cr, k[0], k[1], k[2]); }

static void text(canvas *c, double x, double y, double size, int align, const double *k, int bold, const char *s) {
    if (!s || !*s) return;
    if (c->ntext == c->cap) {
        int cap = c->cap ? 2 * c->cap : 64;
        text_item *t = realloc(c->text, sizeof *t * cap);
        if (!t) { c->oom = 1; return; }
        c->text = t;
        c->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy) { c->oom = 1; return; }
    c->text[c->ntext++] = (text_item){x, y, size, {k[0], k[1], k[2]}, align, bold, 0, 0, 1, copy};
}
static text_item *last_text(canvas *c) { return c->ntext ? &c->text[c->ntext - 1] : NULL; }

static void show_line(cairo_t *cr, const text_item *t, double s, double dy, const char *line) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, line, &e);
    cairo_save(cr);
    cairo_translate(cr, t->x * s, t->y * s);
    cairo_rotate(cr, -t->angle);
    cairo_move_to(cr, -(t->align + 1) * 0.5 * e.x_advance, dy);
    cairo_show_text(cr, line);
    cairo_restore(cr);
}

/* one item, wrapped at word boundaries to maxw and at most maxlines lines */
static void draw_text_item(cairo_t *cr, const text_item *t, double s) {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           t->bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, t->size * s);
    cairo_set_source_rgb(cr, t->rgb[0], t->rgb[1], t->rgb[2]);
    if (t->maxw <= 0) { show_line(cr, t, s, 0, t->s); return; }
    size_t len = strlen(t->s);
    char *line = malloc(len + 8);
    if (!line) return;
    const char *p = t->s;
    for (int k = 0; k < t->maxlines && *p; k++) {
        while (*p == ' ') p++;
        /* take words while they fit (always at least one); the last line keeps room for " ..." */
        double room = t->maxw * s;
        if (k == t->maxlines - 1) {
            cairo_text_extents_t e;
            cairo_text_extents(cr, " ...", &e);
            room -= e.x_advance;
        }
        const char *end = p, *q = p;
        while (*q) {
            const char *w = q;
            while (*w == ' ') w++;
            while (*w && *w != ' ') w++;
            memcpy(line, p, (size_t)(w - p));
            line[w - p] = 0;
            cairo_text_extents_t e;
            cairo_text_extents(cr, line, &e);
            if (end != p && e.x_advance > room) break;
            end = q = w;
        }
        size_t n = (size_t)(end - p);
        memcpy(line, p, n);
        line[n] = 0;
        p = end;
        while (*p == ' ') p++;
        if (k == t->maxlines - 1 && *p) strcpy(line + n, " ..."); /* more follows */
        show_line(cr, t, s, k * t->size * 1.4 * s, line);
    }
    free(line);
}

static void draw_texts(canvas *c, cairo_surface_t *surf) {
    cairo_t *cr = cairo_create(surf);
    for (int i = 0; i < c->ntext && cairo_status(cr) == CAIRO_STATUS_SUCCESS; i++) draw_text_item(cr, &c->text[i], c->s);
    cairo_destroy(cr); /* a text failure (no fonts) leaves the shapes intact */
}

static void canvas_free(canvas *c) {
    for (int i = 0; i < c->ntext; i++) free(c->text[i].s);
    free(c->text);
}

/* ------------------------------------------------------------------ output */

typedef struct { unsigned char *p; size_t n, cap; } membuf;

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int len) {
    membuf *m = closure;
    if (m->n + len > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->n + len) cap *= 2;
        unsigned char *p = realloc(m->p, cap);
        if (!p) return CAIRO_STATUS_NO_MEMORY;
        m->p = p;
        m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
    return CAIRO_STATUS_SUCCESS;
}

void ewb_plot_free(void *data) { free(data); }

enum { FMT_PNG, FMT_SVG, FMT_ARGB };
typedef void (*draw_fn)(canvas *c, void *ud);

static int output_format(const char *op, const ewb_plot_output *out, int *fmt) {
    if (out->file) {
        const char *dot = strrchr(out->file, '.');
        if (dot && !strcasecmp(dot, ".png")) *fmt = FMT_PNG;
        else if (dot && !strcasecmp(dot, ".svg")) *fmt = FMT_SVG;
        else return ewb_error("%s: cannot tell the format of '%s': use a .png or .svg file name", op, out->file);
        return 0;
    }
    const char *f = out->format ? out->format : "png";
    if (!strcasecmp(f, "png")) *fmt = FMT_PNG;
    else if (!strcasecmp(f, "svg")) *fmt = FMT_SVG;
    else if (!strcasecmp(f, "argb32")) *fmt = FMT_ARGB;
    else return ewb_error("%s: unknown figure format '%s' (png, svg or argb32)", op, f);
    return 0;
}

/* draws the figure (w_mm × h_mm) onto the surface the output asks for */
static int render(const char *op, double w_mm, double h_mm, draw_fn draw, void *ud, ewb_plot_output *out) {
    out->data = NULL;
    out->nbytes = 0;
    out->width = out->height = 0;
    int fmt = FMT_PNG;
    EWB_TRY(output_format(op, out, &fmt));
    double dpi = out->dpi == 0 ? 100 : out->dpi;
    EWB_CHECK(dpi >= 10 && dpi <= 2400, "%s: dpi must be in 10..2400, got %g", op, out->dpi);

    canvas c = {0};
    membuf mem = {0};
    cairo_surface_t *surf;
    int W = 0, H = 0;
    if (fmt == FMT_SVG) {
        surf = out->file ? cairo_svg_surface_create(out->file, w_mm, h_mm)
                         : cairo_svg_surface_create_for_stream(mem_write, &mem, w_mm, h_mm);
        cairo_svg_surface_set_document_unit(surf, CAIRO_SVG_UNIT_MM);
        c.s = 1;
        out->width = w_mm;
        out->height = h_mm;
    } else {
        c.s = dpi / 25.4;
        c.raster = 1;
        W = (int)lround(w_mm * c.s);
        H = (int)lround(h_mm * c.s);
        EWB_CHECK(W <= 32767 && H <= 32767 && (double)W * H <= MAX_PIXELS, "%s: figure too large (%d × %d px at %g dpi); show fewer seconds or lower the dpi",
                  op, W, H, dpi);
        surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, W, H);
        out->width = W;
        out->height = H;
    }
    if (cairo_surface_status(surf) != CAIRO_STATUS_SUCCESS) {
        int rc = out->file ? ewb_error("%s: cannot write '%s': %s", op, out->file, cairo_status_to_string(cairo_surface_status(surf)))
                           : ewb_error("%s: cairo: %s", op, cairo_status_to_string(cairo_surface_status(surf)));
        cairo_surface_destroy(surf);
        free(mem.p);
        return rc;
    }
    c.cr = cairo_create(surf);
    cairo_set_source_rgb(c.cr, 1, 1, 1);
    cairo_paint(c.cr);
    draw(&c, ud);
    cairo_status_t st = cairo_status(c.cr);
    cairo_destroy(c.cr);
    if (st == CAIRO_STATUS_SUCCESS && !c.oom) draw_texts(&c, surf);
    canvas_free(&c);

    int rc = 0;
    if (st != CAIRO_STATUS_SUCCESS || c.oom) {
        rc = ewb_error("%s: cairo: %s", op, c.oom ? "out of memory" : cairo_status_to_string(st));
    } else if (fmt == FMT_SVG) {
        cairo_surface_finish(surf);
        st = cairo_surface_status(surf);
        if (st != CAIRO_STATUS_SUCCESS)
            rc = out->file ? ewb_error("%s: cannot write '%s': %s", op, out->file, cairo_status_to_string(st))
                           : ewb_error("%s: cairo: %s", op, cairo_status_to_string(st));
    } else if (fmt == FMT_PNG) {
        cairo_surface_flush(surf);
        st = out->file ? cairo_surface_write_to_png(surf, out->file) : cairo_surface_write_to_png_stream(surf, mem_write, &mem);
        if (st != CAIRO_STATUS_SUCCESS)
            rc = out->file ? ewb_error("%s: cannot write '%s': %s", op, out->file, cairo_status_to_string(st))
                           : ewb_error("%s: cairo: %s", op, cairo_status_to_string(st));
    } else { /* FMT_ARGB: rows of 0xAARRGGBB */
        cairo_surface_flush(surf);
        const unsigned char *px = cairo_image_surface_get_data(surf);
        int stride = cairo_image_surface_get_stride(surf);
        mem.p = malloc((size_t)W * H * 4 + 1);
        if (!mem.p) rc = ewb_error("%s: out of memory for %d × %d px", op, W, H);
        else {
            for (int j = 0; j < H; j++) memcpy(mem.p + (size_t)j * W * 4, px + (size_t)j * stride, (size_t)W * 4);
            mem.n = (size_t)W * H * 4;
        }
    }
    cairo_surface_destroy(surf);
    if (rc == 0 && !out->file) {
        out->data = mem.p;
        out->nbytes = (int64_t)mem.n;
    } else {
        free(mem.p);
    }
    if (rc != 0) out->width = out->height = 0;
    return rc;
}

/* ------------------------------------------------------------- ECG paper */

typedef struct {
    const char *op;
    const ewb_plot_ecg_opts *o;
    double fs, speed, gain, row, start, cal, shown; /* shown: seconds across the grid */
    int L;                                          /* leads per record */
    int nrec;
    const float *sig[2]; /* (L, n[r]) contiguous, mV */
    int64_t n[2];
    ewb_tensor *hold[2]; /* contiguous references behind sig */
    const char **names;  /* L lead names */
    char *name_buf;
    int rhythm;          /* lead index of the rhythm strip, -1 = none */
    int64_t *marks;
    int nmarks;
    int mark_lead;       /* -1 = every lead */
    double W, H, gw, gh; /* paper and grid, mm */
} ecg_fig;

enum { PAPER_LEFT = 10, PAPER_TOP = 15, PAPER_BOTTOM = 10 };

static void draw_grid(canvas *c, double x0, double y0, double w, double h) {
    int nx = (int)lround(w), ny = (int)lround(h);
    for (int major = 0; major < 2; major++) {
        double lw = major ? line_w(c, 0.2) : line_w(c, 0.08);
        if (major && c->raster && lw < 2) lw = 2; /* major lines stay bolder than minor ones */
        cairo_new_path(c->cr);
        for (int k = 0; k <= nx; k++) {
            if ((k % 5 == 0) != major) continue;
            double x = snap(c, dev(c, x0 + k), lw);
            cairo_move_to(c->cr, x, dev(c, y0));
            cairo_line_to(c->cr, x, dev(c, y0 + ny));
        }
        for (int k = 0; k <= ny; k++) {
            if ((k % 5 == 0) != major) continue;
            double y = snap(c, dev(c, y0 + k), lw);
            cairo_move_to(c->cr, dev(c, x0), y);
            cairo_line_to(c->cr, dev(c, x0 + nx), y);
        }
        cairo_set_line_width(c->cr, lw);
        cairo_set_line_cap(c->cr, CAIRO_LINE_CAP_SQUARE);
        rgb(c, major ? MAJOR_RGB : MINOR_RGB);
        cairo_stroke(c->cr);
    }
}

static double trace_w(const canvas *c) { return line_w(c, 0.25); }
/* the device y of a row's 0 mV line */
static double baseline(const canvas *c, double base_mm) { return snap(c, dev(c, base_mm), trace_w(c)); }

/* the 1 mV, 0.2 s calibration pulse in the calibration area at x0 */
static void draw_cal(canvas *c, const ecg_fig *f, double x0, double base_mm) {
    double y = baseline(c, base_mm), up = dev(c, f->gain), pw = 0.2 * f->speed;
    double xa = x0 + (f->cal - pw) / 2;
    cairo_new_path(c->cr);
    cairo_move_to(c->cr, dev(c, x0 + 1), y);
    cairo_line_to(c->cr, dev(c, xa), y);
    cairo_line_to(c->cr, dev(c, xa), y - up);
    cairo_line_to(c->cr, dev(c, xa + pw), y - up);
    cairo_line_to(c->cr, dev(c, xa + pw), y);
    cairo_line_to(c->cr, dev(c, x0 + f->cal - 1), y);
    cairo_set_line_width(c->cr, trace_w(c));
    cairo_set_line_join(c->cr, CAIRO_LINE_JOIN_MITER);
    rgb(c, INK);
    cairo_stroke(c->cr);
}

/* lead `lead` of record `rec` over [t0, t1] s, on the row whose 0 mV line is
   base_mm, in a grid whose left edge is gx */
static void draw_trace(canvas *c, const ecg_fig *f, int rec, int lead, double gx, double base_mm, double t0, double t1,
                       const double *k) {
    const float *v = f->sig[rec] + (int64_t)lead * f->n[rec];
    int64_t n = f->n[rec];
    int64_t i0 = (int64_t)ceil(t0 * f->fs - 1e-6), i1 = (int64_t)floor(t1 * f->fs + 1e-6);
    if (i0 < 0) i0 = 0;
    if (i1 > n - 1) i1 = n - 1;
    double y0 = baseline(c, base_mm), g = dev(c, f->gain), xs = gx + f->cal - f->start * f->speed;
    cairo_new_path(c->cr);
    int pen = 0;
    for (int64_t i = i0; i <= i1; i++) {
        if (!isfinite(v[i])) { pen = 0; continue; } /* a gap */
        double x = dev(c, xs + i / f->fs * f->speed), y = y0 - v[i] * g;
        if (pen) cairo_line_to(c->cr, x, y);
        else cairo_move_to(c->cr, x, y);
        pen = 1;
    }
    cairo_set_line_width(c->cr, trace_w(c));
    cairo_set_line_join(c->cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(c->cr, CAIRO_LINE_CAP_ROUND);
    rgb(c, k);
    cairo_stroke(c->cr);

    if (rec != 0 || !f->marks || (f->mark_lead >= 0 && f->mark_lead != lead)) return;
    for (int m = 0; m < f->nmarks; m++) {
        int64_t i = f->marks[m];
        if (i < i0 || i > i1 || !isfinite(v[i])) continue;
        double x = xs + i / f->fs * f->speed, y = (y0 - v[i] * g) / c->s;
        cairo_new_path(c->cr);
        cairo_arc(c->cr, dev(c, x), dev(c, y), dev(c, 0.7), 0, 2 * PI);
        rgb(c, MARK_RGB);
        cairo_fill(c->cr);
        if (f->o->marker_labels && f->o->marker_labels[m])
            text(c, x, y - 1.6, 2.5, 0, MARK_RGB, 0, f->o->marker_labels[m]);
    }
}

/* the short vertical bar where one column's lead ends and the next begins */
static void draw_switch(canvas *c, double x_mm, double base_mm) {
    double w = line_w(c, 0.25), x = snap(c, dev(c, x_mm), w), y = baseline(c, base_mm);
    cairo_new_path(c->cr);
    cairo_move_to(c->cr, x, y - dev(c, 3));
    cairo_line_to(c->cr, x, y + dev(c, 3));
    cairo_set_line_width(c->cr, w);
    rgb(c, INK);
    cairo_stroke(c->cr);
}

static void lead_label(canvas *c, const ecg_fig *f, double x_mm, double base_mm, int lead) {
    text(c, x_mm + 1, base_mm - f->row / 2 + 4.5, 3.5, -1, INK, 1, f->names[lead]);
}

static void caption(canvas *c, const ecg_fig *f, double t_end) {
    char buf[160];
    snprintf(buf, sizeof buf, "%g mm/s, %g mm/mV, fs %g Hz, %.4g-%.4g s", f->speed, f->gain, f->fs, f->start, t_end);
    text(c, PAPER_LEFT, PAPER_TOP + f->gh + 6, 3, -1, INK, 0, buf);
}

static void title(canvas *c, const ecg_fig *f, int maxlines) {
    if (!f->o->title) return;
    text(c, PAPER_LEFT, 6.5, 3.5, -1, INK, 1, f->o->title);
    text_item *t = last_text(c);
    if (t) {
        t->maxw = f->W - 2 * PAPER_LEFT;
        t->maxlines = maxlines;
    }
}

/* the 3 × 4 + rhythm layout of record rec at grid left edge gx; the grid is drawn separately */
static void layout12(canvas *c, const ecg_fig *f, int rec, double gx, const double *k, int labels) {
    double col = 2.5;
    for (int r = 0; r < 3; r++) {
        double base = PAPER_TOP + f->row * (r + 0.5);
        for (int j = 0; j < 4; j++) {
            int lead = 3 * j + r;
            double t0 = f->start + col * j, x = gx + f->cal + col * j * f->speed;
            draw_trace(c, f, rec, lead, gx, base, t0, t0 + col, k);
            if (j > 0 && labels) draw_switch(c, x, base);
            if (labels) lead_label(c, f, x, base, lead);
        }
    }
    if (f->rhythm >= 0) {
        double base = PAPER_TOP + f->row * 3.5;
        draw_trace(c, f, rec, f->rhythm, gx, base, f->start, f->start + f->shown, k);
        if (labels) lead_label(c, f, gx + f->cal, base, f->rhythm);
    }
}

static void cal_pulses(canvas *c, const ecg_fig *f, double gx, int rows) {
    for (int r = 0; r < rows; r++) draw_cal(c, f, gx, PAPER_TOP + f->row * (r + 0.5));
}

/* the end of the time shown, s */
static double record_end(const ecg_fig *f) {
    double end = 0;
    for (int r = 0; r < f->nrec; r++) end = fmax(end, f->n[r] / f->fs);
    return fmin(f->start + f->shown, end);
}

static void draw_ecg12(canvas *c, void *ud) {
    ecg_fig *f = ud;
    int rows = 3 + (f->rhythm >= 0);
    draw_grid(c, PAPER_LEFT, PAPER_TOP, f->gw, f->gh);
    cal_pulses(c, f, PAPER_LEFT, rows);
    layout12(c, f, 0, PAPER_LEFT, INK, 1);
    title(c, f, 2);
    caption(c, f, record_end(f));
}

static void draw_pair(canvas *c, void *ud) {
    ecg_fig *f = ud;
    int rows = 3 + (f->rhythm >= 0);
    const char *n1 = f->o->name1 ? f->o->name1 : "A", *n2 = f->o->name2 ? f->o->name2 : "B";
    if (f->o->overlay) {
        draw_grid(c, PAPER_LEFT, PAPER_TOP, f->gw, f->gh);
        cal_pulses(c, f, PAPER_LEFT, rows);
        layout12(c, f, 0, PAPER_LEFT, INK, 1);
        layout12(c, f, 1, PAPER_LEFT, SECOND_RGB, 0);
        /* legend on the caption line, from the middle of the paper */
        double y = PAPER_TOP + f->gh + 6, x = PAPER_LEFT + f->gw / 2;
        const double *ks[2] = {INK, SECOND_RGB};
        const char *ns[2] = {n1, n2};
        for (int i = 0; i < 2; i++) {
            cairo_new_path(c->cr);
            cairo_move_to(c->cr, dev(c, x), dev(c, y - 1));
            cairo_line_to(c->cr, dev(c, x + 6), dev(c, y - 1));
            cairo_set_line_width(c->cr, dev(c, 0.5));
            rgb(c, ks[i]);
            cairo_stroke(c->cr);
            text(c, x + 8, y, 3, -1, ks[i], 0, ns[i]);
            x += 16 + 2 * (double)strlen(ns[i]);
        }
    } else {
        for (int r = 0; r < 2; r++) {
            double gx = PAPER_LEFT + r * (f->gw + PAPER_LEFT);
            draw_grid(c, gx, PAPER_TOP, f->gw, f->gh);
            cal_pulses(c, f, gx, rows);
            layout12(c, f, r, gx, INK, 1);
            text(c, gx, 12.5, 3.5, -1, INK, 1, r ? n2 : n1);
        }
    }
    title(c, f, 1);
    caption(c, f, record_end(f));
}

static void draw_strips(canvas *c, void *ud) {
    ecg_fig *f = ud;
    draw_grid(c, PAPER_LEFT, PAPER_TOP, f->gw, f->gh);
    cal_pulses(c, f, PAPER_LEFT, f->L);
    for (int l = 0; l < f->L; l++) {
        double base = PAPER_TOP + f->row * (l + 0.5);
        draw_trace(c, f, 0, l, PAPER_LEFT, base, f->start, f->start + f->shown, INK);
        lead_label(c, f, PAPER_LEFT + f->cal, base, l);
    }
    title(c, f, 2);
    caption(c, f, record_end(f));
}

/* ------------------------------------------------------ ECG: input checks */

static void ecg_fig_free(ecg_fig *f) {
    for (int r = 0; r < 2; r++) ewb_tensor_free(f->hold[r]);
    free(f->names);
    free(f->name_buf);
    free(f->marks);
}

static int find_lead(const ecg_fig *f, const char *name, const char *what) {
    for (int l = 0; l < f->L; l++)
        if (!strcmp(f->names[l], name)) return l;
    char list[256] = "";
    for (int l = 0; l < f->L && strlen(list) < 200; l++) {
        strcat(list, l ? ", " : "");
        strncat(list, f->names[l], 40);
    }
    return ewb_error("%s: %s lead '%s' is not among the leads (%s)", f->op, what, name, list);
}

static int is_integer_dtype(int dt) { return dt == EWB_DTYPE_I32 || dt == EWB_DTYPE_I64; }

/* checks the options and the signal of record 0 (and 1), fills f */
static int ecg_setup(ecg_fig *f, const char *op, const ewb_plot_ecg_opts *o, const ewb_tensor *const *x, int nrec,
                     int strips) {
    memset(f, 0, sizeof *f);
    f->op = op;
    f->o = o;
    f->nrec = nrec;
    EWB_CHECK(o, "%s: options are required (at least fs)", op);
    EWB_CHECK(isfinite(o->fs) && o->fs > 0, "%s: fs must be > 0 Hz, got %g", op, o->fs);
    EWB_CHECK(isfinite(o->speed) && o->speed >= 0, "%s: speed must be >= 0 mm/s (0 = 25), got %g", op, o->speed);
    EWB_CHECK(isfinite(o->gain) && o->gain >= 0, "%s: gain must be >= 0 mm/mV (0 = 10), got %g", op, o->gain);
    EWB_CHECK(isfinite(o->row) && o->row >= 0, "%s: row must be >= 0 mm, got %g", op, o->row);
    EWB_CHECK(isfinite(o->start) && o->start >= 0, "%s: start must be >= 0 s, got %g", op, o->start);
    EWB_CHECK(isfinite(o->seconds) && o->seconds >= 0, "%s: seconds must be >= 0, got %g", op, o->seconds);
    f->fs = o->fs;
    f->speed = o->speed > 0 ? o->speed : 25;
    f->gain = o->gain > 0 ? o->gain : 10;
    f->row = o->row > 0 ? round(o->row) : strips ? 30 : 40;
    f->start = o->start;
    f->cal = 5 * ceil((0.2 * f->speed + 5) / 5);

    for (int r = 0; r < nrec; r++) {
        const ewb_tensor *t = x[r];
        EWB_CHECK(t, "%s: no signal given", op);
        EWB_TRY(ewb_check_alive(op, t));
        if (strips)
            EWB_CHECK(t->dtype == EWB_DTYPE_F32 && (t->ndim == 1 || t->ndim == 2),
                      "%s: expected an f32 signal (n) or (leads, n) in mV, got %s", op, ewb_s(t));
        else
            EWB_CHECK(t->dtype == EWB_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 12,
                      "%s: expected a 12-lead f32 signal (12, n) in mV, got %s", op, ewb_s(t));
        int64_t L = t->ndim == 2 ? t->shape[0] : 1, n = t->shape[t->ndim - 1];
        EWB_CHECK(L >= 1 && L <= 256, "%s: 1 to 256 leads can be drawn, got %s", op, ewb_s(t));
        EWB_CHECK(n >= 1, "%s: the signal has no samples: %s", op, ewb_s(t));
        f->L = (int)L;
        f->n[r] = n;
        f->hold[r] = ewb_contig_or_self((ewb_tensor *)t);
        EWB_CHECK(f->hold[r], "%s: out of memory copying %s", op, ewb_s(t));
        f->sig[r] = ewb_f32(f->hold[r]);
    }
    double dur = 0;
    for (int r = 0; r < nrec; r++) dur = fmax(dur, f->n[r] / f->fs);
    EWB_CHECK(f->start < dur, "%s: start %g s is past the end of the record (%g s)", op, f->start, dur);

    f->names = calloc((size_t)f->L, sizeof *f->names);
    f->name_buf = calloc((size_t)f->L, 8);
    EWB_CHECK(f->names && f->name_buf, "%s: out of memory", op);
    for (int l = 0; l < f->L; l++) {
        if (o->leads) {
            EWB_CHECK(o->leads[l], "%s: lead name %d is NULL", op, l);
            f->names[l] = o->leads[l];
        } else if (f->L == 12) {
            f->names[l] = ewb_lead_name(l);
        } else if (f->L > 1) {
            snprintf(f->name_buf + 8 * l, 8, "%d", l + 1);
            f->names[l] = f->name_buf + 8 * l;
        } else {
            f->names[l] = ""; /* a single unnamed lead carries no label */
        }
    }

    f->rhythm = -1;
    if (!strips) {
        const char *rh = o->rhythm ? o->rhythm : "II";
        if (*rh) {
            f->rhythm = find_lead(f, rh, "rhythm-strip");
            if (f->rhythm < 0) return -1;
        }
    }
    f->mark_lead = -1;
    if (o->markers) {
        const ewb_tensor *m = o->markers;
        EWB_TRY(ewb_check_alive(op, m));
        EWB_CHECK(is_integer_dtype(m->dtype) && m->ndim == 1,
                  "%s: markers must be (m) i64 or i32 sample positions, got %s", op, ewb_s(m));
        EWB_CHECK(m->shape[0] <= 1000000, "%s: too many markers: %s", op, ewb_s(m));
        f->nmarks = (int)m->shape[0];
        f->marks = malloc(sizeof *f->marks * (size_t)(f->nmarks ? f->nmarks : 1));
        EWB_CHECK(f->marks, "%s: out of memory", op);
        for (int i = 0; i < f->nmarks; i++) {
            int64_t idx = i;
            double v;
            EWB_TRY(ewb_tensor_get(m, &idx, &v));
            EWB_CHECK(v >= 0 && v < f->n[0], "%s: marker %d is at sample %.0f, outside the record (0..%lld)", op, i, v,
                      (long long)f->n[0] - 1);
            f->marks[i] = (int64_t)v;
        }
        if (o->marker_lead) {
            f->mark_lead = find_lead(f, o->marker_lead, "marker");
            if (f->mark_lead < 0) return -1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ ECG: entry */

int ewb_plot_ecg12(const ewb_tensor *ecg, const ewb_plot_ecg_opts *o, ewb_plot_output *out) {
    const char *op = "plot_ecg12";
    EWB_CHECK(out, "%s: no output given", op);
    ecg_fig f;
    int rc = ecg_setup(&f, op, o, &ecg, 1, 0);
    if (rc == 0) {
        f.shown = 10;
        f.gw = f.cal + f.shown * f.speed;
        f.gh = f.row * (3 + (f.rhythm >= 0));
        f.W = 2 * PAPER_LEFT + f.gw;
        f.H = PAPER_TOP + f.gh + PAPER_BOTTOM;
        rc = render(op, f.W, f.H, draw_ecg12, &f, out);
    }
    ecg_fig_free(&f);
    return rc;
}

int ewb_plot_ecg_pair(const ewb_tensor *a, const ewb_tensor *b, const ewb_plot_ecg_opts *o, ewb_plot_output *out) {
    const char *op = "plot_ecg_pair";
    EWB_CHECK(out, "%s: no output given", op);
    const ewb_tensor *x[2] = {a, b};
    ecg_fig f;
    int rc = ecg_setup(&f, op, o, x, 2, 0);
    if (rc == 0) {
        f.shown = 10;
        f.gw = f.cal + f.shown * f.speed;
        f.gh = f.row * (3 + (f.rhythm >= 0));
        f.W = (o->overlay ? 2 : 3) * PAPER_LEFT + (o->overlay ? 1 : 2) * f.gw;
        f.H = PAPER_TOP + f.gh + PAPER_BOTTOM;
        rc = render(op, f.W, f.H, draw_pair, &f, out);
    }
    ecg_fig_free(&f);
    return rc;
}

int ewb_plot_strips(const ewb_tensor *ecg, const ewb_plot_ecg_opts *o, ewb_plot_output *out) {
    const char *op = "plot_strips";
    EWB_CHECK(out, "%s: no output given", op);
    ecg_fig f;
    int rc = ecg_setup(&f, op, o, &ecg, 1, 1);
    if (rc == 0) {
        double rest = f.n[0] / f.fs - f.start;
        f.shown = o->seconds > 0 ? o->seconds : rest;
        f.gw = 5 * ceil((f.cal + f.shown * f.speed) / 5 - 1e-9);
        f.gh = f.row * f.L;
        f.W = 2 * PAPER_LEFT + f.gw;
        f.H = PAPER_TOP + f.gh + PAPER_BOTTOM;
        rc = render(op, f.W, f.H, draw_strips, &f, out);
    }
    ecg_fig_free(&f);
    return rc;
}

/* ------------------------------------------------------------------ charts */

typedef struct {
    const ewb_plot_chart_opts *o;
    const ewb_plot_series *s;
    int ns;
    double **x, **y; /* per series; y already log10 on a log axis (NaN where not plottable) */
    int64_t *n;
    double W, H, px, py, pw, ph; /* paper and plot area, mm */
    double xlo, xhi, ylo, yhi;   /* axis ranges (log10 units for a log y) */
    int legend;
    int xint;                    /* every x is a whole number (steps): no fractional x ticks */
} chart;

static double cx(const chart *k, double v) { return k->px + (v - k->xlo) / (k->xhi - k->xlo) * k->pw; }
static double cy(const chart *k, double v) { return k->py + k->ph - (v - k->ylo) / (k->yhi - k->ylo) * k->ph; }

static double nice_step(double range, int target) {
    double raw = range / target, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* ticks over [lo, hi] (axis units); on a log axis the ticks are 1, 2, 5 × 10^k
   (or decades only, over many decades); returns the count */
static int ticks(double lo, double hi, int logaxis, int target, double min_step, double *t, int max) {
    int n = 0;
    if (logaxis) {
        static const double mult[3] = {1, 2, 5};
        int nm = hi - lo > 3 ? 1 : 3;
        double step = hi - lo > 12 ? ceil((hi - lo) / 8) : 1;
        for (double d = floor(lo); d <= ceil(hi) && n < max; d += step)
            for (int i = 0; i < nm && n < max; i++) {
                double v = d + log10(mult[i]);
                if (v >= lo - 1e-9 && v <= hi + 1e-9) t[n++] = v;
            }
        if (n >= 2) return n;
        n = 0; /* less than a decade: linear ticks on the values, placed in log units */
        double a = pow(10, lo), b = pow(10, hi), s = nice_step(b - a, 4);
        for (double v = ceil(a / s) * s; v <= b + 1e-9 * s && n < max; v += s)
            if (v > 0) t[n++] = log10(v);
        return n;
    }
    double s = fmax(nice_step(hi - lo, target), min_step);
    for (double v = ceil(lo / s - 1e-9) * s; v <= hi + 1e-9 * s && n < max; v += s) t[n++] = fabs(v) < 1e-9 * s ? 0 : v;
    return n;
}

static void tick_label(char *buf, int n, double v, int logaxis) {
    if (logaxis) v = pow(10, v);
    snprintf(buf, (size_t)n, "%.4g", v);
}

static const double GRID_RGB[3] = {0.88, 0.88, 0.88};

static void draw_chart(canvas *c, void *ud) {
    chart *k = ud;
    cairo_t *cr = c->cr;
    double t[64];
    char buf[48];
    /* grid, ticks and tick labels */
    int nx = ticks(k->xlo, k->xhi, 0, (int)fmax(2, k->pw / 25), k->xint ? 1 : 0, t, 64);
    cairo_new_path(cr);
    for (int i = 0; i < nx; i++) {
        cairo_move_to(cr, dev(c, cx(k, t[i])), dev(c, k->py));
        cairo_line_to(cr, dev(c, cx(k, t[i])), dev(c, k->py + k->ph + 1.2));
        tick_label(buf, sizeof buf, t[i], 0);
        text(c, cx(k, t[i]), k->py + k->ph + 4.6, 2.8, 0, INK, 0, buf);
    }
    int ny = ticks(k->ylo, k->yhi, k->o->logy, (int)fmax(2, k->ph / 15), 0, t, 64);
    for (int i = 0; i < ny; i++) {
        cairo_move_to(cr, dev(c, k->px - 1.2), dev(c, cy(k, t[i])));
        cairo_line_to(cr, dev(c, k->px + k->pw), dev(c, cy(k, t[i])));
        tick_label(buf, sizeof buf, t[i], k->o->logy);
        text(c, k->px - 2, cy(k, t[i]) + 1, 2.8, 1, INK, 0, buf);
    }
    cairo_set_line_width(cr, line_w(c, 0.15));
    cairo_set_source_rgb(cr, GRID_RGB[0], GRID_RGB[1], GRID_RGB[2]);
    cairo_stroke(cr);
    cairo_rectangle(cr, dev(c, k->px), dev(c, k->py), dev(c, k->pw), dev(c, k->ph));
    cairo_set_line_width(cr, line_w(c, 0.25));
    rgb(c, INK);
    cairo_stroke(cr);

    /* the series, clipped to the plot area */
    cairo_save(cr);
    cairo_rectangle(cr, dev(c, k->px), dev(c, k->py), dev(c, k->pw), dev(c, k->ph));
    cairo_clip(cr);
    for (int s = 0; s < k->ns; s++) {
        const double *col = PALETTE[s % 10];
        cairo_new_path(cr);
        int pen = 0;
        for (int64_t i = 0; i < k->n[s]; i++) {
            double xv = k->x[s] ? k->x[s][i] : (double)i, yv = k->y[s][i];
            if (!isfinite(xv) || !isfinite(yv)) { pen = 0; continue; }
            double X = dev(c, cx(k, xv)), Y = dev(c, cy(k, yv));
            if (k->o->points) {
                cairo_new_sub_path(cr);
                cairo_arc(cr, X, Y, dev(c, 0.6), 0, 2 * PI);
            } else if (pen) {
                cairo_line_to(cr, X, Y);
            } else {
                cairo_move_to(cr, X, Y);
                cairo_line_to(cr, X, Y); /* a lone point still shows (round cap) */
            }
            pen = 1;
        }
        cairo_set_source_rgba(cr, col[0], col[1], col[2], k->o->points ? 0.75 : 1);
        if (k->o->points) {
            cairo_fill(cr);
        } else {
            cairo_set_line_width(cr, dev(c, 0.35));
            cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
            cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
            cairo_stroke(cr);
        }
    }
    cairo_restore(cr);

    /* legend: top right inside the plot area */
    if (k->legend) {
        int rows = 0;
        size_t longest = 0;
        for (int s = 0; s < k->ns; s++)
            if (k->s[s].name) {
                rows++;
                if (strlen(k->s[s].name) > longest) longest = strlen(k->s[s].name);
            }
        double w = 11 + 1.6 * (double)longest, h = 4.2 * rows + 2;
        double x0 = k->px + k->pw - w - 2, y0 = k->py + 2;
        cairo_rectangle(cr, dev(c, x0), dev(c, y0), dev(c, w), dev(c, h));
        cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
        cairo_fill_preserve(cr);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, line_w(c, 0.15));
        cairo_stroke(cr);
        int r = 0;
        for (int s = 0; s < k->ns; s++) {
            if (!k->s[s].name) continue;
            double y = y0 + 3.3 + 4.2 * r++;
            const double *col = PALETTE[s % 10];
            cairo_new_path(cr);
            if (k->o->points) {
                cairo_arc(cr, dev(c, x0 + 4.5), dev(c, y - 0.9), dev(c, 0.8), 0, 2 * PI);
                rgb(c, col);
                cairo_fill(cr);
            } else {
                cairo_move_to(cr, dev(c, x0 + 1.5), dev(c, y - 0.9));
                cairo_line_to(cr, dev(c, x0 + 7.5), dev(c, y - 0.9));
                cairo_set_line_width(cr, dev(c, 0.5));
                rgb(c, col);
                cairo_stroke(cr);
            }
            text(c, x0 + 9, y, 2.8, -1, INK, 0, k->s[s].name);
        }
    }
    if (k->o->title) text(c, k->W / 2, 6.5, 3.5, 0, INK, 1, k->o->title);
    if (k->o->xlabel) text(c, k->px + k->pw / 2, k->H - 2.5, 3, 0, INK, 0, k->o->xlabel);
    if (k->o->ylabel) {
        text(c, 4.5, k->py + k->ph / 2, 3, 0, INK, 0, k->o->ylabel);
        text_item *ti = last_text(c);
        if (ti) ti->angle = PI / 2;
    }
}

/* a (n) tensor of any real dtype as doubles */
static int series_values(const char *op, const ewb_tensor *t, int s, const char *which, double **out, int64_t *n) {
    EWB_TRY(ewb_check_alive(op, t));
    EWB_CHECK(t->ndim == 1 && t->dtype != EWB_DTYPE_BOOL, "%s: series %d: %s must be a 1-D numeric tensor, got %s", op, s,
              which, ewb_s(t));
    *n = t->shape[0];
    *out = malloc(sizeof **out * (size_t)(*n ? *n : 1));
    EWB_CHECK(*out, "%s: out of memory", op);
    for (int64_t i = 0; i < *n; i++) EWB_TRY(ewb_tensor_get(t, &i, &(*out)[i]));
    return 0;
}

static int chart_setup(chart *k, const char *op) {
    const ewb_plot_chart_opts *o = k->o;
    EWB_CHECK(isfinite(o->width) && isfinite(o->height) && o->width >= 0 && o->height >= 0 &&
                  (o->width == 0 || o->width >= 40) && (o->height == 0 || o->height >= 30),
              "%s: width and height must be at least 40 × 30 mm (0 = 160 × 100), got %g × %g", op, o->width, o->height);
    for (int s = 0; s < k->ns; s++) {
        const ewb_plot_series *se = &k->s[s];
        EWB_CHECK(se->y, "%s: series %d has no y", op, s);
        EWB_TRY(series_values(op, se->y, s, "y", &k->y[s], &k->n[s]));
        if (se->x) {
            int64_t nx;
            EWB_TRY(series_values(op, se->x, s, "x", &k->x[s], &nx));
            EWB_CHECK(nx == k->n[s], "%s: series %d: x %s and y %s differ in length", op, s, ewb_s(se->x), ewb_s(se->y));
        }
        if (se->name) k->legend = 1;
        if (o->logy)
            for (int64_t i = 0; i < k->n[s]; i++) k->y[s][i] = k->y[s][i] > 0 ? log10(k->y[s][i]) : NAN;
    }
    /* data ranges over finite points */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < k->ns; s++)
        for (int64_t i = 0; i < k->n[s]; i++) {
            double xv = k->x[s] ? k->x[s][i] : (double)i, yv = k->y[s][i];
            if (!isfinite(xv) || !isfinite(yv)) continue;
            xlo = fmin(xlo, xv), xhi = fmax(xhi, xv), ylo = fmin(ylo, yv), yhi = fmax(yhi, yv);
        }
    k->xint = 1;
    for (int s = 0; s < k->ns && k->xint; s++)
        for (int64_t i = 0; k->x[s] && i < k->n[s]; i++)
            if (isfinite(k->x[s][i]) && k->x[s][i] != floor(k->x[s][i])) { k->xint = 0; break; }
    if (!(xlo <= xhi)) xlo = 0, xhi = 1, ylo = 0, yhi = 1; /* nothing to plot: an empty frame */
    if (xhi - xlo < 1e-12 * fmax(1, fabs(xlo))) xlo -= 0.5, xhi += 0.5;
    if (yhi - ylo < 1e-12 * fmax(1, fabs(ylo))) ylo -= 0.5, yhi += 0.5;
    double dx = 0.03 * (xhi - xlo), dy = 0.05 * (yhi - ylo);
    k->xlo = xlo - dx, k->xhi = xhi + dx, k->ylo = ylo - dy, k->yhi = yhi + dy;
    k->W = o->width > 0 ? o->width : 160;
    k->H = o->height > 0 ? o->height : 100;
    k->px = o->ylabel ? 22 : 17;
    k->py = o->title ? 10 : 5;
    k->pw = k->W - k->px - 5;
    k->ph = k->H - k->py - (o->xlabel ? 13 : 9);
    return 0;
}

int ewb_plot_lines(const ewb_plot_series *series, int nseries, const ewb_plot_chart_opts *o, ewb_plot_output *out) {
    const char *op = "plot_lines";
    EWB_CHECK(out, "%s: no output given", op);
    EWB_CHECK(nseries >= 1 && nseries <= 1000 && series, "%s: 1 to 1000 series are needed, got %d", op, nseries);
    ewb_plot_chart_opts defaults = {0};
    chart k = {.o = o ? o : &defaults, .s = series, .ns = nseries};
    k.x = calloc((size_t)nseries, sizeof *k.x);
    k.y = calloc((size_t)nseries, sizeof *k.y);
    k.n = calloc((size_t)nseries, sizeof *k.n);
    int rc = k.x && k.y && k.n ? chart_setup(&k, op) : ewb_error("%s: out of memory", op);
    if (rc == 0) rc = render(op, k.W, k.H, draw_chart, &k, out);
    for (int s = 0; s < nseries && k.x && k.y; s++) free(k.x[s]), free(k.y[s]);
    free(k.x);
    free(k.y);
    free(k.n);
    return rc;
}
