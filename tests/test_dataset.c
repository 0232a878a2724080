/* test_dataset.c: core/dataset.c. Create / append / reopen / read round trips
 * (exact, f32 and int16 + gain), slices, the chunking and filters actually
 * stored (queried from the dataset creation property list), UTF-8 strings,
 * files in the layout made by plain HDF5 calls (integer ids, no reports),
 * named label sets, concurrent readers, and clear errors for wrong shapes and dtypes, missing
 * datasets and files, truncated and corrupt files.
 * Direct chunk reads (core/dataset_internal.h): on every layout the same
 * floats, bit for bit, as H5Dread (ECGWB_H5_DIRECT=0): f32 and int16,
 * deflate with and without shuffle, shuffle alone, no filter, the filters in
 * the other order; the layouts it must leave to H5Dread (Fletcher32,
 * contiguous, two records per chunk, int32, big-endian, a chunk whose
 * filter mask skips the shuffle) do take H5Dread; a chunk with flipped bytes
 * and a truncated chunk are errors naming the file and the record. */
#include "check.h"
#include "../core/dataset_internal.h"
#include <hdf5.h>
#include <pthread.h>
#include <unistd.h>
#include <zlib.h>

static char path[256], path2[256];

static ewb_tensor *signals(int64_t n, int64_t leads, int64_t samples, int k) { /* distinct, exactly representable */
    int64_t s[3] = {n, leads, samples};
    ewb_tensor *t = NULL;
    ewb_tensor_new(&t, EWB_DTYPE_F32, 3, s);
    float *p = ewb_tensor_data(t);
    for (int64_t i = 0; i < n * leads * samples; i++) p[i] = (float)((i * 37 + k * 11) % 401 - 200) * 0.0078125f;
    return t;
}

static ewb_tensor *vec(int dtype, int64_t n, const double *v) {
    ewb_tensor *t = NULL;
    ewb_tensor_new(&t, dtype, 1, &n);
    for (int64_t i = 0; i < n; i++) ewb_tensor_set(t, &i, v[i]);
    return t;
}

