/* dataset.c: ECG datasets in one HDF5 file each (the layout is in data/README.md).
 *
 *   /signals      (N, leads, samples) f32, or int16 with a `gain` attribute;
 *                 chunk (1, leads, samples), shuffle + deflate, N unlimited.
 *                 Attributes: fs (f64, Hz), lead_names (UTF-8 strings),
 *                 units (UTF-8 string), gain (f64, int16 only).
 *   /id           (N) UTF-8 strings (integers accepted when reading)
 *   /patient_id   (N) i64, -1 unknown
 *   /age          (N) f32 years, NaN unknown
 *   /sex          (N) i8: 0 female, 1 male, -1 unknown
 *   /split        (N) i32 fold or split number
 *   /labels       (N, L) u8 multi-hot, with /label_names (L) UTF-8 strings
 *   /reports      (N) UTF-8 strings
 *   /labels_<set> (N, L) u8 with /label_names_<set>: named label sets (the
 *                 root attribute `label_sets` lists them), e.g. PTB-XL's levels
 * Strings are variable-length UTF-8, as h5py writes str. Every per-record
 * dataset is chunked with an unlimited first dimension, so appending extends
 * them all by the batch and writes one hyperslab each.
 *
 * The HDF5 mutex and error helper come from core/h5.c (core/h5_internal.h);
 * every entry point holds the mutex, so readers on several threads (the
 * batch loader) are safe. Records are numbered from 0.
 */
#include "internal.h"
#include "h5_internal.h"
#include "dataset_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

struct ewb_dataset {
    hid_t f;
    char *file;
    int writable;
    int64_t n, leads, samples, nlabels;
    double fs, gain;
    int int16;
    char *units;
    char **lead_names;  /* leads strings */
    char **label_names; /* nlabels strings */
    int64_t nsets;
    struct label_set {
        char *name;     /* the set's name */
        char dname[256]; /* "labels_<name>" */
        int64_t n;      /* labels in the set */
        char **names;   /* n strings */
    } *sets;
    /* direct chunk reads of `signals` (see "signals without the lock" below) */
    int direct;          /* 0 not checked yet, 1 on, -1 off: H5Dread */
    hid_t sig;           /* `signals`, open while direct is 1 */
    int nfilters;        /* filters[] in pipeline (write) order */
    H5Z_filter_t filters[2];
    size_t shuffle_size; /* the shuffle filter's element size */
    size_t chunk_bytes;  /* one record as stored, before the filters */
};

enum { META_CHUNK = 1024, DEFAULT_DEFLATE = 4 };

static const char *const std_leads[12] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

/* ---------------- small helpers ---------------- */

static char *dup_str(const char *s) {
    size_t k = strlen(s);
    char *p = malloc(k + 1);
    if (p) memcpy(p, s, k + 1);
    return p;
}

static void free_strs(char **s, int64_t n) {
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

/* 1 if s is well-formed UTF-8 */
static int valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int k;
        if (*p < 0x80) { p++; continue; }
        else if ((*p & 0xE0) == 0xC0 && *p >= 0xC2) k = 1;
        else if ((*p & 0xF0) == 0xE0) k = 2;
        else if ((*p & 0xF8) == 0xF0 && *p <= 0xF4) k = 3;
        else return 0;
        for (int i = 1; i <= k; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += k + 1;
    }
    return 1;
}

/* variable-length UTF-8 strings (h5py's str) */
static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) { H5Tclose(t); return -1; }
    return t;
}

static int exists(hid_t loc, const char *name) {
    htri_t e = H5Lexists(loc, name, H5P_DEFAULT);
    if (e < 0) { H5Eclear2(H5E_DEFAULT); return 0; }
    return e > 0;
}

/* ---------------- attributes ---------------- */

static int attr_double_write(hid_t obj, const char *name, double v) {
    hid_t s = H5Screate(H5S_SCALAR), a = -1;
    int rc = -1;
    if (s >= 0) a = H5Acreate2(obj, name, H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &v) >= 0) rc = 0;
    if (a >= 0) H5Aclose(a);
    if (s >= 0) H5Sclose(s);
    return rc;
}

/* n strings as a 1-D attribute, or one scalar string when n < 0 */
static int attr_strings_write(hid_t obj, const char *name, int64_t n, const char *const *v) {
    hsize_t dim = (hsize_t)(n < 0 ? 1 : n);
    hid_t s = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL), t = vlen_str_type(), a = -1;
    int rc = -1;
    if (s >= 0 && t >= 0) a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0 && H5Awrite(a, t, v) >= 0) rc = 0;
    if (a >= 0) H5Aclose(a);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return rc;
}

/* the attribute `name` of obj or, failing that, of the file root: its id, or -1 if absent */
static hid_t attr_find(hid_t f, hid_t obj, const char *name) {
    if (H5Aexists(obj, name) > 0) return H5Aopen(obj, name, H5P_DEFAULT);
    if (H5Aexists(f, name) > 0) return H5Aopen(f, name, H5P_DEFAULT);
    H5Eclear2(H5E_DEFAULT);
    return -1;
}

/* a numeric scalar (or 1-element) attribute; 1 if absent, -1 on error */
static int attr_double_read(const char *op, const char *file, hid_t f, hid_t obj, const char *name, double *v) {
    hid_t a = attr_find(f, obj, name);
    if (a < 0) return 1;
    hid_t s = H5Aget_space(a), t = H5Aget_type(a);
    int rc = -1;
    H5T_class_t c = H5Tget_class(t);
    if (H5Sget_simple_extent_npoints(s) != 1 || (c != H5T_FLOAT && c != H5T_INTEGER))
        ewb_error("%s: '%s': attribute '%s' must be a single number", op, file, name);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
        ewb_h5_fail("%s: '%s': cannot read attribute '%s'", op, file, name);
    else
        rc = 0;
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return rc;
}

/* copies n strings read with a vlen or fixed string type from raw into fresh
   heap strings; for vlen, raw holds char* */
static char **strings_from_raw(hid_t ftype, int64_t n, void *raw) {
    char **out = calloc((size_t)(n ? n : 1), sizeof *out);
    if (!out) return NULL;
    int vlen = H5Tis_variable_str(ftype) > 0;
    size_t size = H5Tget_size(ftype);
    for (int64_t i = 0; i < n; i++) {
        if (vlen) {
            const char *s = ((char **)raw)[i];
            out[i] = dup_str(s ? s : "");
        } else {
            const char *s = (const char *)raw + (size_t)i * size;
            size_t k = strnlen(s, size);
            out[i] = malloc(k + 1);
            if (out[i]) { memcpy(out[i], s, k); out[i][k] = 0; }
        }
        if (!out[i]) { free_strs(out, i); return NULL; }
    }
    return out;
}

/* reads all strings of an attribute (a = open attribute); *n = count; NULL + error on failure */
static char **attr_strings_read(const char *op, const char *file, hid_t a, const char *name, int64_t *n) {
    hid_t s = H5Aget_space(a), t = H5Aget_type(a), mt = -1;
    char **out = NULL;
    void *raw = NULL;
    if (H5Tget_class(t) != H5T_STRING) {
        ewb_error("%s: '%s': attribute '%s' must hold strings", op, file, name);
        goto done;
    }
    *n = H5Sget_simple_extent_npoints(s);
    int vlen = H5Tis_variable_str(t) > 0;
    mt = H5Tcopy(t); /* same class and size, native order */
    raw = calloc((size_t)(*n ? *n : 1), vlen ? sizeof(char *) : H5Tget_size(t));
    if (!raw) { ewb_error("%s: out of memory", op); goto done; }
    if (H5Aread(a, mt, raw) < 0) { ewb_h5_fail("%s: '%s': cannot read attribute '%s'", op, file, name); goto done; }
    out = strings_from_raw(t, *n, raw);
    if (vlen) H5Dvlen_reclaim(mt, s, H5P_DEFAULT, raw);
    if (!out) ewb_error("%s: out of memory", op);
done:
    free(raw);
    if (mt >= 0) H5Tclose(mt);
    H5Tclose(t);
    H5Sclose(s);
    return out;
}

/* ---------------- create ---------------- */

/* an empty dataset of rank dims, first dim 0 and unlimited, chunked by chunk */
static hid_t create_rows(hid_t f, const char *name, hid_t ftype, int rank, const hsize_t *tail, hsize_t chunk_rows,
                         int shuffle, int deflate) {
    hsize_t dims[3] = {0}, maxd[3] = {H5S_UNLIMITED}, chunk[3] = {chunk_rows};
    for (int i = 1; i < rank; i++) dims[i] = maxd[i] = chunk[i] = tail[i - 1];
    hid_t s = H5Screate_simple(rank, dims, maxd), p = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    if (s >= 0 && p >= 0 && H5Pset_chunk(p, rank, chunk) >= 0 && (!shuffle || H5Pset_shuffle(p) >= 0) &&
        (deflate <= 0 || H5Pset_deflate(p, (unsigned)deflate) >= 0))
        d = H5Dcreate2(f, name, ftype, s, H5P_DEFAULT, p, H5P_DEFAULT);
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    return d;
}

