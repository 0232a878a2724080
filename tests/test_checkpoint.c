/* test_checkpoint.c: core/checkpoint.c. CRC-32 against its published check
 * value; round trips of every dtype, 0-d and empty tensors and string
 * attributes (a large one too); copy = 1 snapshots; the atomic write leaves
 * no .tmp and a failed write keeps the old file; and damage: every single
 * flipped byte of a checkpoint either fails with a clear error or (when it
 * lands in unused bytes) loads the very same content, and every truncation
 * fails with a clear error. */
#define _GNU_SOURCE
#include "check.h"
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], path[300], tmp[320], damaged[320];

static ewb_tensor *make(int dtype, int ndim, const int64_t *shape, int k) {
    ewb_tensor *t = NULL;
    if (ewb_tensor_new(&t, dtype, ndim, shape)) { fprintf(stderr, "%s\n", ewb_last_error()); exit(2); }
    int64_t n = ewb_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        switch (dtype) {
        case EWB_DTYPE_F32: ((float *)ewb_tensor_data(t))[i] = (float)(0.37 * (double)(i - k) + 1e-3); break;
        case EWB_DTYPE_I32: ((int32_t *)ewb_tensor_data(t))[i] = (int32_t)(i * 5 - k); break;
        case EWB_DTYPE_I64: ((int64_t *)ewb_tensor_data(t))[i] = (int64_t)(i - k) * 10000000000ll; break;
        default: ((uint8_t *)ewb_tensor_data(t))[i] = (uint8_t)((i + k) % 3 == 0); break;
        }
    }
    return t;
}

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

/* same names, tensors and attributes (the order of names may differ) */
static int same_ckpt(const ewb_ckpt *a, const ewb_ckpt *b, const char *const *keys, int nkeys) {
    if (ewb_ckpt_count(a) != ewb_ckpt_count(b)) return 0;
    for (int i = 0; i < ewb_ckpt_count(a); i++) {
        int found = 0;
        for (int j = 0; j < ewb_ckpt_count(b) && !found; j++) {
            if (strcmp(ewb_ckpt_name(a, i), ewb_ckpt_name(b, j))) continue;
            ewb_tensor *x, *y;
            ewb_ckpt_tensor(a, i, &x);
            ewb_ckpt_tensor(b, j, &y);
            found = same(x, y);
            ewb_tensor_free(x);
            ewb_tensor_free(y);
        }
        if (!found) return 0;
    }
    for (int k = 0; k < nkeys; k++) {
        const char *x = ewb_ckpt_attr(a, keys[k]), *y = ewb_ckpt_attr(b, keys[k]);
        if (!x || !y || strcmp(x, y)) return 0;
    }
    return 1;
}