static int same_f32(const ewb_tensor *a, const ewb_tensor *b) {
    if (!a || !b || ewb_tensor_numel(a) != ewb_tensor_numel(b) || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return 0;
    return memcmp(ewb_tensor_data(a), ewb_tensor_data(b), (size_t)ewb_tensor_numel(a) * 4) == 0;
}

static double at(const ewb_tensor *t, int64_t i) {
    double v = NAN;
    ewb_tensor_get(t, &i, &v);
    return v;
}

static const char *labels3[] = {"AF", "RBBB", "Ωmega ü"};

static void roundtrip(void) {
    ewb_dataset_spec sp = {.fs = 500, .leads = 12, .samples = 50, .nlabels = 3, .label_names = labels3, .compression = -1};
    ewb_dataset *ds = NULL;
    OK(ewb_dataset_create(&ds, path, &sp));
    CHECK(ewb_dataset_size(ds) == 0, "new dataset has %lld records", (long long)ewb_dataset_size(ds));

    /* batch 1: 3 records with everything */
    ewb_tensor *x1 = signals(3, 12, 50, 1), *x2 = signals(2, 12, 50, 2);
    double lab[9] = {1, 0, 0, 0, 0, 0, 0, 1, 1}, pid[3] = {10, 11, 3000000000.0}, age[3] = {63.5, 40, NAN},
           sex[3] = {1, 0, -1}, split[3] = {1, 2, 10};
    int64_t ls[2] = {3, 3};
    ewb_tensor *labels = NULL;
    ewb_tensor_new(&labels, EWB_DTYPE_I32, 2, ls);
    for (int64_t i = 0; i < 9; i++) ((int32_t *)ewb_tensor_data(labels))[i] = (int32_t)lab[i] * 7; /* nonzero = 1 */
    ewb_tensor *tp = vec(EWB_DTYPE_I64, 3, pid), *ta = vec(EWB_DTYPE_F32, 3, age), *tsx = vec(EWB_DTYPE_I32, 3, sex),
               *tsp = vec(EWB_DTYPE_I64, 3, split);
    const char *ids[] = {"rec-1", "rec-2", "записи"}, *reports[] = {"sinus rhythm", "", "fibrillation auriculaire, ÉCG 日本"};
    ewb_dataset_batch b = {.signals = x1, .labels = labels, .patient_id = tp, .age = ta, .sex = tsx, .split = tsp,
                           .ids = ids, .reports = reports};
    OK(ewb_dataset_append(ds, &b));
    /* batch 2: 2 records, signals only (defaults), given as a strided view */
    ewb_tensor *x2t = NULL, *x2v = NULL;
    int perm[3] = {0, 2, 1};
    OK(ewb_permute(x2, perm, &x2t));
    OK(ewb_contiguous(x2t, &x2v)); /* (2, 50, 12) contiguous */
    ewb_tensor *x2back = NULL;
    OK(ewb_permute(x2v, perm, &x2back)); /* (2, 12, 50), strided */
    CHECK(!ewb_tensor_is_contiguous(x2back), "the second batch should be a strided view");
    ewb_dataset_batch b2 = {.signals = x2back};
    OK(ewb_dataset_append(ds, &b2));
    CHECK(ewb_dataset_size(ds) == 5, "after two appends: %lld records", (long long)ewb_dataset_size(ds));
    OK(ewb_dataset_close(ds));

    /* reopen and read everything back */
    OK(ewb_dataset_open(&ds, path, 0));
    ewb_dataset_info info;
    OK(ewb_dataset_info_get(ds, &info));
    CHECK(info.n == 5 && info.leads == 12 && info.samples == 50 && info.nlabels == 3 && info.fs == 500 && !info.int16 &&
              !info.writable, "info n=%lld leads=%lld samples=%lld nlabels=%lld fs=%g", (long long)info.n,
          (long long)info.leads, (long long)info.samples, (long long)info.nlabels, info.fs);
    CHECK(!strcmp(ewb_dataset_lead_name(ds, 3), "aVR") && !strcmp(ewb_dataset_lead_name(ds, 11), "V6") &&
              ewb_dataset_lead_name(ds, 12) == NULL, "lead names");
    CHECK(!strcmp(ewb_dataset_label_name(ds, 2), "Ωmega ü") && ewb_dataset_label_name(ds, 3) == NULL, "label names");
    CHECK(!strcmp(ewb_dataset_units(ds), "mV"), "units %s", ewb_dataset_units(ds));
    ewb_tensor *r = NULL, *r2 = NULL, *ref = NULL;
    OK(ewb_dataset_read(ds, 0, 3, &r));
    CHECK(same_f32(r, x1), "records 0..2 read back exactly");
    OK(ewb_dataset_read(ds, 3, 2, &r2));
    CHECK(same_f32(r2, x2), "records 3..4 (written from a strided view) read back exactly");
    ewb_tensor_free(r);
    ewb_tensor_free(r2);
    /* a slice across the two appends */
    OK(ewb_dataset_read(ds, 2, 2, &r));
    ewb_tensor *p1 = NULL, *p2 = NULL;
    OK(ewb_narrow(x1, 0, 2, 1, &p1));
    OK(ewb_narrow(x2, 0, 0, 1, &p2));
    const ewb_tensor *parts[2] = {p1, p2};
    OK(ewb_cat(2, (ewb_tensor *const *)parts, 0, &ref));
    CHECK(same_f32(r, ref), "slice [2, 4) across the appends");
    ewb_tensor_free(r);
    ewb_tensor_free(ref);
    ewb_tensor_free(p1);
    ewb_tensor_free(p2);

    ewb_tensor *l = NULL;
    OK(ewb_dataset_read_labels(ds, 0, 5, &l));
    uint8_t want[15] = {1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0};
    CHECK(l && l->dtype == EWB_DTYPE_BOOL && l->shape[0] == 5 && l->shape[1] == 3 &&
              !memcmp(ewb_tensor_data(l), want, 15), "labels (multi-hot, defaults 0)");
    ewb_tensor_free(l);

    ewb_tensor *f = NULL;
    OK(ewb_dataset_read_field(ds, "patient_id", 0, 5, &f));
    CHECK(f->dtype == EWB_DTYPE_I64 && ((int64_t *)ewb_tensor_data(f))[2] == 3000000000LL && at(f, 0) == 10 && at(f, 4) == -1,
          "patient_id (i64, default -1)");
    ewb_tensor_free(f);
    OK(ewb_dataset_read_field(ds, "age", 0, 5, &f));
    CHECK(f->dtype == EWB_DTYPE_F32 && at(f, 0) == 63.5 && at(f, 1) == 40 && isnan(at(f, 2)) && isnan(at(f, 3)), "age (NaN unknown)");
    ewb_tensor_free(f);
    OK(ewb_dataset_read_field(ds, "sex", 0, 5, &f));
    CHECK(f->dtype == EWB_DTYPE_I32 && at(f, 0) == 1 && at(f, 1) == 0 && at(f, 2) == -1 && at(f, 3) == -1, "sex");
    ewb_tensor_free(f);
    OK(ewb_dataset_read_field(ds, "split", 1, 4, &f));
    CHECK(f->shape[0] == 4 && at(f, 0) == 2 && at(f, 1) == 10 && at(f, 2) == 0, "split slice (default 0)");
    ewb_tensor_free(f);

    char buf[256];
    int64_t need = 0;
    OK(ewb_dataset_read_strings(ds, "reports", 0, 5, buf, sizeof buf, &need));
    const char *wantr[5] = {"sinus rhythm", "", "fibrillation auriculaire, ÉCG 日本", "", ""};
    int64_t pos = 0, good = need <= (int64_t)sizeof buf;
    for (int i = 0; i < 5 && good; i++) {
        good = !strcmp(buf + pos, wantr[i]);
        pos += (int64_t)strlen(wantr[i]) + 1;
    }
    CHECK(good && pos == need, "reports read back (UTF-8, defaults \"\"), need=%lld", (long long)need);
    OK(ewb_dataset_read_strings(ds, "id", 2, 3, buf, sizeof buf, &need));
    CHECK(!strcmp(buf, "записи") && !strcmp(buf + strlen("записи") + 1, "3") && !strcmp(buf + strlen("записи") + 3, "4"),
          "ids (default: the record number)");
    /* too small a buffer: *needed says how much */
    OK(ewb_dataset_read_strings(ds, "reports", 0, 5, buf, 4, &need));
    CHECK(need == pos, "needed bytes with a small buffer: %lld, want %lld", (long long)need, (long long)pos);

    /* the stored layout: chunks of one record, shuffle + deflate, unlimited */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, "signals", H5P_DEFAULT), pl = H5Dget_create_plist(d);
    hsize_t chunk[3] = {0}, maxd[3] = {0}, dims[3];
    CHECK(H5Pget_layout(pl) == H5D_CHUNKED && H5Pget_chunk(pl, 3, chunk) == 3 && chunk[0] == 1 && chunk[1] == 12 &&
              chunk[2] == 50, "signals chunked (1, 12, 50): got (%llu, %llu, %llu)", (unsigned long long)chunk[0],
          (unsigned long long)chunk[1], (unsigned long long)chunk[2]);
    int nf = H5Pget_nfilters(pl), shuffle = -1, deflate = -1;
    for (int i = 0; i < nf; i++) {
        unsigned flags, cd[4] = {0};
        size_t ncd = 4;
        H5Z_filter_t id = H5Pget_filter2(pl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL);
        if (id == H5Z_FILTER_SHUFFLE) shuffle = i;
        if (id == H5Z_FILTER_DEFLATE) { deflate = i; CHECK(ncd >= 1 && cd[0] == 4, "deflate level %u, want 4", cd[0]); }
    }
    CHECK(shuffle == 0 && deflate == 1, "filters: shuffle then deflate (got shuffle at %d, deflate at %d of %d)", shuffle, deflate, nf);
    hid_t sp2 = H5Dget_space(d);
    H5Sget_simple_extent_dims(sp2, dims, maxd);
    CHECK(maxd[0] == H5S_UNLIMITED && dims[0] == 5, "signals first dim unlimited, 5 records");
    hid_t ty = H5Dget_type(d);
    CHECK(H5Tequal(ty, H5T_IEEE_F32LE) > 0, "signals stored as f32 LE");
    H5Tclose(ty);
    H5Sclose(sp2);
    H5Pclose(pl);
    H5Dclose(d);
    d = H5Dopen2(file, "reports", H5P_DEFAULT);
    ty = H5Dget_type(d);
    CHECK(H5Tis_variable_str(ty) > 0 && H5Tget_cset(ty) == H5T_CSET_UTF8, "reports: variable-length UTF-8");
    H5Tclose(ty);
    H5Dclose(d);
    H5Fclose(file);

    /* appending again after reopening for writing */
    ewb_dataset_close(ds);
    OK(ewb_dataset_open(&ds, path, 1));
    OK(ewb_dataset_append(ds, &b));
    CHECK(ewb_dataset_size(ds) == 8, "append after reopen: %lld records", (long long)ewb_dataset_size(ds));
    OK(ewb_dataset_read(ds, 5, 3, &r));
    CHECK(same_f32(r, x1), "records appended after reopening");
    ewb_tensor_free(r);
    OK(ewb_dataset_read_strings(ds, "id", 7, 1, buf, sizeof buf, &need));
    CHECK(!strcmp(buf, "записи"), "id after reopen: %s", buf);
    OK(ewb_dataset_close(ds));

    ewb_tensor *objs[] = {x1, x2, x2t, x2v, x2back, labels, tp, ta, tsx, tsp};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) ewb_tensor_free(objs[i]);
}