/* a fixed-size (n) dataset of strings, e.g. label_names */
static int write_names(hid_t f, const char *name, int64_t n, char *const *v) {
    hsize_t k = (hsize_t)n;
    hid_t str = vlen_str_type(), s = H5Screate_simple(1, &k, NULL), d = -1;
    int rc = -1;
    if (str >= 0 && s >= 0) d = H5Dcreate2(f, name, str, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0 && H5Dwrite(d, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) rc = 0;
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    if (str >= 0) H5Tclose(str);
    return rc;
}

/* 1 if name is a usable label-set name: 1..200 letters, digits or '_' */
static int good_set_name(const char *name) {
    size_t k = strlen(name);
    if (k == 0 || k > 200) return 0;
    for (size_t i = 0; i < k; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* room for k label sets in ds (zeroed) */
static int alloc_sets(ewb_dataset *ds, int64_t k) {
    ds->sets = calloc((size_t)(k ? k : 1), sizeof *ds->sets);
    return ds->sets ? 0 : -1;
}

/* fills set slot ds->sets[ds->nsets] and counts it; names are copied */
static int add_set(ewb_dataset *ds, const char *name, int64_t n, char *const *names_owned, const char *const *names_copy) {
    struct label_set *ls = &ds->sets[ds->nsets];
    ls->name = dup_str(name);
    if (!ls->name) { free_strs((char **)names_owned, n); return -1; }
    snprintf(ls->dname, sizeof ls->dname, "labels_%s", name);
    ds->nsets++;
    if (names_owned) { ls->names = (char **)names_owned; ls->n = n; return 0; }
    ls->names = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!ls->names) return -1;
    for (; ls->n < n; ls->n++)
        if (!(ls->names[ls->n] = dup_str(names_copy[ls->n]))) return -1;
    return 0;
}

static int close_locked(ewb_dataset *ds) {
    int rc = 0;
    if (ds->sig >= 0) H5Dclose(ds->sig);
    if (ds->f >= 0 && H5Fclose(ds->f) < 0) rc = ewb_h5_fail("dataset_close: '%s': cannot close the file", ds->file);
    free(ds->file);
    free(ds->units);
    free_strs(ds->lead_names, ds->leads);
    free_strs(ds->label_names, ds->nlabels);
    for (int64_t k = 0; ds->sets && k < ds->nsets; k++) {
        free(ds->sets[k].name);
        free_strs(ds->sets[k].names, ds->sets[k].n);
    }
    free(ds->sets);
    free(ds);
    return rc;
}

static int create_locked(ewb_dataset **out, const char *file, const ewb_dataset_spec *sp) {
    const char *op = "dataset_create";
    if (!out) return ewb_error("%s: out pointer is NULL", op);
    *out = NULL;
    if (!file) return ewb_error("%s: file name is NULL", op);
    if (!sp) return ewb_error("%s: '%s': spec is NULL", op, file);
    if (!(sp->fs > 0)) return ewb_error("%s: '%s': sampling rate fs must be > 0, got %g", op, file, sp->fs);
    if (sp->leads < 1 || sp->samples < 1)
        return ewb_error("%s: '%s': need leads >= 1 and samples >= 1, got %lld leads x %lld samples", op, file,
                         (long long)sp->leads, (long long)sp->samples);
    if ((double)sp->leads * (double)sp->samples * 4 >= 4e9)
        return ewb_error("%s: '%s': a record of %lld x %lld samples is too large for one HDF5 chunk", op, file,
                         (long long)sp->leads, (long long)sp->samples);
    if (sp->nlabels < 0) return ewb_error("%s: '%s': negative number of labels %lld", op, file, (long long)sp->nlabels);
    if (sp->nlabels > 0 && !sp->label_names) return ewb_error("%s: '%s': %lld labels but label_names is NULL", op, file, (long long)sp->nlabels);
    for (int64_t i = 0; i < sp->nlabels; i++) {
        if (!sp->label_names[i]) return ewb_error("%s: '%s': label name %lld is NULL", op, file, (long long)i);
        if (!valid_utf8(sp->label_names[i])) return ewb_error("%s: '%s': label name %lld is not valid UTF-8", op, file, (long long)i);
    }
    if (sp->lead_names)
        for (int64_t i = 0; i < sp->leads; i++) {
            if (!sp->lead_names[i]) return ewb_error("%s: '%s': lead name %lld is NULL", op, file, (long long)i);
            if (!valid_utf8(sp->lead_names[i])) return ewb_error("%s: '%s': lead name %lld is not valid UTF-8", op, file, (long long)i);
        }
    if (sp->units && !valid_utf8(sp->units)) return ewb_error("%s: '%s': units are not valid UTF-8", op, file);
    if (sp->nsets < 0 || (sp->nsets > 0 && !sp->sets))
        return ewb_error("%s: '%s': %lld label sets but sets is NULL", op, file, (long long)sp->nsets);
    for (int64_t k = 0; k < sp->nsets; k++) {
        const ewb_dataset_label_set *ls = &sp->sets[k];
        if (!ls->name || !good_set_name(ls->name))
            return ewb_error("%s: '%s': label set %lld: name '%s' must be 1..200 letters, digits or '_'", op, file,
                             (long long)k, ls->name ? ls->name : "(null)");
        for (int64_t j = 0; j < k; j++)
            if (!strcmp(sp->sets[j].name, ls->name))
                return ewb_error("%s: '%s': label set '%s' is given twice", op, file, ls->name);
        if (ls->nlabels < 1 || !ls->label_names)
            return ewb_error("%s: '%s': label set '%s' needs nlabels >= 1 and label_names, got %lld", op, file,
                             ls->name, (long long)ls->nlabels);
        for (int64_t i = 0; i < ls->nlabels; i++)
            if (!ls->label_names[i] || !valid_utf8(ls->label_names[i]))
                return ewb_error("%s: '%s': label set '%s': label name %lld is NULL or not valid UTF-8", op, file,
                                 ls->name, (long long)i);
    }
    if (sp->int16 && !(sp->gain > 0)) return ewb_error("%s: '%s': int16 signals need a gain > 0, got %g", op, file, sp->gain);
    if (sp->compression < -1 || sp->compression > 9)
        return ewb_error("%s: '%s': compression must be 0..9 (or -1 for the default), got %d", op, file, sp->compression);
    int level = sp->compression < 0 ? DEFAULT_DEFLATE : sp->compression;

    ewb_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return ewb_error("%s: out of memory", op);
    ds->f = -1;
    ds->sig = -1;
    ds->direct = -1; /* written here: read with H5Dread */
    ds->writable = 1;
    ds->leads = sp->leads;
    ds->samples = sp->samples;
    ds->fs = sp->fs;
    ds->int16 = sp->int16 != 0;
    ds->gain = sp->int16 ? sp->gain : 1;
    ds->file = dup_str(file);
    ds->units = dup_str(sp->units ? sp->units : "mV");
    ds->lead_names = calloc((size_t)ds->leads, sizeof(char *));
    ds->label_names = calloc((size_t)(sp->nlabels ? sp->nlabels : 1), sizeof(char *));
    if (!ds->file || !ds->units || !ds->lead_names || !ds->label_names || alloc_sets(ds, sp->nsets) != 0) {
        close_locked(ds);
        return ewb_error("%s: out of memory", op);
    }
    for (int64_t k = 0; k < sp->nsets; k++)
        if (add_set(ds, sp->sets[k].name, sp->sets[k].nlabels, NULL, sp->sets[k].label_names) != 0) {
            close_locked(ds);
            return ewb_error("%s: out of memory", op);
        }
    for (int64_t i = 0; i < ds->leads; i++) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)i + 1);
        const char *name = sp->lead_names ? sp->lead_names[i] : ds->leads == 12 ? std_leads[i] : num;
        if (!(ds->lead_names[i] = dup_str(name))) { close_locked(ds); return ewb_error("%s: out of memory", op); }
    }
    for (; ds->nlabels < sp->nlabels; ds->nlabels++)
        if (!(ds->label_names[ds->nlabels] = dup_str(sp->label_names[ds->nlabels]))) {
            close_locked(ds);
            return ewb_error("%s: out of memory", op);
        }

    hid_t str = vlen_str_type(), sig = -1, d = -1;
    int rc = -1;
    ds->f = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (ds->f < 0) { ewb_h5_fail("%s: cannot create '%s'", op, file); goto done; }
    const char *layout = "ecgwb-dataset 1";
    if (attr_strings_write(ds->f, "layout", -1, &layout) < 0) { ewb_h5_fail("%s: '%s': cannot write attributes", op, file); goto done; }

    hsize_t tail[2] = {(hsize_t)ds->leads, (hsize_t)ds->samples};
    sig = create_rows(ds->f, "signals", ds->int16 ? H5T_STD_I16LE : H5T_IEEE_F32LE, 3, tail, 1, level > 0, level);
    if (sig < 0) { ewb_h5_fail("%s: '%s': cannot create dataset 'signals'", op, file); goto done; }
    const char *units = ds->units;
    if (attr_double_write(sig, "fs", ds->fs) < 0 ||
        attr_strings_write(sig, "lead_names", ds->leads, (const char *const *)ds->lead_names) < 0 ||
        attr_strings_write(sig, "units", -1, &units) < 0 || (ds->int16 && attr_double_write(sig, "gain", ds->gain) < 0)) {
        ewb_h5_fail("%s: '%s': cannot write the attributes of 'signals'", op, file);
        goto done;
    }
    struct { const char *name; hid_t type; int filt; } meta[] = {
        {"id", str, 0}, {"patient_id", H5T_STD_I64LE, 1}, {"age", H5T_IEEE_F32LE, 1},
        {"sex", H5T_STD_I8LE, 1}, {"split", H5T_STD_I32LE, 1}, {"reports", str, 0},
    };
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        d = create_rows(ds->f, meta[i].name, meta[i].type, 1, NULL, META_CHUNK, meta[i].filt && level > 0,
                        meta[i].filt ? level : 0);
        if (d < 0) { ewb_h5_fail("%s: '%s': cannot create dataset '%s'", op, file, meta[i].name); goto done; }
        if (!strcmp(meta[i].name, "sex")) {
            const char *enc = "0 female, 1 male, -1 unknown";
            if (attr_strings_write(d, "encoding", -1, &enc) < 0) { ewb_h5_fail("%s: '%s': cannot write attributes", op, file); goto done; }
        }
        H5Dclose(d);
        d = -1;
    }
    if (ds->nlabels > 0) {
        hsize_t ltail[1] = {(hsize_t)ds->nlabels};
        d = create_rows(ds->f, "labels", H5T_STD_U8LE, 2, ltail, META_CHUNK, 0, level);
        if (d < 0) { ewb_h5_fail("%s: '%s': cannot create dataset 'labels'", op, file); goto done; }
        H5Dclose(d);
        d = -1;
        if (write_names(ds->f, "label_names", ds->nlabels, ds->label_names) < 0) {
            ewb_h5_fail("%s: '%s': cannot write dataset 'label_names'", op, file);
            goto done;
        }
    }
    if (ds->nsets > 0) {
        const char **setnames = malloc(sizeof(char *) * (size_t)ds->nsets);
        if (!setnames) { ewb_error("%s: out of memory", op); goto done; }
        for (int64_t k = 0; k < ds->nsets; k++) setnames[k] = ds->sets[k].name;
        int bad = attr_strings_write(ds->f, "label_sets", ds->nsets, setnames) < 0;
        free(setnames);
        if (bad) { ewb_h5_fail("%s: '%s': cannot write attribute 'label_sets'", op, file); goto done; }
    }
    for (int64_t k = 0; k < ds->nsets; k++) {
        struct label_set *ls = &ds->sets[k];
        char nname[280];
        snprintf(nname, sizeof nname, "label_names_%s", ls->name);
        hsize_t ltail[1] = {(hsize_t)ls->n};
        d = create_rows(ds->f, ls->dname, H5T_STD_U8LE, 2, ltail, META_CHUNK, 0, level);
        if (d < 0) { ewb_h5_fail("%s: '%s': cannot create dataset '%s'", op, file, ls->dname); goto done; }
        H5Dclose(d);
        d = -1;
        if (write_names(ds->f, nname, ls->n, ls->names) < 0) {
            ewb_h5_fail("%s: '%s': cannot write dataset '%s'", op, file, nname);
            goto done;
        }
    }
    if (H5Fflush(ds->f, H5F_SCOPE_LOCAL) < 0) { ewb_h5_fail("%s: '%s': cannot flush", op, file); goto done; }
    rc = 0;
