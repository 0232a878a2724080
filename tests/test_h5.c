/* test_h5.c: core/h5.c. Round trips of every dtype and shape (0-d, empty,
 * strided views), nested groups, replacing datasets, listing, and clear
 * errors (never a crash) for missing files, missing datasets, truncated
 * files, text files and bad names. */
#include "check.h"
#include <unistd.h>

static char path[256], path2[256], txt[256];

/* a tensor of dtype with values derived from k, e.g. -3, 1, 5 ... */
static ewb_tensor *make(int dtype, int ndim, const int64_t *shape, int k) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_new(&t, dtype, ndim, shape)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    int64_t n = ewb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = dtype == EWB_DTYPE_BOOL ? (double)((i * 7 + k) % 3 == 0) : (double)(i * 4 - 3 + k);
        if (dtype == EWB_DTYPE_F32) v = v * 0.37 + 1e-3;
        if (dtype == EWB_DTYPE_I64) v = v * 1e10; /* needs 64 bits */
        switch (dtype) {
        case EWB_DTYPE_F32: ((float *)ewb_tensor_data(t))[i] = (float)v; break;
        case EWB_DTYPE_I32: ((int32_t *)ewb_tensor_data(t))[i] = (int32_t)v; break;
        case EWB_DTYPE_I64: ((int64_t *)ewb_tensor_data(t))[i] = (int64_t)v; break;
        default: ((uint8_t *)ewb_tensor_data(t))[i] = (uint8_t)v; break;
        }
    }
    return t;
}

/* same dtype, shape and bytes */
static int same(const ewb_tensor *a, const ewb_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++) if (a->shape[i] != b->shape[i]) return 0;
    int64_t n = ewb_tensor_numel(a) * (int64_t)ewb_dtype_size(a->dtype);
    char *x = malloc(n + 1), *y = malloc(n + 1);
    ewb_tensor_copy_to(a, x, n);
    ewb_tensor_copy_to(b, y, n);
    int r = memcmp(x, y, n) == 0;
    free(x);
    free(y);
    return r;
}

static void roundtrips(void) {
    int64_t shapes[][3] = {{0}, {5}, {2, 3}, {2, 0, 4}, {3, 1, 2}};
    int ndims[] = {0, 1, 2, 3, 3};
    for (int dt = 0; dt < 4; dt++) {
        for (int s = 0; s < 5; s++) {
            ewb_tensor *t = make(dt, ndims[s], shapes[s], s), *r = NULL;
            OK(ewb_h5_write(path, "x", t, 1));
            OK(ewb_h5_read(path, "x", &r));
            CHECK(same(t, r), "round trip dtype %d shape #%d: wrote %s read %s", dt, s, ewb_s(t), r ? ewb_s(r) : "nothing");
            ewb_tensor_free(r);
            ewb_tensor_free(t);
        }
    }
    /* a strided (transposed) view is written in its logical order */
    int64_t s2[2] = {3, 4};
    ewb_tensor *a = make(EWB_DTYPE_F32, 2, s2, 0), *at = NULL, *r = NULL, *c = NULL;
    OK(ewb_transpose(a, 0, 1, &at));
    CHECK(!ewb_tensor_is_contiguous(at), "transpose should be a strided view");
    OK(ewb_h5_write(path, "/t", at, 1));
    OK(ewb_h5_read(path, "t", &r));
    OK(ewb_contiguous(at, &c));
    CHECK(same(c, r), "strided write: read back %s", r ? ewb_s(r) : "nothing");
    float v = 0;
    if (r) v = ((float *)ewb_tensor_data(r))[1]; /* r[0][1] = a[1][0] */
    CHECK(v == ((float *)ewb_tensor_data(a))[4], "transposed element: got %g want %g", v, ((float *)ewb_tensor_data(a))[4]);
    ewb_tensor_free(a); ewb_tensor_free(at); ewb_tensor_free(r); ewb_tensor_free(c);
}

static void groups_and_list(void) {
    int64_t s[2] = {2, 2}, s1[1] = {3};
    ewb_tensor *a = make(EWB_DTYPE_F32, 2, s, 1), *b = make(EWB_DTYPE_I64, 1, s1, 2), *c = make(EWB_DTYPE_BOOL, 1, s1, 0);
    ewb_tensor *r = NULL;
    OK(ewb_h5_write(path, "enc/layers.0/self_attn/in_proj_weight", a, 1));
    OK(ewb_h5_write(path, "/enc/layers.0/norm1.bias", b, 0));
    OK(ewb_h5_write(path, "top", c, 0));
    OK(ewb_h5_read(path, "/enc/layers.0/self_attn/in_proj_weight", &r));
    CHECK(same(a, r), "nested dataset");
    ewb_tensor_free(r); r = NULL;
    OK(ewb_h5_read(path, "enc/layers.0/norm1.bias", &r));
    CHECK(same(b, r), "second nested dataset");
    ewb_tensor_free(r); r = NULL;

    /* replacing a dataset with another shape and dtype keeps the others */
    OK(ewb_h5_write(path, "top", a, 0));
    OK(ewb_h5_read(path, "top", &r));
    CHECK(same(a, r), "replaced dataset");
    ewb_tensor_free(r); r = NULL;
    OK(ewb_h5_read(path, "enc/layers.0/norm1.bias", &r));
    CHECK(same(b, r), "other dataset survives a replace");
    ewb_tensor_free(r); r = NULL;

    char buf[256];
    OK(ewb_h5_list(path, buf, sizeof buf));
    const char *want = "enc/layers.0/norm1.bias\nenc/layers.0/self_attn/in_proj_weight\ntop\n";
    CHECK(!strcmp(buf, want), "list: got '%s' want '%s'", buf, want);
    char small[10];
    char needle[64];
    snprintf(needle, sizeof needle, "need %d bytes", (int)strlen(want) + 1);
    FAILS(ewb_h5_list(path, small, sizeof small), needle);
    FAILS(ewb_h5_list(path, NULL, 0), "too small");
    /* exactly big enough */
    char *exact = malloc(strlen(want) + 1);
    OK(ewb_h5_list(path, exact, (int64_t)strlen(want) + 1));
    CHECK(!strcmp(exact, want), "list with an exact buffer: '%s'", exact);
    free(exact);

    /* truncate = 1 starts a new file */
    OK(ewb_h5_write(path, "only", b, 1));
    OK(ewb_h5_list(path, buf, sizeof buf));
    CHECK(!strcmp(buf, "only\n"), "list after truncate: '%s'", buf);

    /* a group where a dataset is expected and the other way round */
    OK(ewb_h5_write(path, "g/x", b, 1));
    FAILS(ewb_h5_write(path, "g", b, 0), "is not a dataset");
    FAILS(ewb_h5_write(path, "g/x/y", b, 0), "is a dataset, not a group");
    FAILS(ewb_h5_read(path, "g", &r), "'g' is not a dataset");
    ewb_tensor_free(a); ewb_tensor_free(b); ewb_tensor_free(c);
}

