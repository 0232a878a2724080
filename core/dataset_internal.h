/* dataset_internal.h: what core/dataset.c offers the rest of core/ (the batch
 * loader) and the tests beyond the public API: reading signals into a
 * caller's buffer with the decompression outside the HDF5 lock.
 *
 * For a read-only dataset whose `signals` have the default layout (one record
 * per chunk; no filter, shuffle, deflate, or shuffle + deflate; f32 or int16
 * little-endian) a record is read as its stored chunk bytes (H5Dread_chunk)
 * under the lock, and inflated, unshuffled and converted to f32 by the
 * calling thread without it, so several readers decompress in parallel.
 * Any other layout, or a chunk whose filter mask says a filter was skipped,
 * is read with H5Dread under the lock: the result is the same either way.
 * ECGWB_H5_DIRECT=0 in the environment (read when a dataset is opened) turns
 * the direct path off, for comparisons. No HDF5 types here. */
#ifndef ECGWB_DATASET_INTERNAL_H
#define ECGWB_DATASET_INTERNAL_H
#include "ecgwb.h"
#include <stddef.h>

/* a reader's buffers, reused across calls; zero-initialise, free with _free */
typedef struct ewb_chunk_scratch {
    unsigned char *raw, *a, *b;   /* the stored chunk; two work buffers */
    size_t rawcap, abcap;
    struct libdeflate_decompressor *inflater; /* made at the first inflate */
} ewb_chunk_scratch;
void ewb_chunk_scratch_free(ewb_chunk_scratch *s);

/* records [start, start+count) into out (count, leads, samples) f32, as
   ewb_dataset_read gives them */
int ewb_dataset_read_into(ewb_dataset *ds, int64_t start, int64_t count, float *out, ewb_chunk_scratch *s);

/* the stored (still compressed) chunk of one record into s->raw, *nraw bytes.
   Returns 0, 1 when the record cannot take the direct path (read it with
   ewb_dataset_read), or -1 with an error. Takes the HDF5 lock. */
int ewb_dataset_read_chunk(ewb_dataset *ds, int64_t record, ewb_chunk_scratch *s, size_t *nraw);
/* decodes the stored chunk raw[0..nraw) of `record` into out (leads, samples)
   f32, without the lock; a corrupt or truncated chunk is an error naming the
   file and the record. raw may be s->raw. */
int ewb_dataset_decode_chunk(const ewb_dataset *ds, int64_t record, const unsigned char *raw, size_t nraw, float *out,
                             ewb_chunk_scratch *s);
/* records decoded by the direct path so far in this process (tests) */
int64_t ewb_dataset_direct_records(void);

#endif
