/* wfdb.c: PhysioNet WFDB records (header + signal files) and MIT annotation
 * files: read, and write in formats 16 and 212.
 *
 * Header (record.hea), one item a line; '#' lines are comments, blank lines
 * are skipped, lines may end in CRLF:
 *   record line   name[/nseg] nsig [fs[/counter_freq[(base_counter)]] [nsamp [base_time [base_date]]]]
 *   signal lines  (nsig of them, single-segment records)
 *                 file fmt[xspf][:skew][+offset] gain[(baseline)][/units] adcres adczero
 *                      initval checksum blocksize description...
 *                 every field after fmt is optional, but only from the end
 *   segment lines (nseg of them, multi-segment records)
 *                 segment_record nsamp   ("~" is a null segment: nsamp invalid frames)
 *                 A first segment of 0 frames is a layout header (variable
 *                 layout): its signal lines ("~" files, format 0) name the
 *                 record's signals, and each segment's signals are matched to
 *                 them by description; a missing signal reads invalid. Without
 *                 it (fixed layout) every segment has the same signals.
 *
 * Signal files: signals that name the same file are interleaved frame by
 * frame; a frame holds spf consecutive samples of each signal in header order.
 * Packed formats pack this interleaved stream (a 212 byte triple may hold the
 * last sample of one signal and the first of the next). Bit layouts, bytes
 * b0 b1 ... in file order:
 *   8    1 byte, two's complement first difference of the signal's previous
 *        sample (the first sample is initval + difference)
 *   80   1 byte offset binary: sample = b0 - 128
 *   16   2 bytes little-endian two's complement
 *   61   2 bytes big-endian two's complement
 *   160  2 bytes little-endian offset binary: sample = word - 32768
 *   24   3 bytes little-endian two's complement
 *   32   4 bytes little-endian two's complement
 *   212  2 samples in 3 bytes, 12 bits each: s0 = b0 | (b1 & 0x0F) << 8,
 *        s1 = b2 | (b1 >> 4) << 8; an odd last sample takes 2 bytes (b0, b1)
 *   310  3 samples in 2 little-endian words w0 w1, 10 bits each:
 *        s0 = w0 bits 1-10, s1 = w1 bits 1-10, s2 = w0 bits 11-15 (low 5 bits)
 *        | w1 bits 11-15 (high 5 bits); bit 0 of each word unused
 *   311  3 samples in one little-endian 32-bit word, 10 bits each:
 *        s0 = bits 0-9, s1 = bits 10-19, s2 = bits 20-29; bits 30-31 unused
 * A final partial group holds the samples whose bits are all present.
 * Invalid-sample codes: the most negative value of the format (80: -128,
 * 16/61/160: -32768, 24: -2^23, 32: -2^31, 212: -2048, 310/311: -512; none
 * in format 8). They become EWB_WFDB_INVALID (digital) or NaN (physical).
 *
 * Skew k: the signal's sample for frame t is stored in frame t + k; frames
 * past the end of the file read invalid. Byte offset: bytes skipped at the
 * start of the file (shared by the signals of that file).
 *
 * Samples per frame: EWB_WFDB_LOWRES returns one value per frame, the mean
 * of the signal's spf samples rounded as the WFDB library's meansamp does
 * (floor((sum + spf/2) / spf); invalid if any is) -- what rdsamp prints by
 * default. EWB_WFDB_HIGHRES returns max-spf values per frame, repeating the
 * samples of slower signals (zero-order hold, as rdsamp -H).
 *
 * Checksums: the sum of a signal's first nsamp * spf stored samples (format
 * codes, before skew), compared with the header's modulo 65536. A mismatch
 * sets checksum_ok = 0 and the read succeeds, unless strict_checksum asks
 * for an error. Only whole-record reads of signals whose header gives a
 * checksum are checked.
 *
 * Multi-segment digital output is in the layout's (variable) or the first
 * segment's (fixed) gain and baseline: a segment with other values is
 * rescaled, round((d - b_seg) * g_out / g_seg + b_out); physical output
 * uses each segment's own calibration.
 *
 * MIT annotation files: 16-bit little-endian words, A = word >> 10 (code),
 * I = word & 0x3FF. 1..49: an annotation of type A, I samples after the
 * previous one. 59 SKIP: a 32-bit interval follows (high 16 bits first, each
 * half little-endian), added to the time; the next word's I adds to it.
 * Modifiers follow the annotation they modify: 60 NUM (num = I, sticky),
 * 61 SUB (subtype = I), 62 CHN (chan = I, sticky), 63 AUX (I bytes of aux,
 * padded to even length). The word 0 ends the file. NUM and SUB are 10-bit
 * two's complement.
 *
 * Every error names the file and the header line or byte offset. */
#include "internal.h"
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* caps against absurd headers: bytes of a header file, elements of an output */
#define MAX_HEADER_BYTES (64 << 20)
#define MAX_OUTPUT_ELEMENTS ((int64_t)1 << 31)

/* ------------------------------------------------------------ small helpers */

/* whole file into memory (NUL-terminated); size in *n */
static int slurp(const char *path, int64_t offset, int64_t limit, uint8_t **out, int64_t *n) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ewb_error("wfdb: cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return ewb_error("wfdb: cannot seek in %s", path); }
    long size = ftell(f);
    if (size < 0) { fclose(f); return ewb_error("wfdb: cannot size %s", path); }
    if (offset > size) {
        fclose(f);
        return ewb_error("wfdb: %s: byte offset %lld is beyond the end of the file (%ld bytes)", path,
                         (long long)offset, size);
    }
    int64_t len = size - offset;
    if (limit > 0 && len > limit) {
        fclose(f);
        return ewb_error("wfdb: %s: %lld bytes is too large", path, (long long)len);
    }
    uint8_t *buf = malloc((size_t)len + 1);
    if (!buf) { fclose(f); return ewb_error("wfdb: %s: out of memory for %lld bytes", path, (long long)len); }
    if (fseek(f, (long)offset, SEEK_SET) != 0 || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        free(buf);
        return ewb_error("wfdb: cannot read %s", path);
    }
    fclose(f);
    buf[len] = 0;
    *out = buf;
    *n = len;
    return 0;
}

/* "dir/name[.hea]" -> dir ("" or ending in '/') and name */
static void split_record(const char *record, char *dir, size_t ndir, char *name, size_t nname) {
    const char *slash = strrchr(record, '/');
    size_t dl = slash ? (size_t)(slash - record + 1) : 0;
    if (dl >= ndir) dl = ndir - 1;
    memcpy(dir, record, dl);
    dir[dl] = 0;
    snprintf(name, nname, "%s", record + (slash ? dl : 0));
    size_t nl = strlen(name);
    if (nl > 4 && strcmp(name + nl - 4, ".hea") == 0) name[nl - 4] = 0;
}

static int strict_ll(const char *s, long long lo, long long hi, long long *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || x < lo || x > hi) return -1;
    *v = x;
    return 0;
}
static int strict_double(const char *s, double *v) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* ------------------------------------------------------------ formats */