done:
    if (d >= 0) H5Dclose(d);
    if (sig >= 0) H5Dclose(sig);
    if (str >= 0) H5Tclose(str);
    if (rc == 0) *out = ds;
    else close_locked(ds);
    return rc;
}

int ewb_dataset_create(ewb_dataset **out, const char *file, const ewb_dataset_spec *spec) {
    ewb_h5_enter();
    return ewb_h5_leave(create_locked(out, file, spec));
}

/* ---------------- open ---------------- */

/* checks that per-record dataset `name`, if present, has rank `rank` and n rows */
static int check_rows(const ewb_dataset *ds, const char *name, int rank) {
    if (!exists(ds->f, name)) return 0;
    hid_t d = H5Dopen2(ds->f, name, H5P_DEFAULT);
    if (d < 0) return ewb_h5_fail("dataset_open: '%s': '%s' is not a dataset", ds->file, name);
    hid_t s = H5Dget_space(d);
    hsize_t dims[3] = {0};
    int r = H5Sget_simple_extent_ndims(s);
    if (r == rank) H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
    if (r != rank)
        return ewb_error("dataset_open: '%s': dataset '%s' has %d dims, want %d", ds->file, name, r, rank);
    if ((int64_t)dims[0] != ds->n)
        return ewb_error("dataset_open: '%s': corrupt: dataset '%s' has %lld rows but 'signals' has %lld records",
                         ds->file, name, (long long)dims[0], (long long)ds->n);
    return 0;
}

/* the names of the (N, L) labels dataset `lname`, read from the strings
   dataset `nname`; *nl = L. NULL + error if they do not fit. */
static char **read_label_names(ewb_dataset *ds, const char *lname, const char *nname, int64_t *nl) {
    const char *op = "dataset_open", *file = ds->file;
    if (check_rows(ds, lname, 2) != 0) return NULL;
    hid_t d = H5Dopen2(ds->f, lname, H5P_DEFAULT);
    if (d < 0) { ewb_h5_fail("%s: '%s': cannot open dataset '%s'", op, file, lname); return NULL; }
    hid_t ls = H5Dget_space(d);
    hsize_t ld[2] = {0, 0};
    H5Sget_simple_extent_dims(ls, ld, NULL);
    H5Sclose(ls);
    H5Dclose(d);
    *nl = (int64_t)ld[1];
    if (!exists(ds->f, nname)) { ewb_error("%s: '%s': '%s' has no '%s' dataset", op, file, lname, nname); return NULL; }
    char **names = NULL;
    d = H5Dopen2(ds->f, nname, H5P_DEFAULT);
    hid_t nt = d < 0 ? -1 : H5Dget_type(d), ns = d < 0 ? -1 : H5Dget_space(d);
    int ok = nt >= 0 && ns >= 0 && H5Tget_class(nt) == H5T_STRING && H5Sget_simple_extent_ndims(ns) == 1 &&
             H5Sget_simple_extent_npoints(ns) == *nl;
    if (ok) {
        int vlen = H5Tis_variable_str(nt) > 0;
        void *raw = calloc((size_t)(*nl ? *nl : 1), vlen ? sizeof(char *) : H5Tget_size(nt));
        hid_t mt = H5Tcopy(nt);
        if (!raw || H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) ok = 0;
        else {
            names = strings_from_raw(nt, *nl, raw);
            if (vlen) H5Dvlen_reclaim(mt, ns, H5P_DEFAULT, raw);
            if (!names) ok = 0;
        }
        H5Tclose(mt);
        free(raw);
    }
    if (nt >= 0) H5Tclose(nt);
    if (ns >= 0) H5Sclose(ns);
    if (d >= 0) H5Dclose(d);
    if (!ok)
        ewb_h5_fail("%s: '%s': '%s' must be %lld strings, one per column of '%s'", op, file, nname, (long long)*nl, lname);
    return names;
}