static void int16_gain(void) {
    ewb_dataset_spec sp = {.fs = 400, .leads = 2, .samples = 7, .int16 = 1, .gain = 1000, .compression = 0,
                           .units = "µV", .lead_names = (const char *[]){"II", "V5"}};
    ewb_dataset *ds = NULL;
    OK(ewb_dataset_create(&ds, path2, &sp));
    ewb_tensor *x = signals(3, 2, 7, 5), *r = NULL;
    float *p = ewb_tensor_data(x);
    p[0] = 0.0015f;   /* rounds to 2 steps */
    p[1] = -32.768f;  /* the int16 minimum */
    ewb_dataset_batch b = {.signals = x};
    OK(ewb_dataset_append(ds, &b));
    OK(ewb_dataset_close(ds));
    OK(ewb_dataset_open(&ds, path2, 0));
    ewb_dataset_info info;
    OK(ewb_dataset_info_get(ds, &info));
    CHECK(info.int16 && info.gain == 1000 && info.nlabels == 0 && info.fs == 400, "int16 info");
    CHECK(!strcmp(ewb_dataset_units(ds), "µV") && !strcmp(ewb_dataset_lead_name(ds, 1), "V5"), "units and lead names");
    OK(ewb_dataset_read(ds, 0, 3, &r));
    double worst = 0;
    for (int64_t i = 0; i < 42; i++) {
        double want = (float)(nearbyint(p[i] * 1000.0) / 1000.0), got = ewb_f32(r)[i];
        if (fabs(got - want) > worst) worst = fabs(got - want);
    }
    CHECK(worst == 0, "int16 values / gain, correctly rounded: worst error %g", worst);
    CHECK(fabsf(ewb_f32(r)[0] - 0.002f) < 1e-7 && fabsf(ewb_f32(r)[1] + 32.768f) < 1e-5, "rounding %g and minimum %g",
          ewb_f32(r)[0], ewb_f32(r)[1]);
    ewb_tensor *l = NULL;
    OK(ewb_dataset_read_labels(ds, 0, 3, &l));
    CHECK(l->shape[0] == 3 && l->shape[1] == 0, "no labels: (3, 0)");
    ewb_tensor_free(l);
    FAILS(ewb_dataset_append(ds, &b), "is open read-only");
    ewb_dataset_close(ds);
    OK(ewb_dataset_open(&ds, path2, 1));
    p[5] = 40.0f;
    FAILS(ewb_dataset_append(ds, &b), "value 40 (record 0 of the batch, lead 0, sample 5) does not fit int16 at gain 1000");
    CHECK(ewb_dataset_size(ds) == 3, "failed append left %lld records", (long long)ewb_dataset_size(ds));
    ewb_dataset_close(ds);
    ewb_tensor_free(r);
    ewb_tensor_free(x);
}