static int fmt_known(int fmt) {
    switch (fmt) {
    case 0: case 8: case 16: case 24: case 32: case 61: case 80: case 160: case 212: case 310: case 311: return 1;
    default: return 0;
    }
}
static int fmt_default_adcres(int fmt) {
    switch (fmt) {
    case 8: case 80: return 8;
    case 212: return 12;
    case 310: case 311: return 10;
    case 24: return 24;
    case 32: return 32;
    default: return 16;
    }
}
/* the format's invalid-sample code; 0 with *has = 0 for formats without one */
static int32_t fmt_invalid(int fmt, int *has) {
    *has = 1;
    switch (fmt) {
    case 80: return -128;
    case 16: case 61: case 160: return -32768;
    case 24: return -(1 << 23);
    case 32: return INT32_MIN;
    case 212: return -2048;
    case 310: case 311: return -512;
    default: *has = 0; return 0;
    }
}
/* how many whole samples nbytes hold */
static int64_t fmt_capacity(int fmt, int64_t nb) {
    switch (fmt) {
    case 8: case 80: return nb;
    case 16: case 61: case 160: return nb / 2;
    case 24: return nb / 3;
    case 32: return nb / 4;
    case 212: return nb / 3 * 2 + (nb % 3 >= 2);
    case 310: return nb / 4 * 3 + (nb % 4 >= 2);
    case 311: return nb / 4 * 3 + (nb % 4 >= 2) + (nb % 4 >= 3);
    default: return 0;
    }
}
static inline int32_t sext(uint32_t v, int bits) {
    uint32_t m = 1u << (bits - 1);
    return (int32_t)((v ^ m) - m);
}
static inline uint32_t byte_at(const uint8_t *b, int64_t nb, int64_t i) { return i < nb ? b[i] : 0; }

/* n samples of the interleaved stream, as the format stores them (format 8:
   the differences) */
static void decode(int fmt, const uint8_t *b, int64_t nb, int32_t *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (fmt) {
        case 8: out[i] = (int8_t)b[i]; break;
        case 80: out[i] = (int32_t)b[i] - 128; break;
        case 16: out[i] = (int16_t)(b[2 * i] | b[2 * i + 1] << 8); break;
        case 61: out[i] = (int16_t)(b[2 * i] << 8 | b[2 * i + 1]); break;
        case 160: out[i] = (int32_t)(b[2 * i] | b[2 * i + 1] << 8) - 32768; break;
        case 24: out[i] = sext(b[3 * i] | b[3 * i + 1] << 8 | (uint32_t)b[3 * i + 2] << 16, 24); break;
        case 32:
            out[i] = (int32_t)(b[4 * i] | b[4 * i + 1] << 8 | (uint32_t)b[4 * i + 2] << 16 |
                               (uint32_t)b[4 * i + 3] << 24);
            break;
        case 212: {
            int64_t p = i / 2 * 3;
            uint32_t b1 = byte_at(b, nb, p + 1);
            out[i] = i % 2 == 0 ? sext(b[p] | (b1 & 0x0F) << 8, 12) : sext(byte_at(b, nb, p + 2) | (b1 >> 4) << 8, 12);
            break;
        }
        case 310: {
            int64_t p = i / 3 * 4;
            uint32_t w0 = b[p] | byte_at(b, nb, p + 1) << 8, w1 = byte_at(b, nb, p + 2) | byte_at(b, nb, p + 3) << 8;
            int k = (int)(i % 3);
            uint32_t v = k == 0 ? (w0 >> 1) & 0x3FF : k == 1 ? (w1 >> 1) & 0x3FF : (w0 >> 11) | (w1 >> 11) << 5;
            out[i] = sext(v, 10);
            break;
        }
        case 311: {
            int64_t p = i / 3 * 4;
            uint32_t w = b[p] | byte_at(b, nb, p + 1) << 8 | byte_at(b, nb, p + 2) << 16 | byte_at(b, nb, p + 3) << 24;
            out[i] = sext((w >> (10 * (i % 3))) & 0x3FF, 10);
            break;
        }
        default: out[i] = 0;
        }
    }
}

/* ------------------------------------------------------------ header parser */

typedef struct {
    const char *path;  /* for messages */
    char *p;           /* the line being split (modified in place) */
    int line;
} lexer;

/* next whitespace-separated token of the line, or NULL */
static char *next_tok(lexer *lx) {
    char *p = lx->p;
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) { lx->p = p; return NULL; }
    char *s = p;
    while (*p && *p != ' ' && *p != '\t') p++;
    if (*p) *p++ = 0;
    lx->p = p;
    return s;
}