static int open_locked(ewb_dataset **out, const char *file, int writable) {
    const char *op = "dataset_open";
    if (!out) return ewb_error("%s: out pointer is NULL", op);
    *out = NULL;
    if (!file) return ewb_error("%s: file name is NULL", op);
    ewb_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return ewb_error("%s: out of memory", op);
    ds->writable = writable != 0;
    ds->gain = 1;
    ds->file = dup_str(file);
    ds->f = -1;
    ds->sig = -1;
    const char *env = getenv("ECGWB_H5_DIRECT");
    ds->direct = ds->writable || (env && !strcmp(env, "0")) ? -1 : 0;
    hid_t sig = -1, s = -1, t = -1, a = -1, d = -1;
    int rc = -1;
    if (!ds->file) { ewb_error("%s: out of memory", op); goto done; }
    ds->f = ewb_h5_open_existing(op, file, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY);
    if (ds->f < 0) goto done;
    if (!exists(ds->f, "signals")) {
        ewb_error("%s: '%s' has no dataset 'signals' (not an ECG dataset; the layout is in data/README.md)", op, file);
        goto done;
    }
    sig = H5Dopen2(ds->f, "signals", H5P_DEFAULT);
    if (sig < 0) { ewb_h5_fail("%s: '%s': 'signals' is not a dataset", op, file); goto done; }
    s = H5Dget_space(sig);
    t = H5Dget_type(sig);
    if (s < 0 || t < 0) { ewb_h5_fail("%s: '%s': cannot inspect dataset 'signals'", op, file); goto done; }
    if (H5Sget_simple_extent_ndims(s) != 3) {
        ewb_error("%s: '%s': dataset 'signals' has %d dims, want 3 (records, leads, samples)", op, file,
                  H5Sget_simple_extent_ndims(s));
        goto done;
    }
    hsize_t dims[3];
    H5Sget_simple_extent_dims(s, dims, NULL);
    ds->n = (int64_t)dims[0];
    ds->leads = (int64_t)dims[1];
    ds->samples = (int64_t)dims[2];
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_INTEGER) {
        ds->int16 = 1;
        int g = attr_double_read(op, file, ds->f, sig, "gain", &ds->gain);
        if (g < 0) goto done;
        if (g > 0) { ewb_error("%s: '%s': integer dataset 'signals' has no 'gain' attribute", op, file); goto done; }
        if (!(ds->gain > 0)) { ewb_error("%s: '%s': 'signals' has gain %g, want > 0", op, file, ds->gain); goto done; }
    } else if (cls != H5T_FLOAT) {
        ewb_error("%s: '%s': dataset 'signals' must hold floats or integers", op, file);
        goto done;
    }
    int g = attr_double_read(op, file, ds->f, sig, "fs", &ds->fs);
    if (g < 0) goto done;
    if (g > 0) { ewb_error("%s: '%s': no sampling rate: attribute 'fs' is missing on 'signals' and the file", op, file); goto done; }
    if (!(ds->fs > 0)) { ewb_error("%s: '%s': sampling rate fs = %g, want > 0", op, file, ds->fs); goto done; }

    a = attr_find(ds->f, sig, "lead_names");
    if (a >= 0) {
        int64_t k = 0;
        ds->lead_names = attr_strings_read(op, file, a, "lead_names", &k);
        if (!ds->lead_names) goto done;
        if (k != ds->leads) {
            free_strs(ds->lead_names, k);
            ds->lead_names = NULL;
            ewb_error("%s: '%s': %lld lead_names for %lld leads", op, file, (long long)k, (long long)ds->leads);
            goto done;
        }
        H5Aclose(a);
        a = -1;
    } else {
        ds->lead_names = calloc((size_t)(ds->leads ? ds->leads : 1), sizeof(char *));
        if (!ds->lead_names) { ewb_error("%s: out of memory", op); goto done; }
        for (int64_t i = 0; i < ds->leads; i++) {
            char num[32];
            snprintf(num, sizeof num, "%lld", (long long)i + 1);
            if (!(ds->lead_names[i] = dup_str(ds->leads == 12 ? std_leads[i] : num))) { ewb_error("%s: out of memory", op); goto done; }
        }
    }
    a = attr_find(ds->f, sig, "units");
    if (a >= 0) {
        int64_t k = 0;
        char **u = attr_strings_read(op, file, a, "units", &k);
        if (!u) goto done;
        if (k != 1) { free_strs(u, k); ewb_error("%s: '%s': attribute 'units' must be one string", op, file); goto done; }
        ds->units = u[0];
        free(u);
        H5Aclose(a);
        a = -1;
    } else if (!(ds->units = dup_str("mV"))) { ewb_error("%s: out of memory", op); goto done; }

    if (exists(ds->f, "labels")) {
        ds->label_names = read_label_names(ds, "labels", "label_names", &ds->nlabels);
        if (!ds->label_names) goto done;
    }
    a = attr_find(ds->f, ds->f, "label_sets");
    if (a >= 0) {
        int64_t k = 0;
        char **setnames = attr_strings_read(op, file, a, "label_sets", &k);
        if (!setnames) goto done;
        H5Aclose(a);
        a = -1;
        int bad = alloc_sets(ds, k) != 0;
        if (bad) ewb_error("%s: out of memory", op);
        for (int64_t i = 0; !bad && i < k; i++) {
            char lname[256], nname[280];
            snprintf(lname, sizeof lname, "labels_%s", setnames[i]);
            snprintf(nname, sizeof nname, "label_names_%s", setnames[i]);
            if (!good_set_name(setnames[i])) {
                ewb_error("%s: '%s': attribute 'label_sets' names a set '%s' (want letters, digits or '_')", op, file,
                          setnames[i]);
                bad = 1;
            } else if (!exists(ds->f, lname)) {
                ewb_error("%s: '%s': attribute 'label_sets' lists '%s' but there is no dataset '%s'", op, file,
                          setnames[i], lname);
                bad = 1;
            } else {
                int64_t nl = 0;
                char **names = read_label_names(ds, lname, nname, &nl);
                if (!names || add_set(ds, setnames[i], nl, names, NULL) != 0) {
                    if (names) ewb_error("%s: out of memory", op);
                    bad = 1;
                }
            }
        }
        free_strs(setnames, k);
        if (bad) goto done;
    }
    const char *rows[] = {"id", "patient_id", "age", "sex", "split", "reports"};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (check_rows(ds, rows[i], 1) != 0) goto done;
    rc = 0;
done:
    if (d >= 0) H5Dclose(d);
    if (a >= 0) H5Aclose(a);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (sig >= 0) H5Dclose(sig);
    if (rc == 0) *out = ds;
    else {
        if (ds->f >= 0) H5Fclose(ds->f);
        ds->f = -1;
        close_locked(ds);
    }
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int ewb_dataset_open(ewb_dataset **out, const char *file, int writable) {
    ewb_h5_enter();
    return ewb_h5_leave(open_locked(out, file, writable));
}

int ewb_dataset_close(ewb_dataset *ds) {
    if (!ds) return 0;
    ewb_h5_enter();
    return ewb_h5_leave(close_locked(ds));
}

/* ---------------- info ---------------- */

int ewb_dataset_info_get(const ewb_dataset *ds, ewb_dataset_info *out) {
    if (!ds || !out) return ewb_error("dataset_info: NULL dataset or out pointer");
    out->n = ds->n;
    out->leads = ds->leads;
    out->samples = ds->samples;
    out->nlabels = ds->nlabels;
    out->fs = ds->fs;
    out->int16 = ds->int16;
    out->gain = ds->gain;
    out->writable = ds->writable;
    out->nsets = ds->nsets;
    return 0;
}
int64_t ewb_dataset_size(const ewb_dataset *ds) { return ds ? ds->n : -1; }
const char *ewb_dataset_file(const ewb_dataset *ds) { return ds ? ds->file : NULL; }
const char *ewb_dataset_units(const ewb_dataset *ds) { return ds ? ds->units : NULL; }
const char *ewb_dataset_lead_name(const ewb_dataset *ds, int64_t i) {
    return ds && i >= 0 && i < ds->leads ? ds->lead_names[i] : NULL;
}
const char *ewb_dataset_label_name(const ewb_dataset *ds, int64_t i) {
    return ds && i >= 0 && i < ds->nlabels ? ds->label_names[i] : NULL;
}
const char *ewb_dataset_set_name(const ewb_dataset *ds, int64_t k) {
    return ds && k >= 0 && k < ds->nsets ? ds->sets[k].name : NULL;
}
int64_t ewb_dataset_set_nlabels(const ewb_dataset *ds, int64_t k) {
    return ds && k >= 0 && k < ds->nsets ? ds->sets[k].n : -1;
}
const char *ewb_dataset_set_label_name(const ewb_dataset *ds, int64_t k, int64_t i) {
    return ds && k >= 0 && k < ds->nsets && i >= 0 && i < ds->sets[k].n ? ds->sets[k].names[i] : NULL;
}

/* index of label set `set` in ds, or -1 */
static int64_t find_set(const ewb_dataset *ds, const char *set) {
    for (int64_t k = 0; k < ds->nsets; k++)
        if (!strcmp(ds->sets[k].name, set)) return k;
    return -1;
}

/* ---------------- append ---------------- */

/* a (n) or (n, k) argument: shape check */
static int check_batch_tensor(const ewb_dataset *ds, const char *what, const ewb_tensor *t, int64_t n, int64_t k) {
    EWB_TRY(ewb_check_alive("dataset_append", t));
    int want = k < 0 ? 1 : 2;
    if (t->ndim != want || t->shape[0] != n || (k >= 0 && t->shape[1] != k)) {
        if (k < 0)
            return ewb_error("dataset_append: '%s': %s must be (%lld), one per record, got %s", ds->file, what,
                             (long long)n, ewb_s(t));
        return ewb_error("dataset_append: '%s': %s must be (%lld, %lld), got %s", ds->file, what, (long long)n,
                         (long long)k, ewb_s(t));
    }
    return 0;
}