/* a file in the layout, made with plain HDF5 calls: integer ids, no reports */
static void foreign_layout(void) {
    hid_t f = H5Fcreate(path2, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[3] = {2, 1, 3}, n = 2;
    float xv[6] = {1, 2, 3, 4, 5, 6};
    int64_t ids[2] = {123456789012LL, 7};
    hid_t s = H5Screate_simple(3, dims, NULL), d = H5Dcreate2(f, "signals", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, xv);
    hid_t as = H5Screate(H5S_SCALAR), a = H5Acreate2(f, "fs", H5T_STD_I32LE, as, H5P_DEFAULT, H5P_DEFAULT); /* on the file */
    int fs = 250;
    H5Awrite(a, H5T_NATIVE_INT, &fs);
    H5Aclose(a);
    H5Sclose(as);
    H5Dclose(d);
    H5Sclose(s);
    s = H5Screate_simple(1, &n, NULL);
    d = H5Dcreate2(f, "id", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);

    ewb_dataset *ds = NULL;
    OK(ewb_dataset_open(&ds, path2, 0));
    ewb_tensor *r = NULL;
    OK(ewb_dataset_read(ds, 1, 1, &r));
    CHECK(r && r->shape[0] == 1 && r->shape[1] == 1 && r->shape[2] == 3 && ewb_f32(r)[0] == 4 && ewb_f32(r)[2] == 6,
          "f64 signals read as f32");
    ewb_tensor_free(r);
    char buf[64];
    int64_t need = 0;
    OK(ewb_dataset_read_strings(ds, "id", 0, 2, buf, sizeof buf, &need));
    CHECK(!strcmp(buf, "123456789012") && !strcmp(buf + 13, "7"), "integer ids as text: %s", buf);
    CHECK(!strcmp(ewb_dataset_lead_name(ds, 0), "1") && !strcmp(ewb_dataset_units(ds), "mV"), "default lead names, units");
    FAILS(ewb_dataset_read_strings(ds, "reports", 0, 1, buf, sizeof buf, &need), "has no dataset 'reports'");
    FAILS(ewb_dataset_read_field(ds, "age", 0, 1, &r), "has no dataset 'age'");
    ewb_dataset_close(ds);
    OK(ewb_dataset_open(&ds, path2, 1));
    ewb_tensor *x = signals(1, 1, 3, 0);
    ewb_dataset_batch b = {.signals = x};
    FAILS(ewb_dataset_append(ds, &b), "cannot append: dataset 'patient_id' is missing");
    ewb_dataset_close(ds);
    ewb_tensor_free(x);
}

/* named label sets: create, append (tensor, absent = zeros, strided), reopen, read, errors */
static void label_sets(void) {
    const char *sup[] = {"CD", "MI", "NORM"}, *rhy[] = {"SR"};
    ewb_dataset_label_set sets[2] = {{.name = "superclass", .nlabels = 3, .label_names = sup},
                                     {.name = "rhythm", .nlabels = 1, .label_names = rhy}};
    ewb_dataset_spec sp = {.fs = 100, .leads = 1, .samples = 2, .nsets = 2, .sets = sets, .compression = -1};
    ewb_dataset *ds = NULL;
    OK(ewb_dataset_create(&ds, path2, &sp));
    ewb_tensor *x = signals(2, 1, 2, 3), *sl = NULL, *slt = NULL;
    int64_t s23[2] = {3, 2};
    ewb_tensor_new(&sl, EWB_DTYPE_F32, 2, s23); /* (3, 2), transposed below: a strided (2, 3) */
    float v[6] = {1, 0, 0, 0, 2, 1}; /* transposed: record 0 = {1, 0, 2}, record 1 = {0, 0, 1} */
    memcpy(ewb_tensor_data(sl), v, sizeof v);
    OK(ewb_transpose(sl, 0, 1, &slt));
    const char *names[] = {"superclass"};
    const ewb_tensor *tl[] = {slt};
    ewb_dataset_batch b = {.signals = x, .nsets = 1, .set_names = names, .set_labels = tl};
    OK(ewb_dataset_append(ds, &b));
    const char *bad_names[] = {"form"};
    ewb_dataset_batch bad = {.signals = x, .nsets = 1, .set_names = bad_names, .set_labels = tl};
    FAILS(ewb_dataset_append(ds, &bad), "has no label set 'form'");
    const char *rn[] = {"rhythm"};
    ewb_dataset_batch bad2 = {.signals = x, .nsets = 1, .set_names = rn, .set_labels = tl};
    FAILS(ewb_dataset_append(ds, &bad2), "labels_rhythm must be (2, 1), got");
    ewb_dataset_batch bad3 = {.signals = x, .nsets = 1};
    FAILS(ewb_dataset_append(ds, &bad3), "set_names or set_labels is NULL");
    OK(ewb_dataset_close(ds));

    OK(ewb_dataset_open(&ds, path2, 0));
    ewb_dataset_info info;
    OK(ewb_dataset_info_get(ds, &info));
    CHECK(info.n == 2 && info.nsets == 2 && info.nlabels == 0, "reopened: %lld records, %lld sets", (long long)info.n,
          (long long)info.nsets);
    CHECK(!strcmp(ewb_dataset_set_name(ds, 0), "superclass") && !strcmp(ewb_dataset_set_name(ds, 1), "rhythm") &&
              ewb_dataset_set_name(ds, 2) == NULL, "set names in creation order");
    CHECK(ewb_dataset_set_nlabels(ds, 0) == 3 && ewb_dataset_set_nlabels(ds, 1) == 1 && ewb_dataset_set_nlabels(ds, 5) == -1,
          "set sizes");
    CHECK(!strcmp(ewb_dataset_set_label_name(ds, 0, 2), "NORM") && !strcmp(ewb_dataset_set_label_name(ds, 1, 0), "SR") &&
              ewb_dataset_set_label_name(ds, 1, 1) == NULL, "set label names");
    ewb_tensor *r = NULL;
    OK(ewb_dataset_read_set_labels(ds, "superclass", 0, 2, &r));
    const uint8_t *p = r ? ewb_tensor_data(r) : NULL;
    CHECK(r && r->dtype == EWB_DTYPE_BOOL && r->shape[0] == 2 && r->shape[1] == 3 && p[0] == 1 && p[1] == 0 && p[2] == 1 &&
              p[3] == 0 && p[4] == 0 && p[5] == 1, "superclass labels from a strided tensor, nonzero = 1");
    ewb_tensor_free(r);
    OK(ewb_dataset_read_set_labels(ds, "rhythm", 1, 1, &r));
    CHECK(r && r->shape[0] == 1 && r->shape[1] == 1 && ((uint8_t *)ewb_tensor_data(r))[0] == 0, "a set not given is zeros");
    ewb_tensor_free(r);
    OK(ewb_dataset_read_set_labels(ds, NULL, 0, 2, &r));
    CHECK(r && r->shape[0] == 2 && r->shape[1] == 0, "NULL set = the main labels (none here)");
    ewb_tensor_free(r);
    FAILS(ewb_dataset_read_set_labels(ds, "form", 0, 1, &r), "has no label set 'form' (it has: superclass, rhythm)");
    FAILS(ewb_dataset_read_set_labels(ds, "rhythm", 1, 2, &r), "out of range");
    OK(ewb_dataset_close(ds));

    /* the root attribute naming a set whose dataset is missing */
    hid_t f = H5Fopen(path2, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "labels_rhythm", H5P_DEFAULT);
    H5Fclose(f);
    FAILS(ewb_dataset_open(&ds, path2, 0), "attribute 'label_sets' lists 'rhythm' but there is no dataset 'labels_rhythm'");

    ewb_dataset_label_set badset[1] = {{.name = "x-y", .nlabels = 1, .label_names = rhy}};
    FAILS(ewb_dataset_create(&ds, path2, &(ewb_dataset_spec){.fs = 1, .leads = 1, .samples = 2, .nsets = 1, .sets = badset}),
          "name 'x-y' must be 1..200 letters");
    FAILS(ewb_dataset_create(&ds, path2, &(ewb_dataset_spec){.fs = 1, .leads = 1, .samples = 2, .nsets = 1}), "sets is NULL");
    ewb_tensor_free(x);
    ewb_tensor_free(sl);
    ewb_tensor_free(slt);
}

static void errors(void) {
    ewb_dataset *ds = NULL;
    ewb_dataset_spec sp = {.fs = 500, .leads = 3, .samples = 4, .nlabels = 1, .label_names = labels3, .compression = 9};
    FAILS(ewb_dataset_create(&ds, path, &(ewb_dataset_spec){.fs = 0, .leads = 3, .samples = 4}), "fs must be > 0");
    FAILS(ewb_dataset_create(&ds, path, &(ewb_dataset_spec){.fs = 1, .leads = 0, .samples = 4}), "need leads >= 1");
    FAILS(ewb_dataset_create(&ds, path, &(ewb_dataset_spec){.fs = 1, .leads = 1, .samples = 4, .nlabels = 2}), "label_names is NULL");
    FAILS(ewb_dataset_create(&ds, path, &(ewb_dataset_spec){.fs = 1, .leads = 1, .samples = 4, .int16 = 1}), "need a gain > 0");
    FAILS(ewb_dataset_create(&ds, path, &(ewb_dataset_spec){.fs = 1, .leads = 1, .samples = 4, .compression = 12}), "compression must be 0..9");
    FAILS(ewb_dataset_create(&ds, "/nonexistent-dir/x.h5", &sp), "cannot create '/nonexistent-dir/x.h5'");
    CHECK(ds == NULL, "failed create leaves *out NULL");

    OK(ewb_dataset_create(&ds, path, &sp));
    int64_t s_bad[3] = {2, 3, 5}, s_ok[3] = {2, 3, 4}, s2[2] = {3, 4};
    ewb_tensor *bad = NULL, *ok = NULL, *i32 = NULL, *two = NULL, *lab = NULL, *sx = NULL;
    ewb_tensor_new(&bad, EWB_DTYPE_F32, 3, s_bad);
    ewb_tensor_new(&ok, EWB_DTYPE_F32, 3, s_ok);
    ewb_tensor_new(&i32, EWB_DTYPE_I32, 3, s_ok);
    ewb_tensor_new(&two, EWB_DTYPE_F32, 2, s2);
    int64_t ls[2] = {2, 2};
    ewb_tensor_new(&lab, EWB_DTYPE_BOOL, 2, ls);
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = bad}), "signals must be f32 (n, 3, 4), got f32[2,3,5]");
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = i32}), "signals must be f32 (n, 3, 4), got i32[2,3,4]");
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = two}), "got f32[3,4]");
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = NULL}), "the batch has no signals");
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = ok, .labels = lab}), "labels must be (2, 1), got bool[2,2]");
    double sv[2] = {1, 2};
    sx = vec(EWB_DTYPE_I32, 2, sv);
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = ok, .sex = sx}), "sex of record 1 of the batch is 2");
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = ok, .age = ewb_tensor_size(sx, 0) ? two : NULL}),
          "age must be (2), one per record");
    const char *badutf[2] = {"ok", "\xff\xfe"};
    FAILS(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = ok, .reports = badutf}), "the report of record 1 of the batch is not valid UTF-8");
    CHECK(ewb_dataset_size(ds) == 0, "failed appends add nothing");
    OK(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = ok}));
    ewb_tensor *r = NULL;
    FAILS(ewb_dataset_read(ds, 1, 2, &r), "records [1, 3) are out of range (the dataset has 2)");
    FAILS(ewb_dataset_read(ds, -1, 1, &r), "out of range");
    CHECK(r == NULL, "failed read leaves *out NULL");
    OK(ewb_dataset_read(ds, 2, 0, &r));
    CHECK(r && r->shape[0] == 0, "an empty slice at the end");
    ewb_tensor_free(r);
    FAILS(ewb_dataset_read_field(ds, "height", 0, 1, &r), "unknown field 'height'");
    char buf[8];
    int64_t need;
    FAILS(ewb_dataset_read_strings(ds, "age", 0, 1, buf, 8, &need), "unknown string field 'age'");
    ewb_dataset_close(ds);
    ewb_tensor *objs[] = {bad, ok, i32, two, lab, sx};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) ewb_tensor_free(objs[i]);

    /* files that are not datasets */
    FAILS(ewb_dataset_open(&ds, "/nonexistent/x.h5", 0), "cannot open '/nonexistent/x.h5'");
    FILE *fp = fopen(path2, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    FAILS(ewb_dataset_open(&ds, path2, 0), "is not an HDF5 file");
    ewb_tensor *t = NULL;
    int64_t one = 3;
    ewb_tensor_new(&t, EWB_DTYPE_F32, 1, &one);
    OK(ewb_h5_write(path2, "x", t, 1));
    FAILS(ewb_dataset_open(&ds, path2, 0), "has no dataset 'signals' (not an ECG dataset");
    int64_t s3[3] = {1, 1, 3};
    ewb_tensor_free(t);
    ewb_tensor_new(&t, EWB_DTYPE_F32, 3, s3);
    OK(ewb_h5_write(path2, "signals", t, 1));
    FAILS(ewb_dataset_open(&ds, path2, 0), "no sampling rate: attribute 'fs' is missing");
    ewb_tensor_free(t);
    CHECK(ds == NULL, "failed open leaves *out NULL");

    /* truncated: the first half of a real dataset */
    OK(ewb_dataset_create(&ds, path, &sp));
    ewb_tensor *x = signals(20, 3, 4, 3);
    OK(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = x}));
    ewb_dataset_close(ds);
    ewb_tensor_free(x);
    fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    char *bytes = malloc((size_t)size);
    fseek(fp, 0, SEEK_SET);
    CHECK(fread(bytes, 1, (size_t)size, fp) == (size_t)size, "read the file");
    fclose(fp);
    fp = fopen(path2, "wb");
    fwrite(bytes, 1, (size_t)size / 2, fp);
    fclose(fp);
    FAILS(ewb_dataset_open(&ds, path2, 0), "truncated or corrupt HDF5 file");
    /* corrupt: labels with fewer rows than signals (made by hand) */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, "labels", H5P_DEFAULT);
    hsize_t dims[2] = {19, 1};
    H5Dset_extent(d, dims);
    H5Dclose(d);
    H5Fclose(f);
    FAILS(ewb_dataset_open(&ds, path, 0), "corrupt: dataset 'labels' has 19 rows but 'signals' has 20 records");
    /* garbage in the middle of the file: reading fails with a message, never a crash */
    memset(bytes + size / 3, 0xAB, (size_t)size / 3);
    fp = fopen(path2, "wb");
    fwrite(bytes, 1, (size_t)size, fp);
    fclose(fp);
    ewb_clear_error();
    if (ewb_dataset_open(&ds, path2, 0) == 0) {
        int rc = ewb_dataset_read(ds, 0, 20, &r);
        CHECK(rc != 0 || r != NULL, "read of a damaged file: rc=%d", rc);
        if (rc != 0) CHECK(strstr(ewb_last_error(), path2) != NULL, "damaged file error names the file: %s", ewb_last_error());
        ewb_tensor_free(r);
        ewb_dataset_close(ds);
    } else {
        CHECK(strstr(ewb_last_error(), path2) != NULL, "damaged file error names the file: %s", ewb_last_error());
    }
    free(bytes);
}