static int hdr_error(const lexer *lx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int hdr_error(const lexer *lx, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ewb_error("wfdb: %s:%d: %s", lx->path, lx->line, msg);
}

static int copy_field(const lexer *lx, char *dst, size_t n, const char *src, const char *what) {
    if (strlen(src) >= n) return hdr_error(lx, "%s '%.40s...' is longer than %zu characters", what, src, n - 1);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int parse_record_line(lexer *lx, ewb_wfdb_header *h) {
    char *t = next_tok(lx);
    long long v;
    char *slash = strchr(t, '/');
    if (slash) {
        *slash = 0;
        if (strict_ll(slash + 1, 1, 1000000, &v)) return hdr_error(lx, "bad number of segments '%s'", slash + 1);
        h->nseg = (int)v;
    }
    if (!*t) return hdr_error(lx, "empty record name");
    if (copy_field(lx, h->name, sizeof h->name, t, "record name")) return -1;
    if (!(t = next_tok(lx))) return hdr_error(lx, "record line has no number of signals");
    if (strict_ll(t, 0, 100000, &v)) return hdr_error(lx, "bad number of signals '%s'", t);
    h->nsig = (int)v;
    h->fs = 250;  /* WFDB's default frame rate */
    h->nsamp = -1;
    if ((t = next_tok(lx))) { /* fs[/counter_freq[(base_counter)]] */
        char *cf = strchr(t, '/');
        if (cf) *cf++ = 0;
        if (strict_double(t, &h->fs) || h->fs <= 0) return hdr_error(lx, "bad sampling frequency '%s'", t);
        if (cf) {
            char *bc = strchr(cf, '(');
            if (bc) {
                *bc++ = 0;
                size_t l = strlen(bc);
                if (l == 0 || bc[l - 1] != ')') return hdr_error(lx, "bad base counter '(%s'", bc);
                bc[l - 1] = 0;
                if (strict_double(bc, &h->base_counter)) return hdr_error(lx, "bad base counter '%s'", bc);
            }
            if (strict_double(cf, &h->counter_freq) || h->counter_freq <= 0)
                return hdr_error(lx, "bad counter frequency '%s'", cf);
        }
        if ((t = next_tok(lx))) {
            if (strict_ll(t, 0, (long long)1 << 40, &v)) return hdr_error(lx, "bad number of samples '%s'", t);
            h->nsamp = v > 0 ? v : -1;
            if ((t = next_tok(lx))) {
                if (copy_field(lx, h->base_time, sizeof h->base_time, t, "base time")) return -1;
                if ((t = next_tok(lx)) && copy_field(lx, h->base_date, sizeof h->base_date, t, "base date")) return -1;
            }
        }
    }
    return 0;
}

/* fmt[xspf][:skew][+offset] */
static int parse_format(lexer *lx, const char *t, ewb_wfdb_signal *s) {
    const char *p = t;
    char *end;
    long f = strtol(p, &end, 10);
    if (end == p || !fmt_known((int)f) || (*end && !strchr("x:+", *end)))
        return hdr_error(lx, "bad signal format '%s' (expected 0, 8, 16, 24, 32, 61, 80, 160, 212, 310 or 311)", t);
    s->fmt = (int)f;
    s->spf = 1;
    for (p = end; *p;) {
        char c = *p++;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || (*end && !strchr("x:+", *end))) return hdr_error(lx, "bad format field '%s'", t);
        if (c == 'x') {
            if (v < 1 || v > 100000) return hdr_error(lx, "bad samples per frame in '%s'", t);
            s->spf = (int)v;
        } else if (c == ':') {
            if (v < 0 || v > 1000000) return hdr_error(lx, "bad skew in '%s'", t);
            s->skew = (int)v;
        } else {
            if (v < 0 || v > INT64_MAX / 2) return hdr_error(lx, "bad byte offset in '%s'", t);
            s->offset = v;
        }
        p = end;
    }
    return 0;
}

/* gain[(baseline)][/units] */
static int parse_gain(lexer *lx, char *t, ewb_wfdb_signal *s, int *has_baseline) {
    char *units = strchr(t, '/');
    if (units) {
        *units++ = 0;
        if (copy_field(lx, s->units, sizeof s->units, units, "units")) return -1;
    }
    char *bl = strchr(t, '(');
    if (bl) {
        *bl++ = 0;
        size_t l = strlen(bl);
        long long v;
        if (l == 0 || bl[l - 1] != ')') return hdr_error(lx, "bad baseline '(%s'", bl);
        bl[l - 1] = 0;
        if (strict_ll(bl, INT32_MIN, INT32_MAX, &v)) return hdr_error(lx, "bad baseline '%s'", bl);
        s->baseline = (int)v;
        *has_baseline = 1;
    }
    if (strict_double(t, &s->gain) || s->gain < 0) return hdr_error(lx, "bad gain '%s'", t);
    if (s->gain == 0) s->gain = 200; /* WFDB's default: uncalibrated */
    return 0;
}

static int parse_signal_line(lexer *lx, ewb_wfdb_signal *s, const char *record, int index) {
    memset(s, 0, sizeof *s);
    s->gain = 200;
    strcpy(s->units, "mV");
    s->checksum_ok = -1;
    char *t = next_tok(lx);
    if (copy_field(lx, s->file, sizeof s->file, t, "signal file name")) return -1;
    if (!(t = next_tok(lx))) return hdr_error(lx, "signal line has no format");
    if (parse_format(lx, t, s)) return -1;
    s->adcres = fmt_default_adcres(s->fmt);
    int has_baseline = 0, has_zero = 0, has_init = 0;
    long long v;
    if ((t = next_tok(lx))) {
        if (parse_gain(lx, t, s, &has_baseline)) return -1;
        if ((t = next_tok(lx))) {
            if (strict_ll(t, 0, 64, &v)) return hdr_error(lx, "bad ADC resolution '%s'", t);
            if (v) s->adcres = (int)v;
            if ((t = next_tok(lx))) {
                if (strict_ll(t, INT32_MIN, INT32_MAX, &v)) return hdr_error(lx, "bad ADC zero '%s'", t);
                s->adczero = (int)v;
                has_zero = 1;
                if ((t = next_tok(lx))) {
                    if (strict_ll(t, INT32_MIN, INT32_MAX, &v)) return hdr_error(lx, "bad initial value '%s'", t);
                    s->initval = (int)v;
                    has_init = 1;
                    if ((t = next_tok(lx))) {
                        if (strict_ll(t, INT32_MIN, INT32_MAX, &v)) return hdr_error(lx, "bad checksum '%s'", t);
                        s->checksum = (int)v;
                        s->has_checksum = 1;
                        if ((t = next_tok(lx))) {
                            if (strict_ll(t, 0, INT32_MAX, &v)) return hdr_error(lx, "bad block size '%s'", t);
                            s->blocksize = (int)v;
                            char *d = lx->p;
                            while (*d == ' ' || *d == '\t') d++;
                            size_t l = strlen(d);
                            while (l && (d[l - 1] == ' ' || d[l - 1] == '\t')) d[--l] = 0;
                            if (copy_field(lx, s->desc, sizeof s->desc, d, "signal description")) return -1;
                        }
                    }
                }
            }
        }
    }
    (void)has_zero;
    if (!has_baseline) s->baseline = s->adczero;
    if (!has_init) s->initval = s->adczero;
    if (!s->desc[0]) snprintf(s->desc, sizeof s->desc, "record %.100s, signal %d", record, index);
    return 0;
}

static int add_comment(ewb_wfdb_header *h, const char *text, int *cap) {
    if (h->ncomments == *cap) {
        int nc = *cap ? 2 * *cap : 8;
        char **c = realloc(h->comments, sizeof(char *) * (size_t)nc);
        if (!c) return ewb_error("wfdb: out of memory");
        h->comments = c;
        *cap = nc;
    }
    char *s = strdup(text);
    if (!s) return ewb_error("wfdb: out of memory");
    h->comments[h->ncomments++] = s;
    return 0;
}

void ewb_wfdb_header_free(ewb_wfdb_header *h) {
    if (!h) return;
    for (int i = 0; i < h->ncomments; i++) free(h->comments[i]);
    free(h->comments);
    free(h->sigs);
    free(h->segs);
    free(h);
}

/* parses the header file at path (no segment headers are opened) */
static int parse_header_file(const char *path, ewb_wfdb_header **out) {
    *out = NULL;
    uint8_t *buf;
    int64_t len;
    if (slurp(path, 0, MAX_HEADER_BYTES, &buf, &len)) return -1;
    if ((int64_t)strlen((char *)buf) != len) {
        free(buf);
        return ewb_error("wfdb: %s: not a header file (contains a NUL byte)", path);
    }
    ewb_wfdb_header *h = calloc(1, sizeof *h);
    if (!h) { free(buf); return ewb_error("wfdb: out of memory"); }
    lexer lx = {path, NULL, 0};
    int state = 0; /* 0: before the record line; 1: signal or segment lines; 2: done */
    int nitems = 0, ccap = 0, rc = 0, last = 0; /* last: the last line that is not blank */
    char *line = (char *)buf;
    while (line && rc == 0) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lx.line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t')) line[--l] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        lx.p = p;
        if (*p) last = lx.line;
        if (*p == '#') {
            p++;
            while (*p == ' ' || *p == '\t') p++;
            rc = add_comment(h, p, &ccap);
        } else if (*p == 0) {
            /* blank line */
        } else if (state == 0) {
            rc = parse_record_line(&lx, h);
            if (rc == 0) {
                int n = h->nseg ? h->nseg : h->nsig;
                if (h->nseg) {
                    h->segs = calloc((size_t)h->nseg, sizeof *h->segs);
                } else if (h->nsig) {
                    h->sigs = calloc((size_t)h->nsig, sizeof *h->sigs);
                }
                if (n && !h->segs && !h->sigs) rc = ewb_error("wfdb: out of memory");
                state = n ? 1 : 2;
            }
        } else if (state == 1 && h->nseg) {
            ewb_wfdb_segment *sg = &h->segs[nitems];
            char *t = next_tok(&lx), *u = next_tok(&lx);
            long long v;
            if (!u) rc = hdr_error(&lx, "segment line '%s' has no number of samples", t);
            else if (next_tok(&lx)) rc = hdr_error(&lx, "segment line has more than two fields");
            else if (strict_ll(u, 0, (long long)1 << 40, &v)) rc = hdr_error(&lx, "bad segment length '%s'", u);
            else if (!copy_field(&lx, sg->name, sizeof sg->name, t, "segment name")) {
                sg->nsamp = v;
                if (v == 0 && nitems > 0) rc = hdr_error(&lx, "only the first segment (a layout header) may have 0 samples");
                if (++nitems == h->nseg) state = 2;
            } else rc = -1;
        } else if (state == 1) {
            rc = parse_signal_line(&lx, &h->sigs[nitems], h->name, nitems);
            if (rc == 0 && ++nitems == h->nsig) state = 2;
        } else {
            rc = hdr_error(&lx, "unexpected line after the %s lines: '%.60s'", h->nseg ? "segment" : "signal", p);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    if (rc == 0 && state == 0) rc = ewb_error("wfdb: %s:%d: no record line (empty header)", path, lx.line);
    if (rc == 0 && state == 1)
        rc = ewb_error("wfdb: %s:%d: header ends after %d of %d %s lines", path, last, nitems,
                       h->nseg ? h->nseg : h->nsig, h->nseg ? "segment" : "signal");
    if (rc == 0 && h->nseg) {
        h->variable_layout = h->segs[0].nsamp == 0;
        if (h->nsamp < 0) {
            h->nsamp = 0;
            for (int i = 0; i < h->nseg; i++) h->nsamp += h->segs[i].nsamp;
        }
    }
    if (rc) { ewb_wfdb_header_free(h); return -1; }
    *out = h;
    return 0;
}

/* the header of a multi-segment record's signals: the layout header, or the
   first non-null segment's */
static int fill_multiseg_signals(const char *dir, const char *hpath, ewb_wfdb_header *h) {
    const char *segname = NULL;
    for (int i = 0; i < h->nseg && !segname; i++)
        if (strcmp(h->segs[i].name, "~") != 0 && (h->variable_layout || h->segs[i].nsamp > 0)) segname = h->segs[i].name;
    if (!segname && h->nsig > 0) return ewb_error("wfdb: %s: every segment is null; no signal is described", hpath);
    if (!segname) return 0;
    char path[1400];
    snprintf(path, sizeof path, "%s%s.hea", dir, segname);
    ewb_wfdb_header *sh;
    if (parse_header_file(path, &sh)) return -1;
    int rc = 0;
    if (sh->nseg) rc = ewb_error("wfdb: %s: a segment may not itself have segments", path);
    else if (sh->nsig != h->nsig)
        rc = ewb_error("wfdb: %s: has %d signals, the multi-segment header %s says %d", path, sh->nsig, hpath, h->nsig);
    if (rc == 0 && h->nsig) {
        h->sigs = malloc(sizeof *h->sigs * (size_t)h->nsig);
        if (!h->sigs) rc = ewb_error("wfdb: out of memory");
        else memcpy(h->sigs, sh->sigs, sizeof *h->sigs * (size_t)h->nsig);
    }
    ewb_wfdb_header_free(sh);
    return rc;
}

int ewb_wfdb_header_read(const char *record, ewb_wfdb_header **out) {
    if (!record || !out) return ewb_error("wfdb_header_read: NULL argument");
    *out = NULL;
    char dir[1024], name[256], path[1400];
    split_record(record, dir, sizeof dir, name, sizeof name);
    snprintf(path, sizeof path, "%s%s.hea", dir, name);
    ewb_wfdb_header *h;
    if (parse_header_file(path, &h)) return -1;
    if (h->nseg && fill_multiseg_signals(dir, path, h)) { ewb_wfdb_header_free(h); return -1; }
    *out = h;
    return 0;
}

/* ------------------------------------------------------------ reading signals */

/* floor((sum + n/2) / n): the WFDB library's mean of a frame's samples */
static int32_t frame_mean(const int32_t *s, int n) {
    int64_t sum = n / 2;
    for (int i = 0; i < n; i++) {
        if (s[i] == EWB_WFDB_INVALID) return EWB_WFDB_INVALID;
        sum += s[i];
    }
    int64_t q = sum / n;
    if (sum % n != 0 && sum < 0) q--;
    return (int32_t)q;
}

/* frames a signal file of nbytes holds for a group of signals */
static int64_t group_frames(int fmt, int64_t nbytes, int framesize) {
    return fmt_capacity(fmt, nbytes) / framesize;
}

/* Digital samples of frames [start, stop) of a single-segment record into
   out (nsig, (stop - start) * ospf), ospf = 1 (LOWRES) or max spf (HIGHRES).
   h->nsamp must be known. */
static int read_single(const char *dir, const char *hpath, ewb_wfdb_header *h, int ospf, int64_t start,
                       int64_t stop, int32_t *out) {
    int64_t nout = (stop - start) * ospf;
    int full = start == 0 && stop == h->nsamp;
    for (int s = 0; s < h->nsig;) {
        ewb_wfdb_signal *sig = &h->sigs[s];
        if (sig->fmt == 0) { /* null signal: every sample invalid */
            for (int64_t i = 0; i < nout; i++) out[s * nout + i] = EWB_WFDB_INVALID;
            sig->checksum_ok = -1;
            s++;
            continue;
        }
        /* the group: consecutive signals in the same file */
        int g1 = s + 1, framesize = sig->spf, maxskew = sig->skew;
        while (g1 < h->nsig && strcmp(h->sigs[g1].file, sig->file) == 0 && h->sigs[g1].fmt != 0) {
            if (h->sigs[g1].fmt != sig->fmt)
                return ewb_error("wfdb: %s: signals %d and %d share the file %s but have formats %d and %d", hpath, s,
                                 g1, sig->file, sig->fmt, h->sigs[g1].fmt);
            framesize += h->sigs[g1].spf;
            if (h->sigs[g1].skew > maxskew) maxskew = h->sigs[g1].skew;
            g1++;
        }
        for (int k = g1; k < h->nsig; k++)
            if (strcmp(h->sigs[k].file, sig->file) == 0 && h->sigs[k].fmt != 0)
                return ewb_error("wfdb: %s: signals %d and %d share the file %s but are not listed together", hpath,
                                 s, k, sig->file);
        char path[1400];
        snprintf(path, sizeof path, "%s%s", dir, sig->file);
        uint8_t *bytes;
        int64_t nbytes;
        if (slurp(path, sig->offset, 0, &bytes, &nbytes)) return -1;
        int64_t frames = group_frames(sig->fmt, nbytes, framesize);
        if (frames < h->nsamp) {
            free(bytes);
            return ewb_error("wfdb: %s: truncated: data ends at byte %lld after %lld complete frames; the header %s says %lld "
                             "frames of %d samples in format %d",
                             path, (long long)(sig->offset + nbytes), (long long)frames, hpath, (long long)h->nsamp,
                             framesize, sig->fmt);
        }
        if (frames > h->nsamp + maxskew) frames = h->nsamp + maxskew;
        int32_t *stream = malloc(sizeof(int32_t) * (size_t)(frames * framesize + 1));
        if (!stream) { free(bytes); return ewb_error("wfdb: %s: out of memory", path); }
        decode(sig->fmt, bytes, nbytes, stream, frames * framesize);
        free(bytes);
        int has_inv;
        int32_t inv = fmt_invalid(sig->fmt, &has_inv);
        for (int k = s, off = 0; k < g1; off += h->sigs[k].spf, k++) {
            ewb_wfdb_signal *sk = &h->sigs[k];
            int spf = sk->spf;
            if (sk->fmt == 8) { /* differences -> samples */
                int32_t prev = sk->initval;
                for (int64_t f = 0; f < frames; f++)
                    for (int j = 0; j < spf; j++) {
                        int32_t *x = &stream[f * framesize + off + j];
                        prev = (int32_t)((uint32_t)prev + (uint32_t)*x);
                        *x = prev;
                    }
            }
            sk->checksum_ok = -1;
            if (full && sk->has_checksum) {
                uint32_t sum = 0;
                for (int64_t f = 0; f < h->nsamp; f++)
                    for (int j = 0; j < spf; j++) sum += (uint32_t)stream[f * framesize + off + j];
                sk->checksum_ok = (sum & 0xFFFF) == ((uint32_t)sk->checksum & 0xFFFF);
            }
            int32_t *o = out + (int64_t)k * nout;
            int32_t tmp[64];
            int32_t *frame = spf <= 64 ? tmp : malloc(sizeof(int32_t) * (size_t)spf);
            if (!frame) { free(stream); return ewb_error("wfdb: out of memory"); }
            for (int64_t t = start; t < stop; t++) {
                int64_t f = t + sk->skew;
                for (int j = 0; j < spf; j++) {
                    int32_t x = f < frames ? stream[f * framesize + off + j] : EWB_WFDB_INVALID;
                    frame[j] = has_inv && x == inv ? EWB_WFDB_INVALID : x;
                }
                if (ospf == 1) *o++ = frame_mean(frame, spf);
                else
                    for (int g = 0; g < ospf; g++) *o++ = frame[(int64_t)spf * g / ospf];
            }
            if (frame != tmp) free(frame);
        }
        free(stream);
        s = g1;
    }
    return 0;
}

/* the number of frames of a single-segment record whose header omits it:
   the shortest signal file */
static int infer_nsamp(const char *dir, ewb_wfdb_header *h) {
    int64_t best = -1;
    for (int s = 0; s < h->nsig;) {
        ewb_wfdb_signal *sig = &h->sigs[s];
        if (sig->fmt == 0) { s++; continue; }
        int g1 = s + 1, framesize = sig->spf;
        while (g1 < h->nsig && strcmp(h->sigs[g1].file, sig->file) == 0 && h->sigs[g1].fmt != 0)
            framesize += h->sigs[g1++].spf;
        char path[1400];
        snprintf(path, sizeof path, "%s%s", dir, sig->file);
        FILE *f = fopen(path, "rb");
        if (!f) return ewb_error("wfdb: cannot open %s: %s", path, strerror(errno));
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        int64_t nb = size - sig->offset;
        int64_t fr = nb > 0 ? group_frames(sig->fmt, nb, framesize) : 0;
        if (best < 0 || fr < best) best = fr;
        s = g1;
    }
    h->nsamp = best < 0 ? 0 : best;
    return 0;
}

static int max_spf(const ewb_wfdb_header *h) {
    int m = 1;
    for (int i = 0; i < h->nsig; i++)
        if (h->sigs[i].spf > m) m = h->sigs[i].spf;
    return m;
}

/* digital (seg calibration) -> the output: physical f32, or digital i32 in
   the output's calibration */
static void emit(const int32_t *d, int64_t n, const ewb_wfdb_signal *from, const ewb_wfdb_signal *to, int physical,
                 void *dst) {
    if (physical) {
        float *o = dst;
        for (int64_t i = 0; i < n; i++)
            o[i] = d[i] == EWB_WFDB_INVALID ? NAN : (float)(((double)d[i] - from->baseline) / from->gain);
        return;
    }
    int32_t *o = dst;
    if (from->gain == to->gain && from->baseline == to->baseline) {
        memcpy(o, d, sizeof(int32_t) * (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        if (d[i] == EWB_WFDB_INVALID) { o[i] = EWB_WFDB_INVALID; continue; }
        double v = nearbyint(((double)d[i] - from->baseline) * to->gain / from->gain + to->baseline);
        o[i] = v >= INT32_MAX ? INT32_MAX : v <= INT32_MIN + 1.0 ? INT32_MIN + 1 : (int32_t)v;
    }
}

static int check_checksums(const char *hpath, const ewb_wfdb_header *h, const ewb_wfdb_read_opts *o) {
    if (!o->strict_checksum) return 0;
    for (int i = 0; i < h->nsig; i++)
        if (h->sigs[i].checksum_ok == 0)
            return ewb_error("wfdb: %s: checksum mismatch in signal %d (%s, file %s)", hpath, i, h->sigs[i].desc,
                             h->sigs[i].file);
    return 0;
}

/* one segment of a multi-segment record into the output columns [c0, c0+n) */
static int read_segment(const char *dir, const ewb_wfdb_header *h, const ewb_wfdb_segment *sg, int ospf, int64_t s0,
                        int64_t s1, int physical, void *outp, int64_t nout, int64_t c0, const ewb_wfdb_read_opts *o,
                        int *cks) {
    int64_t n = (s1 - s0) * ospf;
    size_t esz = 4;
    if (strcmp(sg->name, "~") == 0) {
        for (int i = 0; i < h->nsig; i++)
            for (int64_t j = 0; j < n; j++) {
                if (physical) ((float *)outp)[i * nout + c0 + j] = NAN;
                else ((int32_t *)outp)[i * nout + c0 + j] = EWB_WFDB_INVALID;
            }
        return 0;
    }
    char hpath[1400];
    snprintf(hpath, sizeof hpath, "%s%s.hea", dir, sg->name);
    ewb_wfdb_header *sh;
    if (parse_header_file(hpath, &sh)) return -1;
    int rc = 0;
    int32_t *buf = NULL;
    if (sh->nseg) rc = ewb_error("wfdb: %s: a segment may not itself have segments", hpath);
    else if (!h->variable_layout && sh->nsig != h->nsig)
        rc = ewb_error("wfdb: %s: has %d signals, the record's fixed layout has %d", hpath, sh->nsig, h->nsig);
    else if (sh->nsig && max_spf(sh) * (ospf > 1) > ospf)
        rc = ewb_error("wfdb: %s: has %d samples per frame, more than the layout's %d", hpath, max_spf(sh), ospf);
    if (rc == 0) {
        if (sh->nsamp < 0 || sh->nsamp > sg->nsamp) sh->nsamp = sg->nsamp; /* the segment line rules */
        if (sh->nsamp < sg->nsamp)
            rc = ewb_error("wfdb: %s: has %lld frames, the multi-segment header says %lld", hpath,
                           (long long)sh->nsamp, (long long)sg->nsamp);
    }
    if (rc == 0 && sh->nsig) {
        buf = malloc(sizeof(int32_t) * (size_t)(sh->nsig * n) + 1);
        if (!buf) rc = ewb_error("wfdb: %s: out of memory", hpath);
        else rc = read_single(dir, hpath, sh, ospf, s0, s1, buf);
        if (rc == 0 && s0 == 0 && s1 == sg->nsamp) rc = check_checksums(hpath, sh, o);
    }
    for (int i = 0; rc == 0 && i < h->nsig; i++) {
        int k = -1;
        if (!h->variable_layout) k = i;
        else
            for (int j = 0; j < sh->nsig && k < 0; j++)
                if (strcmp(sh->sigs[j].desc, h->sigs[i].desc) == 0) k = j;
        char *dst = (char *)outp + esz * (size_t)(i * nout + c0);
        if (k < 0) {
            for (int64_t j = 0; j < n; j++) {
                if (physical) ((float *)dst)[j] = NAN;
                else ((int32_t *)dst)[j] = EWB_WFDB_INVALID;
            }
            continue;
        }
        emit(buf + (int64_t)k * n, n, &sh->sigs[k], &h->sigs[i], physical, dst);
        int ok = sh->sigs[k].checksum_ok;
        if (ok == 0) cks[i] = 0;
        else if (ok == 1 && cks[i] != 0) cks[i] = 1;
    }
    free(buf);
    ewb_wfdb_header_free(sh);
    return rc;
}

int ewb_wfdb_read(const char *record, const ewb_wfdb_read_opts *opts, ewb_tensor **signal, ewb_wfdb_header **hdr) {
    if (!record || !signal) return ewb_error("wfdb_read: NULL argument");
    *signal = NULL;
    if (hdr) *hdr = NULL;
    ewb_wfdb_read_opts o = {1, EWB_WFDB_LOWRES, 0, 0, 0};
    if (opts) o = *opts;
    if (o.mode != EWB_WFDB_LOWRES && o.mode != EWB_WFDB_HIGHRES)
        return ewb_error("wfdb_read: mode %d is neither LOWRES (0) nor HIGHRES (1)", o.mode);
    char dir[1024], name[256], hpath[1400];
    split_record(record, dir, sizeof dir, name, sizeof name);
    snprintf(hpath, sizeof hpath, "%s%s.hea", dir, name);
    ewb_wfdb_header *h;
    if (ewb_wfdb_header_read(record, &h)) return -1;
    int rc = 0;
    if (h->nsamp < 0 && !h->nseg) rc = infer_nsamp(dir, h);
    int64_t stop = o.stop > 0 && o.stop < h->nsamp ? o.stop : h->nsamp;
    if (rc == 0 && (o.start < 0 || o.start > stop))
        rc = ewb_error("wfdb_read: %s: start %lld is outside [0, %lld]", hpath, (long long)o.start, (long long)stop);
    int ospf = o.mode == EWB_WFDB_HIGHRES ? max_spf(h) : 1;
    int64_t n = (stop - o.start) * ospf;
    if (rc == 0 && (double)h->nsig * (double)n > (double)MAX_OUTPUT_ELEMENTS)
        rc = ewb_error("wfdb_read: %s: %d signals x %lld samples is too large", hpath, h->nsig, (long long)n);
    ewb_tensor *t = NULL;
    if (rc == 0) {
        int64_t shape[2] = {h->nsig, n};
        rc = ewb_tensor_new(&t, o.physical ? EWB_DTYPE_F32 : EWB_DTYPE_I32, 2, shape);
    }
    if (rc == 0 && !h->nseg) {
        int32_t *d = o.physical ? malloc(sizeof(int32_t) * (size_t)(h->nsig * n) + 1) : ewb_tensor_data(t);
        if (!d) rc = ewb_error("wfdb_read: out of memory");
        else rc = read_single(dir, hpath, h, ospf, o.start, stop, d);
        if (rc == 0 && o.physical)
            for (int i = 0; i < h->nsig; i++)
                emit(d + i * n, n, &h->sigs[i], &h->sigs[i], 1, (float *)ewb_tensor_data(t) + i * n);
        if (o.physical) free(d);
        if (rc == 0 && o.start == 0 && stop == h->nsamp) rc = check_checksums(hpath, h, &o);
    } else if (rc == 0) {
        int *cks = malloc(sizeof(int) * (size_t)(h->nsig + 1));
        if (!cks) rc = ewb_error("wfdb_read: out of memory");
        for (int i = 0; cks && i < h->nsig; i++) cks[i] = -1;
        int whole = o.start == 0 && stop == h->nsamp;
        /* frames no segment covers (a master nsamp beyond the segments') read invalid */
        for (int64_t i = 0; i < h->nsig * n; i++) {
            if (o.physical) ((float *)ewb_tensor_data(t))[i] = NAN;
            else ((int32_t *)ewb_tensor_data(t))[i] = EWB_WFDB_INVALID;
        }
        int64_t seg0 = 0;
        for (int g = 0; rc == 0 && g < h->nseg; g++) {
            const ewb_wfdb_segment *sg = &h->segs[g];
            int64_t a = seg0 > o.start ? seg0 : o.start, b = seg0 + sg->nsamp < stop ? seg0 + sg->nsamp : stop;
            if (sg->nsamp > 0 && a < b)
                rc = read_segment(dir, h, sg, ospf, a - seg0, b - seg0, o.physical, ewb_tensor_data(t), n,
                                  (a - o.start) * ospf, &o, cks);
            seg0 += sg->nsamp;
        }
        for (int i = 0; rc == 0 && i < h->nsig; i++) h->sigs[i].checksum_ok = whole ? cks[i] : -1;
        free(cks);
    }
    if (rc) {
        ewb_tensor_free(t);
        ewb_wfdb_header_free(h);
        return -1;
    }
    *signal = t;
    if (hdr) *hdr = h;
    else ewb_wfdb_header_free(h);
    return 0;
}

/* ------------------------------------------------------------ writing records */

int ewb_wfdb_write(const char *record, const ewb_wfdb_header *h, const ewb_tensor *signal) {
    if (!record || !h || !signal) return ewb_error("wfdb_write: NULL argument");
    int dt = ewb_tensor_dtype(signal);
    if (ewb_tensor_ndim(signal) != 2 || (dt != EWB_DTYPE_F32 && dt != EWB_DTYPE_I32))
        return ewb_error("wfdb_write: signal must be f32 (physical) or i32 (digital) of shape (nsig, n), got %s",
                         ewb_s(signal));
    int nsig = h->nsig;
    int64_t n = ewb_tensor_size(signal, 1);
    if (ewb_tensor_size(signal, 0) != nsig || nsig < 1 || !h->sigs)
        return ewb_error("wfdb_write: signal %s does not match the header's %d signals", ewb_s(signal), nsig);
    if (!(h->fs > 0)) return ewb_error("wfdb_write: sampling frequency must be > 0, got %g", h->fs);
    int fmt = h->sigs[0].fmt;
    for (int i = 0; i < nsig; i++) {
        const ewb_wfdb_signal *s = &h->sigs[i];
        if (s->fmt != 16 && s->fmt != 212)
            return ewb_error("wfdb_write: signal %d: format %d cannot be written (16 or 212)", i, s->fmt);
        if (s->fmt != fmt) return ewb_error("wfdb_write: all signals share one file and one format; signal %d has %d, signal 0 %d", i, s->fmt, fmt);
        if (!(s->gain > 0) || !isfinite(s->gain)) return ewb_error("wfdb_write: signal %d: gain must be > 0, got %g", i, s->gain);
        if (strpbrk(s->desc, "\r\n") || strpbrk(s->units, " \t\r\n"))
            return ewb_error("wfdb_write: signal %d: name or units contain a line break or blank", i);
    }
    char dir[1024], name[256], hpath[1400], dpath[1400];
    split_record(record, dir, sizeof dir, name, sizeof name);
    if (!name[0] || strchr(name, ' ')) return ewb_error("wfdb_write: bad record name '%s'", name);
    snprintf(hpath, sizeof hpath, "%s%s.hea", dir, name);
    snprintf(dpath, sizeof dpath, "%s%s.dat", dir, name);
    int32_t lo = fmt == 16 ? -32767 : -2047, hi = fmt == 16 ? 32767 : 2047, inv = fmt == 16 ? -32768 : -2048;

    /* digital samples (nsig, n) in format codes */
    int32_t *d = malloc(sizeof(int32_t) * (size_t)(nsig * n) + 1);
    void *src = malloc(4 * (size_t)(nsig * n) + 1);
    if (!d || !src) { free(d); free(src); return ewb_error("wfdb_write: out of memory"); }
    int rc = ewb_tensor_copy_to(signal, src, 4 * nsig * n);
    for (int i = 0; rc == 0 && i < nsig; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t k = i * n + j;
            double v;
            int invalid;
            if (dt == EWB_DTYPE_F32) {
                float x = ((float *)src)[k];
                invalid = isnan(x);
                v = invalid ? 0 : nearbyint((double)x * h->sigs[i].gain + h->sigs[i].baseline);
            } else {
                invalid = ((int32_t *)src)[k] == EWB_WFDB_INVALID;
                v = ((int32_t *)src)[k];
            }
            if (invalid) { d[k] = inv; continue; }
            if (v < lo || v > hi) {
                rc = ewb_error("wfdb_write: %s: signal %d sample %lld is %.0f ADC units, outside format %d's range "
                               "[%d, %d] (%d is the invalid code; use NaN or EWB_WFDB_INVALID)",
                               dpath, i, (long long)j, v, fmt, lo, hi, inv);
                break;
            }
            d[k] = (int32_t)v;
        }
    free(src);
    if (rc) { free(d); return -1; }

    /* the interleaved stream, encoded */
    int64_t total = nsig * n;
    int64_t nbytes = fmt == 16 ? 2 * total : total / 2 * 3 + (total % 2 ? 2 : 0);
    uint8_t *bytes = malloc((size_t)nbytes + 1);
    if (!bytes) { free(d); return ewb_error("wfdb_write: out of memory"); }
    for (int64_t i = 0; i < total; i++) {
        uint32_t x = (uint32_t)d[(i % nsig) * n + i / nsig];
        if (fmt == 16) {
            bytes[2 * i] = x & 0xFF;
            bytes[2 * i + 1] = (x >> 8) & 0xFF;
        } else if (i % 2 == 0) {
            int64_t p = i / 2 * 3;
            bytes[p] = x & 0xFF;
            bytes[p + 1] = (x >> 8) & 0x0F;
        } else {
            int64_t p = i / 2 * 3;
            bytes[p + 1] |= ((x >> 8) & 0x0F) << 4;
            bytes[p + 2] = x & 0xFF;
        }
    }
    FILE *f = fopen(dpath, "wb");
    if (!f) rc = ewb_error("wfdb_write: cannot create %s: %s", dpath, strerror(errno));
    else {
        if (fwrite(bytes, 1, (size_t)nbytes, f) != (size_t)nbytes) rc = ewb_error("wfdb_write: cannot write %s", dpath);
        if (fclose(f) != 0 && rc == 0) rc = ewb_error("wfdb_write: cannot write %s", dpath);
    }
    free(bytes);
    if (rc == 0) {
        f = fopen(hpath, "wb");
        if (!f) rc = ewb_error("wfdb_write: cannot create %s: %s", hpath, strerror(errno));
    }
    if (rc == 0) {
        fprintf(f, "%s %d %.12g", name, nsig, h->fs);
        if (h->counter_freq > 0) fprintf(f, "/%.12g(%.12g)", h->counter_freq, h->base_counter);
        fprintf(f, " %lld", (long long)n);
        if (h->base_time[0]) fprintf(f, " %s", h->base_time);
        if (h->base_time[0] && h->base_date[0]) fprintf(f, " %s", h->base_date);
        fputc('\n', f);
        for (int i = 0; i < nsig; i++) {
            const ewb_wfdb_signal *s = &h->sigs[i];
            uint32_t sum = 0;
            for (int64_t j = 0; j < n; j++) sum += (uint32_t)d[i * n + j];
            fprintf(f, "%s.dat %d %.12g(%d)/%s %d %d %d %d 0", name, fmt, s->gain, s->baseline,
                    s->units[0] ? s->units : "mV", s->adcres > 0 ? s->adcres : (fmt == 16 ? 16 : 12), s->adczero,
                    n ? d[i * n] : 0, (int)(int16_t)(sum & 0xFFFF));
            if (s->desc[0]) fprintf(f, " %s", s->desc);
            fputc('\n', f);
        }
        for (int i = 0; i < h->ncomments; i++) {
            const char *c = h->comments[i];
            /* one comment line per line of text */
            fputs("# ", f);
            for (; *c; c++) {
                if (*c == '\r') continue;
                fputc(*c, f);
                if (*c == '\n') fputs("# ", f);
            }
            fputc('\n', f);
        }
        if (fclose(f) != 0) rc = ewb_error("wfdb_write: cannot write %s", hpath);
    }
    free(d);
    return rc;
}

/* ------------------------------------------------------------ annotations */

enum { ANN_ACMAX = 49, ANN_SKIP = 59, ANN_NUM = 60, ANN_SUB = 61, ANN_CHN = 62, ANN_AUX = 63 };

/* the mnemonics of the WFDB library's ecgcodes.h; NULL where a code is unused */
static const char *const ANN_SYMBOLS[ANN_ACMAX + 1] = {
    NULL, "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", NULL, "|", NULL,
    "s",  "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@",
    "x",  "f", "(", ")", "r", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

const char *ewb_wfdb_ann_symbol(int type) {
    return type >= 0 && type <= ANN_ACMAX ? ANN_SYMBOLS[type] : NULL;
}
int ewb_wfdb_ann_code(const char *symbol) {
    for (int i = 1; symbol && i <= ANN_ACMAX; i++)
        if (ANN_SYMBOLS[i] && strcmp(ANN_SYMBOLS[i], symbol) == 0) return i;
    return -1;
}
void ewb_wfdb_ann_free(ewb_wfdb_annotation *a) { free(a); }

static int sext10(int v) { return v > 511 ? v - 1024 : v; }

int ewb_wfdb_rdann(const char *file, ewb_wfdb_annotation **out, int64_t *nout) {
    if (!file || !out || !nout) return ewb_error("wfdb_rdann: NULL argument");
    *out = NULL;
    *nout = 0;
    uint8_t *b;
    int64_t len;
    if (slurp(file, 0, 0, &b, &len)) return -1;
    int64_t cap = len / 2 + 1, n = 0, pos = 0, t = 0;
    int num = 0, chan = 0;
    ewb_wfdb_annotation *a = calloc((size_t)cap, sizeof *a), *cur = NULL;
    if (!a) { free(b); return ewb_error("wfdb_rdann: %s: out of memory", file); }
    int rc = 0;
    while (rc == 0 && pos < len) {
        if (pos + 2 > len) { rc = ewb_error("wfdb_rdann: %s: truncated: odd byte at offset %lld", file, (long long)pos); break; }
        int w = b[pos] | b[pos + 1] << 8, A = w >> 10, I = w & 0x3FF;
        int64_t at = pos;
        pos += 2;
        if (w == 0) break; /* end of file */
        if (A == ANN_SKIP) {
            if (pos + 4 > len) { rc = ewb_error("wfdb_rdann: %s: truncated SKIP at byte %lld", file, (long long)at); break; }
            uint32_t hiw = b[pos] | b[pos + 1] << 8, low = b[pos + 2] | b[pos + 3] << 8;
            t += (int32_t)(hiw << 16 | low);
            pos += 4;
        } else if (A == ANN_NUM || A == ANN_SUB || A == ANN_CHN || A == ANN_AUX) {
            if (!cur) { rc = ewb_error("wfdb_rdann: %s: modifier code %d before any annotation at byte %lld", file, A, (long long)at); break; }
            if (A == ANN_NUM) cur->num = num = sext10(I);
            else if (A == ANN_SUB) cur->subtype = sext10(I);
            else if (A == ANN_CHN) cur->chan = chan = I;
            else {
                if (I > 255) { rc = ewb_error("wfdb_rdann: %s: aux of %d bytes at byte %lld (at most 255)", file, I, (long long)at); break; }
                if (pos + I > len) { rc = ewb_error("wfdb_rdann: %s: truncated aux at byte %lld (%d bytes)", file, (long long)at, I); break; }
                memcpy(cur->aux, b + pos, (size_t)I);
                cur->aux[I] = 0;
                cur->aux_len = I;
                pos += I + (I & 1);
            }
        } else if (A <= ANN_ACMAX) {
            t += I;
            if (t < 0) { rc = ewb_error("wfdb_rdann: %s: negative time %lld at byte %lld", file, (long long)t, (long long)at); break; }
            cur = &a[n++]; /* n < cap: each annotation takes at least one word */
            cur->sample = t;
            cur->type = A;
            cur->num = num;
            cur->chan = chan;
        } else {
            rc = ewb_error("wfdb_rdann: %s: unknown annotation code %d at byte %lld", file, A, (long long)at);
        }
    }
    free(b);
    if (rc) { free(a); return -1; }
    *out = a;
    *nout = n;
    return 0;
}

static int cmp_ann_index(const void *x, const void *y) {
    const int64_t *p = x, *q = y; /* (sample, index) pairs */
    if (p[0] != q[0]) return p[0] < q[0] ? -1 : 1;
    return p[1] < q[1] ? -1 : p[1] > q[1];
}

static void put16(uint8_t *b, int64_t *pos, unsigned w) {
    b[(*pos)++] = w & 0xFF;
    b[(*pos)++] = (w >> 8) & 0xFF;
}

int ewb_wfdb_wrann(const char *file, const ewb_wfdb_annotation *a, int64_t n) {
    if (!file || (!a && n > 0) || n < 0) return ewb_error("wfdb_wrann: NULL argument or negative count");
    for (int64_t i = 0; i < n; i++) {
        const ewb_wfdb_annotation *x = &a[i];
        if (x->type < 1 || x->type > ANN_ACMAX)
            return ewb_error("wfdb_wrann: %s: annotation %lld: type %d is not in 1..49", file, (long long)i, x->type);
        if (x->sample < 0 || x->sample > INT32_MAX)
            return ewb_error("wfdb_wrann: %s: annotation %lld: sample %lld out of range", file, (long long)i, (long long)x->sample);
        if (x->subtype < -512 || x->subtype > 511 || x->num < -512 || x->num > 511 || x->chan < 0 || x->chan > 1023)
            return ewb_error("wfdb_wrann: %s: annotation %lld: subtype %d, num %d or chan %d out of range", file,
                             (long long)i, x->subtype, x->num, x->chan);
        if (x->aux_len < 0 || x->aux_len > 255)
            return ewb_error("wfdb_wrann: %s: annotation %lld: aux of %d bytes (at most 255)", file, (long long)i, x->aux_len);
    }
    int64_t *order = malloc(sizeof(int64_t) * 2 * (size_t)n + 1);
    uint8_t *b = malloc((size_t)n * (10 + 8 + 256) + 2);
    if (!order || !b) { free(order); free(b); return ewb_error("wfdb_wrann: out of memory"); }
    for (int64_t i = 0; i < n; i++) { order[2 * i] = a[i].sample; order[2 * i + 1] = i; }
    qsort(order, (size_t)n, 2 * sizeof(int64_t), cmp_ann_index);
    int64_t pos = 0, t = 0;
    int num = 0, chan = 0;
    for (int64_t k = 0; k < n; k++) {
        const ewb_wfdb_annotation *x = &a[order[2 * k + 1]];
        int64_t delta = x->sample - t;
        if (delta > 0x3FF) {
            put16(b, &pos, ANN_SKIP << 10);
            put16(b, &pos, (unsigned)((uint64_t)delta >> 16) & 0xFFFF);
            put16(b, &pos, (unsigned)delta & 0xFFFF);
            delta = 0;
        }
        put16(b, &pos, (unsigned)(x->type << 10 | (int)delta));
        if (x->subtype != 0) put16(b, &pos, ANN_SUB << 10 | (x->subtype & 0x3FF));
        if (x->chan != chan) put16(b, &pos, ANN_CHN << 10 | x->chan);
        if (x->num != num) put16(b, &pos, ANN_NUM << 10 | (x->num & 0x3FF));
        if (x->aux_len > 0) {
            put16(b, &pos, ANN_AUX << 10 | x->aux_len);
            memcpy(b + pos, x->aux, (size_t)x->aux_len);
            pos += x->aux_len;
            if (x->aux_len & 1) b[pos++] = 0;
        }
        t = x->sample;
        chan = x->chan;
        num = x->num;
    }
    put16(b, &pos, 0);
    free(order);
    int rc = 0;
    FILE *f = fopen(file, "wb");
    if (!f) rc = ewb_error("wfdb_wrann: cannot create %s: %s", file, strerror(errno));
    else {
        if (fwrite(b, 1, (size_t)pos, f) != (size_t)pos) rc = ewb_error("wfdb_wrann: cannot write %s", file);
        if (fclose(f) != 0 && rc == 0) rc = ewb_error("wfdb_wrann: cannot write %s", file);
    }
    free(b);
    return rc;
}