/* element i of a contiguous tensor as a double */
static double elem(const ewb_tensor *t, int64_t i) {
    const void *p = ewb_tensor_data(t);
    switch (t->dtype) {
    case EWB_DTYPE_F32: return ((const float *)p)[i];
    case EWB_DTYPE_I32: return ((const int32_t *)p)[i];
    case EWB_DTYPE_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

/* extends dataset `name` from ds->n to ds->n + n rows and writes buf (mtype) into the new rows */
static int write_rows(ewb_dataset *ds, const char *name, hid_t mtype, int64_t n, const void *buf) {
    hid_t d = H5Dopen2(ds->f, name, H5P_DEFAULT), fs = -1, ms = -1;
    int rc = -1;
    if (d < 0) return ewb_h5_fail("dataset_append: '%s': cannot open dataset '%s'", ds->file, name);
    hsize_t dims[3], off[3] = {(hsize_t)ds->n, 0, 0}, cnt[3];
    fs = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(fs);
    if (rank < 1 || rank > 3) { ewb_error("dataset_append: '%s': dataset '%s' has %d dims", ds->file, name, rank); goto done; }
    H5Sget_simple_extent_dims(fs, dims, NULL);
    H5Sclose(fs);
    fs = -1;
    dims[0] = (hsize_t)(ds->n + n);
    if (H5Dset_extent(d, dims) < 0) {
        ewb_h5_fail("dataset_append: '%s': cannot extend dataset '%s' (it must be chunked with an unlimited first dim)",
                    ds->file, name);
        goto done;
    }
    for (int i = 0; i < rank; i++) cnt[i] = i == 0 ? (hsize_t)n : dims[i];
    fs = H5Dget_space(d);
    ms = H5Screate_simple(rank, cnt, NULL);
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0) {
        ewb_h5_fail("dataset_append: '%s': cannot write %lld rows of dataset '%s'", ds->file, (long long)n, name);
        goto done;
    }
    rc = 0;
done:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return rc;
}

/* after a failed append: shrink every per-record dataset back to ds->n rows */
static void undo_append(ewb_dataset *ds) {
    const char *names[] = {"signals", "id", "patient_id", "age", "sex", "split", "reports", "labels"};
    int64_t nfixed = (int64_t)(sizeof names / sizeof names[0]);
    for (int64_t i = 0; i < nfixed + ds->nsets; i++) {
        const char *name = i < nfixed ? names[i] : ds->sets[i - nfixed].dname;
        if (!exists(ds->f, name)) continue;
        hid_t d = H5Dopen2(ds->f, name, H5P_DEFAULT);
        if (d < 0) continue;
        hid_t s = H5Dget_space(d);
        hsize_t dims[3];
        if (s >= 0 && H5Sget_simple_extent_ndims(s) <= 3) {
            H5Sget_simple_extent_dims(s, dims, NULL);
            if (dims[0] != (hsize_t)ds->n) {
                dims[0] = (hsize_t)ds->n;
                H5Dset_extent(d, dims);
            }
        }
        if (s >= 0) H5Sclose(s);
        H5Dclose(d);
    }
    H5Eclear2(H5E_DEFAULT);
}

/* the batch's rows of every label set (zeros for sets it does not give); b is checked */
static int write_sets(ewb_dataset *ds, const ewb_dataset_batch *b, int64_t n) {
    for (int64_t k = 0; k < ds->nsets; k++) {
        const struct label_set *ls = &ds->sets[k];
        const ewb_tensor *t = NULL;
        for (int64_t j = 0; j < b->nsets; j++)
            if (!strcmp(b->set_names[j], ls->name)) t = b->set_labels[j];
        uint8_t *lab = calloc((size_t)(n * ls->n), 1);
        if (!lab) return ewb_error("dataset_append: out of memory for a batch of %lld records", (long long)n);
        ewb_tensor *c = t ? ewb_contig_or_self((ewb_tensor *)t) : NULL;
        int rc = t && !c ? -1 : 0;
        for (int64_t i = 0; c && i < n * ls->n; i++) lab[i] = elem(c, i) != 0;
        if (rc == 0) rc = write_rows(ds, ls->dname, H5T_NATIVE_UINT8, n, lab);
        ewb_tensor_free(c);
        free(lab);
        if (rc != 0) return -1;
    }
    return 0;
}

static int append_locked(ewb_dataset *ds, const ewb_dataset_batch *b) {
    if (!ds) return ewb_error("dataset_append: dataset is NULL");
    if (!b) return ewb_error("dataset_append: '%s': batch is NULL", ds->file);
    if (!ds->writable) return ewb_error("dataset_append: '%s' is open read-only", ds->file);
    if (!b->signals) return ewb_error("dataset_append: '%s': the batch has no signals", ds->file);
    const ewb_tensor *x = b->signals;
    EWB_TRY(ewb_check_alive("dataset_append", x));
    if (x->dtype != EWB_DTYPE_F32 || x->ndim != 3 || x->shape[1] != ds->leads || x->shape[2] != ds->samples)
        return ewb_error("dataset_append: '%s': signals must be f32 (n, %lld, %lld), got %s", ds->file,
                         (long long)ds->leads, (long long)ds->samples, ewb_s(x));
    int64_t n = x->shape[0];
    if (n == 0) return 0;
    if (b->labels) {
        if (ds->nlabels == 0 && !(b->labels->ndim == 2 && b->labels->shape[1] == 0))
            return ewb_error("dataset_append: '%s': the dataset has no labels but the batch has labels %s", ds->file,
                             ewb_s(b->labels));
        EWB_TRY(check_batch_tensor(ds, "labels", b->labels, n, ds->nlabels));
    }
    struct { const char *name; const ewb_tensor *t; } num[] = {
        {"patient_id", b->patient_id}, {"age", b->age}, {"sex", b->sex}, {"split", b->split}};
    for (int i = 0; i < 4; i++)
        if (num[i].t) EWB_TRY(check_batch_tensor(ds, num[i].name, num[i].t, n, -1));
    if (b->nsets < 0 || (b->nsets > 0 && (!b->set_names || !b->set_labels)))
        return ewb_error("dataset_append: '%s': the batch has %lld label sets but set_names or set_labels is NULL",
                         ds->file, (long long)b->nsets);
    for (int64_t k = 0; k < b->nsets; k++) {
        const char *name = b->set_names[k];
        int64_t j = name ? find_set(ds, name) : -1;
        if (j < 0) return ewb_error("dataset_append: '%s' has no label set '%s'", ds->file, name ? name : "(null)");
        if (b->set_labels[k]) EWB_TRY(check_batch_tensor(ds, ds->sets[j].dname, b->set_labels[k], n, ds->sets[j].n));
    }
    const char *const *strs[2] = {b->ids, b->reports};
    const char *strname[2] = {"id", "report"};
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; strs[k] && i < n; i++)
            if (strs[k][i] && !valid_utf8(strs[k][i]))
                return ewb_error("dataset_append: '%s': the %s of record %lld of the batch is not valid UTF-8", ds->file,
                                 strname[k], (long long)i);
    const char *names[] = {"signals", "id", "patient_id", "age", "sex", "split", "reports"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!exists(ds->f, names[i]))
            return ewb_error("dataset_append: '%s': cannot append: dataset '%s' is missing (files made by dataset_create have it)",
                             ds->file, names[i]);
    if (ds->nlabels > 0 && !exists(ds->f, "labels"))
        return ewb_error("dataset_append: '%s': cannot append: dataset 'labels' is missing", ds->file);
    for (int64_t k = 0; k < ds->nsets; k++)
        if (!exists(ds->f, ds->sets[k].dname))
            return ewb_error("dataset_append: '%s': cannot append: dataset '%s' is missing", ds->file, ds->sets[k].dname);

    /* numeric fields, converted to their stored types */
    int rc = -1;
    ewb_tensor *xc = NULL, *cont[5] = {NULL};
    int64_t *pid = malloc(sizeof(int64_t) * n);
    float *age = malloc(sizeof(float) * n);
    int8_t *sex = malloc((size_t)n);
    int32_t *split = malloc(sizeof(int32_t) * n);
    uint8_t *lab = ds->nlabels > 0 ? malloc((size_t)(n * ds->nlabels)) : NULL;
    int16_t *q = ds->int16 ? malloc(sizeof(int16_t) * (size_t)(n * ds->leads * ds->samples)) : NULL;
    const char **ids = malloc(sizeof(char *) * n), **reps = malloc(sizeof(char *) * n);
    char *idbuf = malloc((size_t)n * 24);
    hid_t str = vlen_str_type();
    if (!pid || !age || !sex || !split || (ds->nlabels > 0 && !lab) || (ds->int16 && !q) || !ids || !reps || !idbuf) {
        ewb_error("dataset_append: out of memory for a batch of %lld records", (long long)n);
        goto done;
    }
    const ewb_tensor *src[5] = {b->patient_id, b->age, b->sex, b->split, b->labels};
    for (int i = 0; i < 5; i++)
        if (src[i] && !(cont[i] = ewb_contig_or_self((ewb_tensor *)src[i]))) goto done;
    for (int64_t i = 0; i < n; i++) {
        pid[i] = cont[0] ? (int64_t)elem(cont[0], i) : -1;
        age[i] = cont[1] ? (float)elem(cont[1], i) : NAN;
        double sx = cont[2] ? elem(cont[2], i) : -1;
        if (sx != 0 && sx != 1 && sx != -1) {
            ewb_error("dataset_append: '%s': sex of record %lld of the batch is %g (want 0 female, 1 male, -1 unknown)",
                      ds->file, (long long)i, sx);
            goto done;
        }
        sex[i] = (int8_t)sx;
        split[i] = cont[3] ? (int32_t)elem(cont[3], i) : 0;
        for (int64_t j = 0; j < ds->nlabels; j++) lab[i * ds->nlabels + j] = cont[4] ? elem(cont[4], i * ds->nlabels + j) != 0 : 0;
        snprintf(idbuf + i * 24, 24, "%lld", (long long)(ds->n + i));
        ids[i] = b->ids && b->ids[i] ? b->ids[i] : idbuf + i * 24;
        reps[i] = b->reports && b->reports[i] ? b->reports[i] : "";
    }
    if (!(xc = ewb_contig_or_self((ewb_tensor *)x))) goto done;
    const float *xs = ewb_f32(xc);
    if (ds->int16) {
        int64_t m = n * ds->leads * ds->samples;
        for (int64_t i = 0; i < m; i++) {
            double v = nearbyint((double)xs[i] * ds->gain);
            if (!(v >= -32768 && v <= 32767)) {
                int64_t r = i / (ds->leads * ds->samples), l = i / ds->samples % ds->leads, s = i % ds->samples;
                ewb_error("dataset_append: '%s': value %g (record %lld of the batch, lead %lld, sample %lld) does not fit "
                          "int16 at gain %g", ds->file, xs[i], (long long)r, (long long)l, (long long)s, ds->gain);
                goto done;
            }
            q[i] = (int16_t)v;
        }
    }

    if (write_rows(ds, "signals", ds->int16 ? H5T_NATIVE_INT16 : H5T_NATIVE_FLOAT, n, ds->int16 ? (const void *)q : xs) ||
        write_rows(ds, "id", str, n, ids) || write_rows(ds, "patient_id", H5T_NATIVE_INT64, n, pid) ||
        write_rows(ds, "age", H5T_NATIVE_FLOAT, n, age) || write_rows(ds, "sex", H5T_NATIVE_INT8, n, sex) ||
        write_rows(ds, "split", H5T_NATIVE_INT32, n, split) || write_rows(ds, "reports", str, n, reps) ||
        (ds->nlabels > 0 && write_rows(ds, "labels", H5T_NATIVE_UINT8, n, lab)) || write_sets(ds, b, n) != 0) {
        undo_append(ds);
        goto done;
    }
    ds->n += n;
    rc = 0;
done:
    if (str >= 0) H5Tclose(str);
    ewb_tensor_free(xc);
    for (int i = 0; i < 5; i++) ewb_tensor_free(cont[i]);
    free(pid);
    free(age);
    free(sex);
    free(split);
    free(lab);
    free(q);
    free(ids);
    free(reps);
    free(idbuf);
    return rc;
}