/* two threads reading at once (the loader does this) */
static ewb_dataset *shared_ds;
static ewb_tensor *shared_x;
static void *reader(void *arg) {
    long bad = 0;
    for (int k = 0; k < 50; k++) {
        int64_t i = (k * 7 + (long)arg) % 8;
        ewb_tensor *r = NULL, *want = NULL;
        if (ewb_dataset_read(shared_ds, i, 1, &r) != 0 || ewb_narrow(shared_x, 0, i, 1, &want) != 0) bad++;
        else {
            ewb_tensor *c = NULL;
            ewb_contiguous(want, &c);
            if (!same_f32(r, c)) bad++;
            ewb_tensor_free(c);
        }
        ewb_tensor_free(r);
        ewb_tensor_free(want);
    }
    return (void *)bad;
}
static void threads(void) {
    ewb_dataset_spec sp = {.fs = 100, .leads = 12, .samples = 300, .compression = 1};
    OK(ewb_dataset_create(&shared_ds, path, &sp));
    shared_x = signals(8, 12, 300, 9);
    OK(ewb_dataset_append(shared_ds, &(ewb_dataset_batch){.signals = shared_x}));
    pthread_t th[3];
    for (long i = 0; i < 3; i++) pthread_create(&th[i], NULL, reader, (void *)i);
    long bad = 0;
    for (int i = 0; i < 3; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        bad += (long)rv;
    }
    CHECK(bad == 0, "%ld wrong reads from 3 threads", bad);
    ewb_dataset_close(shared_ds);
    ewb_tensor_free(shared_x);
}