static char *slurp(const char *file, long *n) {
    FILE *f = fopen(file, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)*n + 1);
    if (fread(buf, 1, (size_t)*n, f) != (size_t)*n) { free(buf); buf = NULL; }
    fclose(f);
    return buf;
}
static void spit(const char *file, const char *buf, long n) {
    FILE *f = fopen(file, "wb");
    fwrite(buf, 1, (size_t)n, f);
    fclose(f);
}
static int exists(const char *file) { struct stat st; return stat(file, &st) == 0; }

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ewb_test_checkpoint_%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/a.h5", dir);
    snprintf(tmp, sizeof tmp, "%s/a.h5.tmp", dir);
    snprintf(damaged, sizeof damaged, "%s/damaged.h5", dir);

    /* CRC-32 check value of "123456789" (zlib, PNG) and chaining */
    CHECK(ewb_crc32(0, "123456789", 9) == 0xCBF43926u, "crc32 = %08x", ewb_crc32(0, "123456789", 9));
    CHECK(ewb_crc32(ewb_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u, "crc32 chained");
    CHECK(ewb_crc32(0, "", 0) == 0, "crc32 of nothing");

    /* round trip */
    int64_t s23[2] = {2, 3}, s4[1] = {4}, s0[1] = {0}, s5[3] = {5, 1, 2};
    ewb_tensor *w = make(EWB_DTYPE_F32, 2, s23, 0), *ids = make(EWB_DTYPE_I64, 1, s4, 1);
    ewb_tensor *i32 = make(EWB_DTYPE_I32, 3, s5, 2), *mask = make(EWB_DTYPE_BOOL, 1, s4, 0);
    ewb_tensor *scalar = make(EWB_DTYPE_F32, 0, NULL, 7), *empty = make(EWB_DTYPE_F32, 1, s0, 0);
    ewb_ckpt *ck = NULL, *back = NULL;
    OK(ewb_ckpt_new(&ck));
    OK(ewb_ckpt_add(ck, "model/layers.0.weight", w, 0));
    OK(ewb_ckpt_add(ck, "model/ids", ids, 1));
    OK(ewb_ckpt_add(ck, "optim/layers.0.weight/i32", i32, 0));
    OK(ewb_ckpt_add(ck, "mask", mask, 0));
    OK(ewb_ckpt_add(ck, "scalar", scalar, 0));
    OK(ewb_ckpt_add(ck, "empty", empty, 0));
    OK(ewb_ckpt_set_attr(ck, "config", "{\"lr\":0.001,\"name\":\"x\\\"y\"}"));
    OK(ewb_ckpt_set_attr(ck, "meta", "old"));
    OK(ewb_ckpt_set_attr(ck, "meta", "{\"step\":10}")); /* replaces */
    OK(ewb_ckpt_set_attr(ck, "blank", ""));
    FAILS(ewb_ckpt_add(ck, "mask", mask, 0), "'mask' is already in the checkpoint");
    FAILS(ewb_ckpt_add(ck, "/abs", mask, 0), "bad dataset name '/abs'");
    FAILS(ewb_ckpt_add(ck, "a//b", mask, 0), "bad dataset name");
    FAILS(ewb_ckpt_add(ck, "", mask, 0), "bad dataset name");
    FAILS(ewb_ckpt_add(ck, "x", NULL, 0), "ckpt_add");
    FAILS(ewb_ckpt_set_attr(ck, "checksum", "1"), "reserved");
    FAILS(ewb_ckpt_set_attr(ck, "format", "1"), "reserved");
    CHECK(ewb_ckpt_count(ck) == 6, "count %d", ewb_ckpt_count(ck));
    /* copy = 1 is a snapshot: a later in-place update does not reach it */
    ((int64_t *)ewb_tensor_data(ids))[0] = 42;
    OK(ewb_ckpt_write(ck, path));
    CHECK(exists(path) && !exists(tmp), "write leaves the file and no .tmp");
    OK(ewb_ckpt_verify(path));
    OK(ewb_ckpt_read(path, &back));
    const char *keys[] = {"config", "meta", "blank", "format"};
    CHECK(back && same_ckpt(ck, back, keys, 3), "round trip of tensors and attributes");
    CHECK(back && !strcmp(ewb_ckpt_attr(back, "format"), "ecgwb-checkpoint 1"), "format attribute");
    CHECK(back && ewb_ckpt_attr(back, "nope") == NULL, "absent attribute is NULL");
    CHECK(back && ewb_ckpt_attr(back, "checksum") == NULL, "checksum is not a text attribute");
    for (int i = 0; back && i < ewb_ckpt_count(back); i++) {
        if (strcmp(ewb_ckpt_name(back, i), "model/ids")) continue;
        ewb_tensor *t;
        OK(ewb_ckpt_tensor(back, i, &t));
        CHECK(((int64_t *)ewb_tensor_data(t))[0] == -10000000000ll, "copy=1 snapshot kept the old value");
        ewb_tensor_free(t);
    }
    CHECK(back && ewb_ckpt_name(back, 6) == NULL && ewb_ckpt_name(back, -1) == NULL, "name out of range");
    ewb_tensor *none = NULL;
    FAILS(ewb_ckpt_tensor(back, 6, &none), "index 6 out of range (6 tensors)");

    /* a 200 kB attribute (beyond HDF5's 64 kB compact attribute limit) */
    {
        ewb_ckpt *big = NULL, *big2 = NULL;
        char *text = malloc(200001);
        for (int i = 0; i < 200000; i++) text[i] = (char)('a' + i % 26);
        text[200000] = 0;
        OK(ewb_ckpt_new(&big));
        OK(ewb_ckpt_set_attr(big, "config", text));
        OK(ewb_ckpt_add(big, "x", w, 0));
        snprintf(damaged, sizeof damaged, "%s/big.h5", dir);
        OK(ewb_ckpt_write(big, damaged));
        OK(ewb_ckpt_read(damaged, &big2));
        CHECK(big2 && ewb_ckpt_attr(big2, "config") && !strcmp(ewb_ckpt_attr(big2, "config"), text), "200 kB attribute");
        ewb_ckpt_free(big);
        ewb_ckpt_free(big2);
        free(text);
        snprintf(damaged, sizeof damaged, "%s/damaged.h5", dir);
    }

    /* a failed write keeps the old file and leaves no .tmp: a name that is
       both a dataset and a group cannot be written */
    {
        ewb_ckpt *bad = NULL;
        OK(ewb_ckpt_new(&bad));
        OK(ewb_ckpt_add(bad, "a", w, 0));
        OK(ewb_ckpt_add(bad, "a/b", w, 0));
        FAILS(ewb_ckpt_write(bad, path), "ckpt_write");
        CHECK(!exists(tmp), "no .tmp after a failed write");
        OK(ewb_ckpt_verify(path));
        char nodir[400];
        snprintf(nodir, sizeof nodir, "%s/no/such/dir/c.h5", dir);
        FAILS(ewb_ckpt_write(bad, nodir), "cannot create");
        ewb_ckpt_free(bad);
    }

    /* errors for files that are not checkpoints */
    ewb_ckpt *x = NULL;
    char missing[320], plain[320];
    snprintf(missing, sizeof missing, "%s/missing.h5", dir);
    snprintf(plain, sizeof plain, "%s/plain.h5", dir);
    FAILS(ewb_ckpt_read(missing, &x), "cannot open");
    CHECK(x == NULL, "no result on error");
    FAILS(ewb_ckpt_read(dir, &x), "is a directory");
    OK(ewb_h5_write(plain, "weight", w, 1));
    FAILS(ewb_ckpt_read(plain, &x), "is not an ecgwb checkpoint");
    spit(plain, "hello\n", 6);
    FAILS(ewb_ckpt_read(plain, &x), "is not an HDF5 file");

    /* damage. The file, and the bytes of w's data inside it */
    long n = 0;
    char *orig = slurp(path, &n);
    CHECK(orig && n > 0, "read back the file");
    char wbytes[24];
    ewb_tensor_copy_to(w, wbytes, 24);
    char *at = orig ? memmem(orig, (size_t)n, wbytes, 24) : NULL;
    CHECK(at != NULL, "w's bytes are in the file");
    if (at) { /* a flip in the data: the checksum catches it */
        at[5] ^= 0x10;
        spit(damaged, orig, n);
        at[5] ^= 0x10;
        FAILS(ewb_ckpt_read(damaged, &x), "is corrupt: checksum mismatch");
        CHECK(x == NULL, "no result on checksum error");
    }
    /* every byte flipped in turn: a clear error, or the very same content */
    int errors = 0, unchanged = 0, bad = 0;
    for (long i = 0; orig && i < n; i++) {
        orig[i] ^= 0x5A;
        spit(damaged, orig, n);
        orig[i] ^= 0x5A;
        ewb_ckpt *d = NULL;
        ewb_clear_error();
        if (ewb_ckpt_read(damaged, &d) != 0) {
            if (strstr(ewb_last_error(), "ckpt_read") && strstr(ewb_last_error(), damaged)) errors++;
            else if (bad++ < 5) fprintf(stderr, "flip at %ld: unclear error '%s'\n", i, ewb_last_error());
        } else {
            if (same_ckpt(back, d, keys, 4)) unchanged++;
            else if (bad++ < 5) fprintf(stderr, "flip at %ld: loaded different content without an error\n", i);
        }
        ewb_ckpt_free(d);
    }
    fprintf(stderr, "byte flips over %ld bytes: %d clear errors, %d in unused bytes (same content), %d bad\n", n,
            errors, unchanged, bad);
    CHECK(bad == 0 && errors > 0, "every flip is an error or harmless (%d bad)", bad);
    /* every truncation */
    int tbad = 0;
    for (long len = 0; orig && len < n; len += (len < 64 ? 1 : 13)) {
        spit(damaged, orig, len);
        ewb_ckpt *d = NULL;
        ewb_clear_error();
        int rc = ewb_ckpt_read(damaged, &d);
        if (rc == 0 || !strstr(ewb_last_error(), damaged)) {
            if (tbad++ < 5) fprintf(stderr, "truncated to %ld of %ld bytes: rc=%d '%s'\n", len, n, rc, ewb_last_error());
        }
        ewb_ckpt_free(d);
    }
    CHECK(tbad == 0, "every truncation is a clear error (%d not)", tbad);
    spit(damaged, orig, n / 2);
    FAILS(ewb_ckpt_read(damaged, &x), "truncated");
    free(orig);

    ewb_ckpt_free(ck);
    ewb_ckpt_free(back);
    ewb_tensor_free(w); ewb_tensor_free(ids); ewb_tensor_free(i32);
    ewb_tensor_free(mask); ewb_tensor_free(scalar); ewb_tensor_free(empty);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return check_report();
}