int ewb_dataset_append(ewb_dataset *ds, const ewb_dataset_batch *b) {
    ewb_h5_enter();
    return ewb_h5_leave(append_locked(ds, b));
}

/* ---------------- read ---------------- */

static int check_range(const char *op, const ewb_dataset *ds, int64_t start, int64_t count) {
    if (!ds) return ewb_error("%s: dataset is NULL", op);
    if (start < 0 || count < 0 || start + count > ds->n)
        return ewb_error("%s: '%s': records [%lld, %lld) are out of range (the dataset has %lld)", op, ds->file,
                         (long long)start, (long long)(start + count), (long long)ds->n);
    return 0;
}

/* reads rows [start, start+count) of dataset `name` as mtype into buf */
static int read_rows(const char *op, const ewb_dataset *ds, const char *name, hid_t mtype, int64_t start,
                     int64_t count, void *buf) {
    if (!exists(ds->f, name)) return ewb_error("%s: '%s' has no dataset '%s'", op, ds->file, name);
    if (count == 0) return 0;
    hid_t d = H5Dopen2(ds->f, name, H5P_DEFAULT), fs = -1, ms = -1;
    if (d < 0) return ewb_h5_fail("%s: '%s': cannot open dataset '%s'", op, ds->file, name);
    int rc = -1;
    hsize_t dims[3], off[3] = {(hsize_t)start, 0, 0}, cnt[3];
    fs = H5Dget_space(d);
    int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
    if (rank < 1 || rank > 3) { ewb_h5_fail("%s: '%s': dataset '%s' has %d dims", op, ds->file, name, rank); goto done; }
    H5Sget_simple_extent_dims(fs, dims, NULL);
    if ((int64_t)dims[0] < start + count) {
        ewb_error("%s: '%s': corrupt: dataset '%s' has %lld rows, want %lld", op, ds->file, name, (long long)dims[0],
                  (long long)(start + count));
        goto done;
    }
    for (int i = 0; i < rank; i++) cnt[i] = i == 0 ? (hsize_t)count : dims[i];
    ms = H5Screate_simple(rank, cnt, NULL);
    if (ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf) < 0) {
        ewb_h5_fail("%s: '%s': cannot read records [%lld, %lld) of dataset '%s' (corrupt file?)", op, ds->file,
                    (long long)start, (long long)(start + count), name);
        goto done;
    }
    rc = 0;
done:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Dclose(d);
    return rc;
}

/* signals of records [start, start+count) into out with H5Dread (lock held) */
static int read_signals_locked(const char *op, ewb_dataset *ds, int64_t start, int64_t count, float *out) {
    EWB_TRY(read_rows(op, ds, "signals", H5T_NATIVE_FLOAT, start, count, out));
    if (ds->int16) { /* exact integers here; divided in double, rounded once */
        int64_t m = count * ds->leads * ds->samples;
        for (int64_t i = 0; i < m; i++) out[i] = (float)(out[i] / ds->gain);
    }
    return 0;
}

/* ---------------- signals without the lock ----------------
 * The serial HDF5 library runs under one lock (h5.c), and H5Dread inflates
 * chunks inside it, so threads reading a deflated dataset take turns: the
 * batch loader's workers serialise on decompression. Here the lock only
 * covers H5Dread_chunk, which copies a record's stored bytes, and the reader
 * undoes the filters itself (core/dataset_internal.h says when). The
 * filters are applied by hand because HDF5 has no API that runs a filter
 * pipeline on a caller's buffer outside the library (and its lock): deflate
 * is libdeflate's, and the shuffle filter is a byte transpose of a few lines. */

static _Atomic int64_t direct_records;
int64_t ewb_dataset_direct_records(void) { return direct_records; }

void ewb_chunk_scratch_free(ewb_chunk_scratch *s) {
    if (!s) return;
    free(s->raw);
    free(s->a);
    free(s->b);
    if (s->inflater) libdeflate_free_decompressor(s->inflater);
    *s = (ewb_chunk_scratch){0};
}

/* decides whether `signals` can be read chunk by chunk (lock held) */
static void direct_setup(ewb_dataset *ds) {
    ds->direct = -1;
#if H5_VERSION_GE(1, 10, 5) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    hid_t d = H5Dopen2(ds->f, "signals", H5P_DEFAULT);
    hid_t p = d < 0 ? -1 : H5Dget_create_plist(d), t = d < 0 ? -1 : H5Dget_type(d);
    hsize_t chunk[3] = {0};
    int ok = p >= 0 && t >= 0 && H5Pget_layout(p) == H5D_CHUNKED && H5Pget_chunk(p, 3, chunk) == 3 && chunk[0] == 1 &&
             (int64_t)chunk[1] == ds->leads && (int64_t)chunk[2] == ds->samples &&
             (ds->int16 ? H5Tequal(t, H5T_STD_I16LE) : H5Tequal(t, H5T_IEEE_F32LE)) > 0;
    int nf = ok ? H5Pget_nfilters(p) : -1, shuffles = 0, deflates = 0;
    ok = ok && nf >= 0 && nf <= 2;
    for (int i = 0; ok && i < nf; i++) { /* at most one shuffle and one deflate, in either order */
        unsigned flags = 0, cd[8] = {0}, config = 0;
        size_t ncd = 8;
        char name[64];
        H5Z_filter_t id = H5Pget_filter2(p, (unsigned)i, &flags, &ncd, cd, sizeof name, name, &config);
        if (id == H5Z_FILTER_DEFLATE) ok = ++deflates == 1;
        else if (id == H5Z_FILTER_SHUFFLE) ok = ++shuffles == 1 && ncd >= 1 && cd[0] >= 1, ds->shuffle_size = cd[0];
        else ok = 0;
        ds->filters[i] = id;
    }
    if (ok) {
        ds->nfilters = nf;
        ds->chunk_bytes = (size_t)(ds->leads * ds->samples) * (ds->int16 ? 2 : 4);
        ds->sig = d, d = -1;
        ds->direct = 1;
    }
    if (t >= 0) H5Tclose(t);
    if (p >= 0) H5Pclose(p);
    if (d >= 0) H5Dclose(d);
    H5Eclear2(H5E_DEFAULT);
#endif
}