/* ---------------- direct chunk reads ---------------- */

enum { DN = 9, DL = 12, DS = 500 };

static void direct_values(float *x) { /* smooth plus noise-like, mV */
    for (int64_t i = 0; i < DN * DL * DS; i++)
        x[i] = 1.5f * sinf(0.013f * (float)(i % DS) + (float)(i / DS)) + 0.25f * (float)((i * 7919) % 1009) / 1009.0f;
}

/* an ecgwb dataset of DN records of x, made by the API (uncompressed); then,
   if dcpl >= 0, `signals` replaced by one of file type ftype with dcpl's
   layout and filters (as x, or int16 = round(1000 x)) */
static void write_layout(const char *file, const float *x, int int16, int compression, hid_t ftype, hid_t dcpl) {
    ewb_dataset_spec sp = {.fs = 500, .leads = DL, .samples = DS, .int16 = int16, .gain = 1000, .compression = compression};
    int64_t shape[3] = {DN, DL, DS};
    ewb_tensor *t = NULL;
    ewb_dataset *ds = NULL;
    OK(ewb_tensor_new(&t, EWB_DTYPE_F32, 3, shape));
    memcpy(ewb_tensor_data(t), x, sizeof(float) * DN * DL * DS);
    OK(ewb_dataset_create(&ds, file, &sp));
    OK(ewb_dataset_append(ds, &(ewb_dataset_batch){.signals = t}));
    OK(ewb_dataset_close(ds));
    ewb_tensor_free(t);
    if (dcpl < 0) return;
    hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(f, "signals", H5P_DEFAULT);
    hsize_t dims[3] = {DN, DL, DS}, maxd[3] = {H5S_UNLIMITED, DL, DS};
    hid_t s = H5Screate_simple(3, dims, H5Pget_layout(dcpl) == H5D_CHUNKED ? maxd : NULL);
    hid_t d = H5Dcreate2(f, "signals", ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0, "a signals dataset for the layout");
    if (int16) {
        int16_t *q = malloc(sizeof(int16_t) * DN * DL * DS);
        for (int64_t i = 0; i < DN * DL * DS; i++) q[i] = (int16_t)nearbyint(x[i] * 1000.0);
        H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, q);
        free(q);
    } else {
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    }
    const char *an[2] = {"fs", "gain"};
    double av[2] = {500, 1000};
    for (int i = 0; i < 1 + int16; i++) {
        hid_t as = H5Screate(H5S_SCALAR), a = H5Acreate2(d, an[i], H5T_IEEE_F64LE, as, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_DOUBLE, &av[i]);
        H5Aclose(a);
        H5Sclose(as);
    }
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
}