static void write_file(const char *p, const void *data, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); exit(2); }
    fwrite(data, 1, n, f);
    fclose(f);
}

static void errors(void) {
    ewb_tensor *r = NULL;
    int64_t s[1] = {4096};
    ewb_tensor *a = make(EWB_DTYPE_F32, 1, s, 0);
    OK(ewb_h5_write(path, "grp/a", a, 1));

    FAILS(ewb_h5_read("/nonexistent/dir/x.h5", "a", &r), "cannot open '/nonexistent/dir/x.h5'");
    FAILS(ewb_h5_read("/nonexistent/dir/x.h5", "a", &r), "No such file");
    FAILS(ewb_h5_list("/nonexistent/x.h5", NULL, 0), "/nonexistent/x.h5");
    FAILS(ewb_h5_write("/nonexistent/dir/x.h5", "a", a, 1), "cannot create '/nonexistent/dir/x.h5'");
    FAILS(ewb_h5_read(path, "b", &r), "has no dataset 'b'");
    FAILS(ewb_h5_read(path, "grp/b", &r), "has no dataset 'grp/b'");
    FAILS(ewb_h5_read(path, "nogrp/deeper/b", &r), "no group nogrp");
    FAILS(ewb_h5_read(path, "", &r), "bad dataset name");
    FAILS(ewb_h5_read(path, "a//b", &r), "bad dataset name");
    FAILS(ewb_h5_write(path, "a/", a, 0), "bad dataset name");
    FAILS(ewb_h5_read(path, "b", &r), path);
    CHECK(r == NULL, "out stays NULL on error");

    /* a text file, an empty file, a directory */
    const char *text = "time,lead_I\n0,0.1\n";
    write_file(txt, text, strlen(text));
    FAILS(ewb_h5_read(txt, "a", &r), "is not an HDF5 file");
    FAILS(ewb_h5_list(txt, NULL, 0), "is not an HDF5 file");
    FAILS(ewb_h5_write(txt, "a", a, 0), "is not an HDF5 file"); /* never clobbers a non-HDF5 file */
    write_file(txt, "", 0);
    FAILS(ewb_h5_read(txt, "a", &r), "is not an HDF5 file");
    FAILS(ewb_h5_read("/tmp", "a", &r), "is a directory");

    /* a file cut in half */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *bytes = malloc(size);
    CHECK(fread(bytes, 1, size, f) == (size_t)size, "read back the file");
    fclose(f);
    CHECK(size > 16384, "file with 4096 floats is %ld bytes", size);
    write_file(path2, bytes, size / 2);
    FAILS(ewb_h5_read(path2, "grp/a", &r), "truncated or corrupt");
    FAILS(ewb_h5_read(path2, "grp/a", &r), path2);
    FAILS(ewb_h5_list(path2, NULL, 0), "truncated or corrupt");
    FAILS(ewb_h5_write(path2, "b", a, 0), "truncated or corrupt");
    /* cut to a few bytes: no signature left */
    write_file(path2, bytes, 5);
    FAILS(ewb_h5_read(path2, "grp/a", &r), "is not an HDF5 file");
    free(bytes);

    /* the intact file is still fine after all that */
    OK(ewb_h5_read(path, "grp/a", &r));
    CHECK(same(a, r), "intact file reads");
    ewb_tensor_free(r);
    r = NULL;

    /* freed tensor */
    ewb_tensor *d = make(EWB_DTYPE_F32, 1, s, 0);
    ewb_tensor_dispose(d);
    FAILS(ewb_h5_write(path, "d", d, 0), "freed");
    ewb_tensor_free(d);
    ewb_tensor_free(a);
}

int main(void) {
    snprintf(path, sizeof path, "/tmp/ewb_test_h5_%d.h5", (int)getpid());
    snprintf(path2, sizeof path2, "/tmp/ewb_test_h5_%d_cut.h5", (int)getpid());
    snprintf(txt, sizeof txt, "/tmp/ewb_test_h5_%d.txt", (int)getpid());
    roundtrips();
    groups_and_list();
    errors();
    unlink(path);
    unlink(path2);
    unlink(txt);
    return check_report();
}