static int grow(unsigned char **buf, size_t *cap, size_t n) {
    if (*cap >= n) return 0;
    unsigned char *p = realloc(*buf, n);
    if (!p) return -1;
    *buf = p, *cap = n;
    return 0;
}

static int read_chunk_locked(ewb_dataset *ds, int64_t record, ewb_chunk_scratch *s, size_t *nraw) {
    const char *op = "dataset_read";
    EWB_TRY(check_range(op, ds, record, 1));
    if (ds->direct == 0) direct_setup(ds);
    if (ds->direct < 0) return 1;
#if H5_VERSION_GE(1, 10, 5)
    hsize_t off[3] = {(hsize_t)record, 0, 0}, size = 0;
    haddr_t addr = HADDR_UNDEF;
    unsigned mask = 0;
    if (H5Dget_chunk_info_by_coord(ds->sig, off, &mask, &addr, &size) < 0)
        return ewb_h5_fail("%s: '%s': record %lld: cannot find its chunk (corrupt file?)", op, ds->file, (long long)record);
    if (addr == HADDR_UNDEF || size == 0 || mask != 0) return 1; /* never written (fill value), or a filter skipped */
    int deflated = 0;
    for (int i = 0; i < ds->nfilters; i++) deflated |= ds->filters[i] == H5Z_FILTER_DEFLATE;
    /* inflate adds at most a few bytes per 16 KB of incompressible data */
    if (deflated ? size > ds->chunk_bytes + ds->chunk_bytes / 64 + 1024 : size != ds->chunk_bytes)
        return ewb_error("%s: '%s': record %lld: corrupt file: its stored chunk is %llu bytes for a record of %zu", op,
                         ds->file, (long long)record, (unsigned long long)size, ds->chunk_bytes);
    if (grow(&s->raw, &s->rawcap, (size_t)size) != 0) return ewb_error("%s: out of memory", op);
    uint32_t filters = 0;
    if (H5Dread_chunk(ds->sig, H5P_DEFAULT, off, &filters, s->raw) < 0)
        return ewb_h5_fail("%s: '%s': record %lld: cannot read its chunk (corrupt file?)", op, ds->file, (long long)record);
    *nraw = (size_t)size;
    return 0;
#else
    return 1;
#endif
}

int ewb_dataset_read_chunk(ewb_dataset *ds, int64_t record, ewb_chunk_scratch *s, size_t *nraw) {
    ewb_h5_enter();
    return ewb_h5_leave(read_chunk_locked(ds, record, s, nraw));
}

/* zlib stream src[0..n) into exactly `want` bytes of dst. libdeflate
   decodes (whole-buffer inflate, about twice zlib's speed: this is the
   loader workers' main cost on deflated files); when it refuses, zlib decodes
   the same bytes again to say precisely what is wrong. */
static int inflate_exact(const ewb_dataset *ds, int64_t record, const unsigned char *src, size_t n, unsigned char *dst,
                         size_t want, ewb_chunk_scratch *s) {
    if (!s->inflater && !(s->inflater = libdeflate_alloc_decompressor()))
        return ewb_error("dataset_read: out of memory for libdeflate");
    size_t got = 0;
    if (libdeflate_zlib_decompress(s->inflater, src, n, dst, want, &got) == LIBDEFLATE_SUCCESS && got == want) return 0;

    z_stream z = {0};
    if (inflateInit(&z) != Z_OK) return ewb_error("dataset_read: out of memory for zlib");
    z.next_in = (unsigned char *)src, z.avail_in = (uInt)n;
    z.next_out = dst, z.avail_out = (uInt)want;
    int zr = inflate(&z, Z_FINISH);
    got = z.total_out;
    const char *why = "libdeflate: bad data";
    char detail[160];
    if (zr == Z_STREAM_END && got != want) snprintf(detail, sizeof detail, "it inflates to %zu bytes, not %zu", got, want), why = detail;
    else if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) snprintf(detail, sizeof detail, "zlib: %s", z.msg ? z.msg : "bad data"), why = detail;
    else if (zr != Z_STREAM_END && z.avail_out == 0) snprintf(detail, sizeof detail, "it inflates to more than %zu bytes", want), why = detail;
    else if (zr == Z_MEM_ERROR) why = "zlib: out of memory";
    else if (zr != Z_STREAM_END) snprintf(detail, sizeof detail, "truncated: the deflate stream stops after %zu of %zu bytes", got, want), why = detail;
    inflateEnd(&z);
    return ewb_error("dataset_read: '%s': record %lld: corrupt chunk (%s; %zu stored bytes)", ds->file, (long long)record,
                     why, n);
}

/* undoes HDF5's shuffle filter: element i's byte j was stored at j*count + i;
   the n % size trailing bytes are stored as they are */
static void unshuffle(const unsigned char *src, size_t n, size_t size, unsigned char *dst) {
    size_t count = n / size;
    if (size == 2) {
        for (size_t i = 0; i < count; i++) dst[2 * i] = src[i], dst[2 * i + 1] = src[count + i];
    } else if (size == 4) {
        for (size_t i = 0; i < count; i++)
            dst[4 * i] = src[i], dst[4 * i + 1] = src[count + i], dst[4 * i + 2] = src[2 * count + i], dst[4 * i + 3] = src[3 * count + i];
    } else {
        for (size_t i = 0; i < count; i++)
            for (size_t j = 0; j < size; j++) dst[i * size + j] = src[j * count + i];
    }
    memcpy(dst + count * size, src + count * size, n - count * size);
}

int ewb_dataset_decode_chunk(const ewb_dataset *ds, int64_t record, const unsigned char *raw, size_t nraw, float *out,
                             ewb_chunk_scratch *s) {
    if (!ds || ds->direct != 1) return ewb_error("dataset_read: decode_chunk needs a dataset read with direct chunk reads");
    size_t want = ds->chunk_bytes, cap = nraw > want ? nraw : want;
    if (s->abcap < cap) {
        free(s->a);
        free(s->b);
        s->a = malloc(cap), s->b = malloc(cap);
        s->abcap = s->a && s->b ? cap : 0;
        if (!s->abcap) return ewb_error("dataset_read: out of memory");
    }
    /* the filters in reverse (read) order, alternating between the two work buffers */
    const unsigned char *src = raw;
    size_t n = nraw;
    for (int i = ds->nfilters - 1; i >= 0; i--) {
        unsigned char *dst = src == s->a ? s->b : s->a;
        if (i == 0 && !ds->int16) dst = (unsigned char *)out; /* the last step writes f32 in place */
        if (ds->filters[i] == H5Z_FILTER_DEFLATE) {
            EWB_TRY(inflate_exact(ds, record, src, n, dst, want, s));
            n = want;
        } else {
            unshuffle(src, n, ds->shuffle_size, dst);
        }
        src = dst;
    }
    if (n != want) /* no deflate: the stored size was checked when read; decode_chunk may be given any */
        return ewb_error("dataset_read: '%s': record %lld: corrupt chunk (%zu stored bytes, want %zu)", ds->file,
                         (long long)record, n, want);
    int64_t m = ds->leads * ds->samples;
    if (ds->int16) {
        double gain = ds->gain;
        for (int64_t i = 0; i < m; i++) {
            int16_t v;
            memcpy(&v, src + 2 * i, 2);
            out[i] = (float)((double)v / gain); /* as read_signals_locked rounds */
        }
    } else if (src != (const unsigned char *)out) {
        memcpy(out, src, want);
    }
    direct_records++;
    return 0;
}

int ewb_dataset_read_into(ewb_dataset *ds, int64_t start, int64_t count, float *out, ewb_chunk_scratch *s) {
    const char *op = "dataset_read";
    if (!out || !s) return ewb_error("%s: out or scratch is NULL", op);
    ewb_h5_enter();
    int rc = check_range(op, ds, start, count);
    if (rc == 0 && ds->direct == 0) direct_setup(ds);
    if (rc != 0 || ds->direct < 0) {
        if (rc == 0) rc = read_signals_locked(op, ds, start, count, out);
        return ewb_h5_leave(rc);
    }
    ewb_h5_leave(0);
    int64_t per = ds->leads * ds->samples;
    for (int64_t r = start; r < start + count; r++) {
        float *dst = out + (r - start) * per;
        size_t nraw = 0;
        ewb_h5_enter();
        rc = read_chunk_locked(ds, r, s, &nraw);
        if (rc == 1) rc = read_signals_locked(op, ds, r, 1, dst) == 0 ? 1 : -1;
        ewb_h5_leave(0);
        if (rc < 0) return -1;
        if (rc == 0) EWB_TRY(ewb_dataset_decode_chunk(ds, r, s->raw, nraw, dst, s));
    }
    return 0;
}