/* all records of file, read with direct chunk reads on or off; *ndirect =
   the records the direct path decoded */
static float *read_all(const char *file, int direct, int64_t *ndirect) {
    if (!direct) setenv("ECGWB_H5_DIRECT", "0", 1);
    ewb_dataset *ds = NULL;
    int rc = ewb_dataset_open(&ds, file, 0);
    unsetenv("ECGWB_H5_DIRECT");
    CHECK(rc == 0, "open %s: %s", file, ewb_last_error());
    if (rc) return NULL;
    int64_t before = ewb_dataset_direct_records();
    ewb_tensor *r = NULL;
    float *out = NULL;
    if (ewb_dataset_read(ds, 0, DN, &r) == 0) {
        out = malloc(sizeof(float) * DN * DL * DS);
        memcpy(out, ewb_tensor_data(r), sizeof(float) * DN * DL * DS);
    } else {
        CHECK(0, "read %s (direct %d): %s", file, direct, ewb_last_error());
    }
    *ndirect = ewb_dataset_direct_records() - before;
    ewb_tensor_free(r);
    ewb_dataset_close(ds);
    return out;
}

enum { F_SHUF = 1, F_DEFL = 2, F_DEFL_FIRST = 4, F_FLETCHER = 8, F_CONTIG = 16, F_TWO = 32 };

static hid_t make_dcpl(int flags) {
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (flags & F_CONTIG) return p;
    hsize_t chunk[3] = {flags & F_TWO ? 2 : 1, DL, DS};
    H5Pset_chunk(p, 3, chunk);
    if (flags & F_FLETCHER) H5Pset_fletcher32(p);
    if (flags & F_DEFL_FIRST) H5Pset_deflate(p, 4);
    if (flags & F_SHUF) H5Pset_shuffle(p);
    if ((flags & F_DEFL) && !(flags & F_DEFL_FIRST)) H5Pset_deflate(p, 4);
    return p;
}

static void direct_layouts(void) {
    float *x = malloc(sizeof(float) * DN * DL * DS), *want = malloc(sizeof(float) * DN * DL * DS);
    direct_values(x);
    struct { const char *what; int int16, compression, flags; hid_t ftype; int direct; } cases[] = {
        {"f32, the default layout (shuffle + deflate) from the API", 0, -1, -1, 0, 1},
        {"int16, the default layout from the API", 1, -1, -1, 0, 1},
        {"f32, chunked without filters from the API", 0, 0, -1, 0, 1},
        {"int16, chunked without filters from the API", 1, 0, -1, 0, 1},
        {"f32, deflate without shuffle", 0, 0, F_DEFL, H5T_IEEE_F32LE, 1},
        {"int16, deflate without shuffle", 1, 0, F_DEFL, H5T_STD_I16LE, 1},
        {"f32, shuffle alone", 0, 0, F_SHUF, H5T_IEEE_F32LE, 1},
        {"int16, deflate then shuffle (the other order)", 1, 0, F_SHUF | F_DEFL_FIRST, H5T_STD_I16LE, 1},
        {"f32, deflate then shuffle (the other order)", 0, 0, F_SHUF | F_DEFL_FIRST, H5T_IEEE_F32LE, 1},
        {"f32, shuffle + deflate + Fletcher32 (H5Dread)", 0, 0, F_SHUF | F_DEFL | F_FLETCHER, H5T_IEEE_F32LE, 0},
        {"f32, contiguous (H5Dread)", 0, 0, F_CONTIG, H5T_IEEE_F32LE, 0},
        {"f32, two records per chunk (H5Dread)", 0, 0, F_SHUF | F_DEFL | F_TWO, H5T_IEEE_F32LE, 0},
        {"int32 (H5Dread)", 1, 0, F_SHUF | F_DEFL, H5T_STD_I32LE, 0},
        {"f32 big-endian (H5Dread)", 0, 0, F_SHUF | F_DEFL, H5T_IEEE_F32BE, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hid_t p = cases[c].flags >= 0 ? make_dcpl(cases[c].flags) : -1;
        write_layout(path2, x, cases[c].int16, cases[c].compression, cases[c].ftype, p);
        if (p >= 0) H5Pclose(p);
        for (int64_t i = 0; i < DN * DL * DS; i++) want[i] = cases[c].int16 ? (float)(nearbyint(x[i] * 1000.0) / 1000.0) : x[i];
        int64_t nd_on = -1, nd_off = -1;
        float *on = read_all(path2, 1, &nd_on), *off = read_all(path2, 0, &nd_off);
        CHECK(on && off && !memcmp(on, off, sizeof(float) * DN * DL * DS), "%s: direct reads equal H5Dread bit for bit", cases[c].what);
        CHECK(off && !memcmp(off, want, sizeof(float) * DN * DL * DS), "%s: the values written", cases[c].what);
        CHECK(nd_on == (cases[c].direct ? DN : 0) && nd_off == 0, "%s: %lld records by the direct path (ECGWB_H5_DIRECT=0: %lld)",
              cases[c].what, (long long)nd_on, (long long)nd_off);
        free(on);
        free(off);
    }

    /* a chunk whose filter mask says the shuffle was skipped: record 3 stored deflated only */
    hid_t p = make_dcpl(F_SHUF | F_DEFL);
    write_layout(path2, x, 0, 0, H5T_IEEE_F32LE, p);
    H5Pclose(p);
    hid_t f = H5Fopen(path2, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, "signals", H5P_DEFAULT);
    uLongf zn = compressBound(sizeof(float) * DL * DS);
    unsigned char *z = malloc(zn);
    CHECK(compress2(z, &zn, (const Bytef *)(x + 3 * DL * DS), sizeof(float) * DL * DS, 4) == Z_OK, "deflate record 3");
    hsize_t off3[3] = {3, 0, 0};
    CHECK(H5Dwrite_chunk(d, H5P_DEFAULT, 1u /* filter 0, the shuffle, skipped */, off3, zn, z) >= 0, "H5Dwrite_chunk");
    free(z);
    H5Dclose(d);
    H5Fclose(f);
    int64_t nd_on = -1, nd_off = -1;
    float *on = read_all(path2, 1, &nd_on), *off = read_all(path2, 0, &nd_off);
    CHECK(on && off && !memcmp(on, x, sizeof(float) * DN * DL * DS) && !memcmp(off, x, sizeof(float) * DN * DL * DS),
          "a chunk with the shuffle skipped reads right both ways");
    CHECK(nd_on == DN - 1, "the skipped-filter chunk takes H5Dread, the others the direct path: %lld direct", (long long)nd_on);
    free(on);
    free(off);
    free(x);
    free(want);
}

/* flipped bytes in a stored chunk, and a truncated chunk: clear errors */
static void direct_corrupt(void) {
    float *x = malloc(sizeof(float) * DN * DL * DS);
    direct_values(x);
    for (int int16 = 0; int16 <= 1; int16++) {
        write_layout(path2, x, int16, -1, 0, -1);
        hid_t f = H5Fopen(path2, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "signals", H5P_DEFAULT);
        hsize_t coord[3] = {4, 0, 0}, size = 0;
        haddr_t addr = 0;
        unsigned mask = 0;
        CHECK(H5Dget_chunk_info_by_coord(d, coord, &mask, &addr, &size) >= 0 && size > 64, "the chunk of record 4");
        H5Dclose(d);
        H5Fclose(f);
        FILE *fp = fopen(path2, "r+b");
        unsigned char bytes[16];
        fseek(fp, (long)(addr + size / 2), SEEK_SET);
        CHECK(fread(bytes, 1, sizeof bytes, fp) == sizeof bytes, "read chunk bytes");
        for (int i = 0; i < 16; i++) bytes[i] ^= 0xA5;
        fseek(fp, (long)(addr + size / 2), SEEK_SET);
        fwrite(bytes, 1, sizeof bytes, fp);
        fclose(fp);

        ewb_dataset *ds = NULL;
        ewb_tensor *r = NULL;
        OK(ewb_dataset_open(&ds, path2, 0));
        OK(ewb_dataset_read(ds, 0, 4, &r));
        int64_t bad = r ? 0 : 1;
        for (int64_t i = 0; r && i < 4 * DL * DS; i++)
            bad += ewb_f32(r)[i] != (int16 ? (float)(nearbyint(x[i] * 1000.0) / 1000.0) : x[i]);
        CHECK(bad == 0, "records before the damage read: %lld wrong values", (long long)bad);
        ewb_tensor_free(r);
        r = NULL;
        FAILS(ewb_dataset_read(ds, 2, 5, &r), "record 4: corrupt chunk ("); /* zlib's error, or the wrong size */
        CHECK(strstr(ewb_last_error(), path2) && r == NULL, "the error names the file: %s", ewb_last_error());

        /* the stored chunk of record 2, decoded whole and cut short */
        ewb_chunk_scratch s = {0};
        size_t n = 0;
        float *rec = malloc(sizeof(float) * DL * DS);
        OK(ewb_dataset_read_chunk(ds, 2, &s, &n));
        OK(ewb_dataset_decode_chunk(ds, 2, s.raw, n, rec, &s));
        bad = 0;
        for (int64_t i = 0; i < DL * DS; i++) {
            float v = x[2 * DL * DS + i];
            bad += rec[i] != (int16 ? (float)(nearbyint(v * 1000.0) / 1000.0) : v);
        }
        CHECK(bad == 0, "record 2 decoded: %lld wrong values", (long long)bad);
        FAILS(ewb_dataset_decode_chunk(ds, 2, s.raw, n - 9, rec, &s), "record 2: corrupt chunk (truncated");
        FAILS(ewb_dataset_decode_chunk(ds, 2, s.raw, n / 2, rec, &s), "record 2: corrupt chunk (truncated");
        FAILS(ewb_dataset_decode_chunk(ds, 2, s.raw, 0, rec, &s), "record 2: corrupt chunk");
        unsigned char *junk = malloc(n);
        memset(junk, 0x5a, n);
        FAILS(ewb_dataset_decode_chunk(ds, 2, junk, n, rec, &s), "record 2: corrupt chunk (zlib: incorrect header check");
        free(junk);
        free(rec);
        ewb_chunk_scratch_free(&s);
        FAILS(ewb_dataset_read_chunk(ds, DN, &s, &n), "out of range");
        ewb_dataset_close(ds);

        /* the same damage through H5Dread: an error too, not a crash */
        setenv("ECGWB_H5_DIRECT", "0", 1);
        OK(ewb_dataset_open(&ds, path2, 0));
        unsetenv("ECGWB_H5_DIRECT");
        FAILS(ewb_dataset_read(ds, 2, 5, &r), "cannot read records [2, 7)");
        ewb_dataset_close(ds);
    }
    free(x);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/ewb_test_dataset_%d.h5", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/ewb_test_dataset_%d_b.h5", (int)getpid());
    roundtrip();
    int16_gain();
    foreign_layout();
    label_sets();
    errors();
    threads();
    direct_layouts();
    direct_corrupt();
    unlink(path);
    unlink(path2);
    return check_report();
}