int ewb_dataset_read(ewb_dataset *ds, int64_t start, int64_t count, ewb_tensor **out) {
    if (!out) return ewb_error("dataset_read: out pointer is NULL");
    *out = NULL;
    ewb_h5_enter();
    int64_t shape[3] = {count, ds ? ds->leads : 0, ds ? ds->samples : 0};
    if (ewb_h5_leave(check_range("dataset_read", ds, start, count)) != 0) return -1;
    ewb_tensor *t = ewb_empty(EWB_DTYPE_F32, 3, shape);
    if (!t) return -1;
    ewb_chunk_scratch s = {0};
    int rc = ewb_dataset_read_into(ds, start, count, ewb_f32(t), &s);
    ewb_chunk_scratch_free(&s);
    if (rc != 0) {
        ewb_tensor_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int read_labels_locked(ewb_dataset *ds, int64_t start, int64_t count, ewb_tensor **out) {
    const char *op = "dataset_read_labels";
    if (!out) return ewb_error("%s: out pointer is NULL", op);
    *out = NULL;
    EWB_TRY(check_range(op, ds, start, count));
    int64_t shape[2] = {count, ds->nlabels};
    ewb_tensor *t = ewb_empty(EWB_DTYPE_BOOL, 2, shape);
    if (!t) return -1;
    if (ds->nlabels > 0 && read_rows(op, ds, "labels", H5T_NATIVE_UINT8, start, count, ewb_tensor_data(t)) != 0) {
        ewb_tensor_free(t);
        return -1;
    }
    uint8_t *p = ewb_tensor_data(t);
    for (int64_t i = 0; i < count * ds->nlabels; i++) p[i] = p[i] != 0;
    *out = t;
    return 0;
}

int ewb_dataset_read_labels(ewb_dataset *ds, int64_t start, int64_t count, ewb_tensor **out) {
    ewb_h5_enter();
    return ewb_h5_leave(read_labels_locked(ds, start, count, out));
}

static int read_set_labels_locked(ewb_dataset *ds, const char *set, int64_t start, int64_t count, ewb_tensor **out) {
    const char *op = "dataset_read_set_labels";
    if (!out) return ewb_error("%s: out pointer is NULL", op);
    *out = NULL;
    if (!set || !set[0]) return read_labels_locked(ds, start, count, out);
    EWB_TRY(check_range(op, ds, start, count));
    int64_t k = find_set(ds, set);
    if (k < 0) {
        char have[512] = "";
        for (int64_t j = 0; j < ds->nsets; j++) {
            size_t u = strlen(have);
            snprintf(have + u, sizeof have - u, "%s%s", j ? ", " : "", ds->sets[j].name);
        }
        return ewb_error("%s: '%s' has no label set '%s' (it has: %s)", op, ds->file, set, ds->nsets ? have : "none");
    }
    int64_t shape[2] = {count, ds->sets[k].n};
    ewb_tensor *t = ewb_empty(EWB_DTYPE_BOOL, 2, shape);
    if (!t) return -1;
    if (read_rows(op, ds, ds->sets[k].dname, H5T_NATIVE_UINT8, start, count, ewb_tensor_data(t)) != 0) {
        ewb_tensor_free(t);
        return -1;
    }
    uint8_t *p = ewb_tensor_data(t);
    for (int64_t i = 0; i < count * shape[1]; i++) p[i] = p[i] != 0;
    *out = t;
    return 0;
}

int ewb_dataset_read_set_labels(ewb_dataset *ds, const char *set, int64_t start, int64_t count, ewb_tensor **out) {
    ewb_h5_enter();
    return ewb_h5_leave(read_set_labels_locked(ds, set, start, count, out));
}

static int read_field_locked(ewb_dataset *ds, const char *field, int64_t start, int64_t count, ewb_tensor **out) {
    const char *op = "dataset_read_field";
    if (!out) return ewb_error("%s: out pointer is NULL", op);
    *out = NULL;
    EWB_TRY(check_range(op, ds, start, count));
    int dtype;
    hid_t mtype;
    if (!field) return ewb_error("%s: '%s': field name is NULL", op, ds->file);
    if (!strcmp(field, "patient_id")) dtype = EWB_DTYPE_I64, mtype = H5T_NATIVE_INT64;
    else if (!strcmp(field, "age")) dtype = EWB_DTYPE_F32, mtype = H5T_NATIVE_FLOAT;
    else if (!strcmp(field, "sex") || !strcmp(field, "split")) dtype = EWB_DTYPE_I32, mtype = H5T_NATIVE_INT32;
    else return ewb_error("%s: '%s': unknown field '%s' (want patient_id, age, sex or split)", op, ds->file, field);
    ewb_tensor *t = ewb_empty(dtype, 1, &count);
    if (!t) return -1;
    if (read_rows(op, ds, field, mtype, start, count, ewb_tensor_data(t)) != 0) {
        ewb_tensor_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int ewb_dataset_read_field(ewb_dataset *ds, const char *field, int64_t start, int64_t count, ewb_tensor **out) {
    ewb_h5_enter();
    return ewb_h5_leave(read_field_locked(ds, field, start, count, out));
}

static int read_strings_locked(ewb_dataset *ds, const char *field, int64_t start, int64_t count, char *buf, int64_t n,
                               int64_t *needed) {
    const char *op = "dataset_read_strings";
    if (!needed) return ewb_error("%s: needed pointer is NULL", op);
    *needed = 0;
    EWB_TRY(check_range(op, ds, start, count));
    if (!field || (strcmp(field, "id") && strcmp(field, "reports")))
        return ewb_error("%s: '%s': unknown string field '%s' (want id or reports)", op, ds->file, field ? field : "(null)");
    if (!exists(ds->f, field)) return ewb_error("%s: '%s' has no dataset '%s'", op, ds->file, field);
    hid_t d = H5Dopen2(ds->f, field, H5P_DEFAULT);
    if (d < 0) return ewb_h5_fail("%s: '%s': cannot open dataset '%s'", op, ds->file, field);
    hid_t ft = H5Dget_type(d), mt = -1, space = -1;
    H5Dclose(d);
    if (ft < 0) return ewb_h5_fail("%s: '%s': cannot inspect dataset '%s'", op, ds->file, field);
    H5T_class_t cls = H5Tget_class(ft);
    int rc = -1;
    void *raw = NULL;
    char **strs = NULL;
    if (cls == H5T_INTEGER) { /* integer ids as decimal text */
        int64_t *v = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
        if (!v) { ewb_error("%s: out of memory", op); goto done; }
        if (read_rows(op, ds, field, H5T_NATIVE_INT64, start, count, v) != 0) { free(v); goto done; }
        int64_t pos = 0;
        for (int64_t i = 0; i < count; i++) {
            char num[32];
            int k = snprintf(num, sizeof num, "%lld", (long long)v[i]);
            if (pos + k + 1 <= n) memcpy(buf + pos, num, (size_t)k + 1);
            pos += k + 1;
        }
        free(v);
        *needed = pos;
        rc = 0;
        goto done;
    }
    if (cls != H5T_STRING) {
        ewb_error("%s: '%s': dataset '%s' must hold strings or integers", op, ds->file, field);
        goto done;
    }
    int vlen = H5Tis_variable_str(ft) > 0;
    mt = H5Tcopy(ft);
    raw = calloc((size_t)(count ? count : 1), vlen ? sizeof(char *) : H5Tget_size(ft));
    if (!raw || mt < 0) { ewb_error("%s: out of memory", op); goto done; }
    if (read_rows(op, ds, field, mt, start, count, raw) != 0) goto done;
    strs = strings_from_raw(ft, count, raw);
    if (vlen) {
        space = H5Screate_simple(1, (hsize_t[]){(hsize_t)(count ? count : 1)}, NULL);
        if (count) H5Dvlen_reclaim(mt, space, H5P_DEFAULT, raw);
    }
    if (!strs) { ewb_error("%s: out of memory", op); goto done; }
    int64_t pos = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t k = (int64_t)strlen(strs[i]);
        if (pos + k + 1 <= n) memcpy(buf + pos, strs[i], (size_t)k + 1);
        pos += k + 1;
    }
    *needed = pos;
    rc = 0;
done:
    free_strs(strs, count);
    free(raw);
    if (space >= 0) H5Sclose(space);
    if (mt >= 0) H5Tclose(mt);
    H5Tclose(ft);
    return rc;
}

int ewb_dataset_read_strings(ewb_dataset *ds, const char *field, int64_t start, int64_t count, char *buf, int64_t n,
                             int64_t *needed) {
    ewb_h5_enter();
    return ewb_h5_leave(read_strings_locked(ds, field, start, count, buf, n, needed));
}
