#!/bin/sh
# tests/bench/run.sh: `make bench`. Measures the machine's sgemm peak
# (sgemm_peak.c on oneDNN), runs the ecgwb cases (bench.lua on the host) and
# the same cases in PyTorch (bench_torch.py, Debian's python3-torch), and
# prints one table: GFLOP/s of each side (median over rounds and repeats,
# with the spread), the ratio ecgwb/torch and the share of the sgemm peak.
# Both sides run with OMP_NUM_THREADS threads (2 unless set) and
# OMP_WAIT_POLICY (passive unless set: on a shared machine spinning OpenMP
# threads stall whenever the other one is descheduled).
# Throughput cases (RATE lines: the ECG encoder training step in ECGs/s, GPT
# decoding with the KV cache in tokens/s) get a second table.
#   BUILD=build sh tests/bench/run.sh
#   BENCH_ROUNDS=3: alternate the two sides 3 times (the machine is shared: noisy)
#   BENCH_ONLY=linear,encoder_step  BENCH_REPEATS=7  BENCH_WARMUP=2  (passed on)
BUILD=${BUILD:-build}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PY=${BENCH_PYTHON:-/usr/bin/python3}
ROUNDS=${BENCH_ROUNDS:-1}
DIR=$(dirname "$0")
OUT=$BUILD/bench
mkdir -p "$OUT"

[ -x "$BUILD/ecgwb" ] || { echo "bench: $BUILD/ecgwb is missing; run make first" >&2; exit 1; }
${CC:-cc} -O2 -fopenmp -o "$OUT/sgemm_peak" "$DIR/sgemm_peak.c" -ldnnl || { echo "bench: cannot build sgemm_peak" >&2; exit 1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: OMP_NUM_THREADS=$OMP_NUM_THREADS OMP_WAIT_POLICY=$OMP_WAIT_POLICY on both sides"
awk -v n="$(nproc)" '$1 > 0.5 * n { printf "WARNING: load average %s on %d cores: other work shares the CPUs; trust ratios more than GFLOP/s and %%pk\n", $1, n }' /proc/loadavg

# the peak is measured before and after the cases and the higher one kept,
# so that a burst of load from other users does not lower the yardstick
"$OUT/sgemm_peak" > "$OUT/peak.txt" || { echo "bench: sgemm_peak failed" >&2; exit 1; }

TORCH_WHY=""
if ! [ -x "$PY" ]; then
    TORCH_WHY="no $PY"
elif ! "$PY" -c "import torch" > "$OUT/torch_import.txt" 2>&1; then
    TORCH_WHY="$PY cannot import torch ($(tail -n 1 "$OUT/torch_import.txt")); install python3-torch (make deps-reference)"
fi

# rounds alternate the two sides, so that both see the same spells of load
rm -f "$OUT"/ecgwb.*.txt "$OUT"/torch.*.txt
r=1
while [ $r -le "$ROUNDS" ]; do
    "$BUILD/ecgwb" "$DIR/bench.lua" > "$OUT/ecgwb.$r.txt" 2>&1 || echo "bench: bench.lua failed: $(tail -n 3 "$OUT/ecgwb.$r.txt")"
    if [ -z "$TORCH_WHY" ]; then
        "$PY" "$DIR/bench_torch.py" > "$OUT/torch.$r.txt" 2>&1 || TORCH_WHY="bench_torch.py failed: $(tail -n 1 "$OUT/torch.$r.txt")"
    fi
    r=$((r + 1))
done
grep '^INFO' "$OUT/ecgwb.1.txt" | sed 's/^INFO /ecgwb: /'
if [ -z "$TORCH_WHY" ]; then
    grep '^INFO' "$OUT/torch.1.txt" | sed 's/^INFO /torch: /'
    grep -q '^INFO blas .*openblas' "$OUT/torch.1.txt" || echo "WARNING: torch is not using OpenBLAS (install libopenblas0-pthread); its matmuls will be far slower"
else
    rm -f "$OUT"/torch.*.txt
    echo "torch column empty: $TORCH_WHY"
fi
"$OUT/sgemm_peak" >> "$OUT/peak.txt" || { echo "bench: sgemm_peak failed" >&2; exit 1; }
PEAK=$(awk '$2 > p { p = $2 } END { print p }' "$OUT/peak.txt")
echo "sgemm peak (dnnl_sgemm, square 512..2048, best of reps; before, after): $(awk '{ printf "%s%s %s %s", sep, $2, $3, $4; sep = ", " }' "$OUT/peak.txt") -> $PEAK GFLOP/s"
echo "rounds: $ROUNDS (each: all ecgwb cases, then all torch cases)"
echo

# per side and case: GFLOP/s of the median over rounds of each round's
# median time; spread = best and worst single repeat; ratio spread = the
# per-round ratios
awk -v peak="$PEAK" '
    function med(list, k,    a, m, i, j, x) {
        m = split(list, a, " ")
        for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    {
        side = FILENAME ~ /ecgwb\.[0-9]+\.txt$/ ? "e" : "t"
        match(FILENAME, /[0-9]+\.txt$/); round = substr(FILENAME, RSTART, RLENGTH - 4)
    }
    $1 == "RESULT" {
        c = $2
        if (!(c in seen)) { seen[c] = 1; order[++n] = c }
        gf[c] = $3
        k = side SUBSEP c
        meds[k] = meds[k] " " $4
        if (!(k in lo) || $5 < lo[k]) lo[k] = $5
        if (!(k in hi) || $6 > hi[k]) hi[k] = $6
        rt[side, c, round] = $4
    }
    $1 == "SKIP" && side == "e" { c = $2; if (!(c in seen)) { seen[c] = 1; order[++n] = c }; skip[c] = $0 }
    END {
        printf "%-13s %6s  %-21s %-21s %-17s %8s %8s\n", "case", "GFLOP", "ecgwb GFLOP/s", "torch GFLOP/s", "ecgwb/torch", "ecgwb%pk", "torch%pk"
        for (i = 1; i <= n; i++) {
            c = order[i]; ke = "e" SUBSEP c; kt = "t" SUBSEP c
            he = ke in meds; ht = kt in meds
            if (he) e = gf[c] / med(meds[ke])
            if (ht) t = gf[c] / med(meds[kt])
            es = he ? sprintf("%5.1f (%5.1f..%5.1f)", e, gf[c] / hi[ke], gf[c] / lo[ke]) : "-"
            ts = ht ? sprintf("%5.1f (%5.1f..%5.1f)", t, gf[c] / hi[kt], gf[c] / lo[kt]) : "-"
            r = "-"
            if (he && ht) {
                rlo = 1e30; rhi = 0
                for (j = 1; j <= 1000; j++) {
                    if (!(("e", c, j) in rt) || !(("t", c, j) in rt)) continue
                    x = rt["t", c, j] / rt["e", c, j]
                    if (x < rlo) rlo = x
                    if (x > rhi) rhi = x
                }
                r = rhi > 0 && rlo != rhi ? sprintf("%5.2fx (%.2f..%.2f)", e / t, rlo, rhi) : sprintf("%5.2fx", e / t)
            }
            ep = he && peak > 0 ? sprintf("%7.1f%%", 100 * e / peak) : "-"
            tp = ht && peak > 0 ? sprintf("%7.1f%%", 100 * t / peak) : "-"
            printf "%-13s %6.1f  %-21s %-21s %-17s %8s %8s\n", c, gf[c], es, ts, r, ep, tp
        }
        for (i = 1; i <= n; i++) if (order[i] in skip) print "ecgwb " skip[order[i]]
    }' "$OUT"/ecgwb.*.txt $(ls "$OUT"/torch.*.txt 2>/dev/null)
echo
# throughput cases: items/s of the median time over rounds; ratio spread =
# the per-round ratios
awk '
    function med(list,    a, m, i, j, x) {
        m = split(list, a, " ")
        for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    {
        side = FILENAME ~ /ecgwb\.[0-9]+\.txt$/ ? "e" : "t"
        match(FILENAME, /[0-9]+\.txt$/); round = substr(FILENAME, RSTART, RLENGTH - 4)
    }
    $1 == "RATE" {
        c = $2
        if (!(c in seen)) { seen[c] = 1; order[++n] = c }
        items[c] = $3; unit[c] = $4
        k = side SUBSEP c
        meds[k] = meds[k] " " $5
        if (!(k in lo) || $6 < lo[k]) lo[k] = $6
        if (!(k in hi) || $7 > hi[k]) hi[k] = $7
        rt[side, c, round] = $5
    }
    END {
        if (n == 0) exit
        printf "%-17s %-9s %-23s %-23s %-17s\n", "case", "unit", "ecgwb", "torch", "ecgwb/torch"
        for (i = 1; i <= n; i++) {
            c = order[i]; ke = "e" SUBSEP c; kt = "t" SUBSEP c
            he = ke in meds; ht = kt in meds
            if (he) e = items[c] / med(meds[ke])
            if (ht) t = items[c] / med(meds[kt])
            es = he ? sprintf("%7.1f (%6.1f..%6.1f)", e, items[c] / hi[ke], items[c] / lo[ke]) : "-"
            ts = ht ? sprintf("%7.1f (%6.1f..%6.1f)", t, items[c] / hi[kt], items[c] / lo[kt]) : "-"
            r = "-"
            if (he && ht) {
                rlo = 1e30; rhi = 0
                for (j = 1; j <= 1000; j++) {
                    if (!(("e", c, j) in rt) || !(("t", c, j) in rt)) continue
                    x = rt["t", c, j] / rt["e", c, j]
                    if (x < rlo) rlo = x
                    if (x > rhi) rhi = x
                }
                r = rhi > 0 && rlo != rhi ? sprintf("%5.2fx (%.2f..%.2f)", e / t, rlo, rhi) : sprintf("%5.2fx", e / t)
            }
            printf "%-17s %-9s %-23s %-23s %-17s\n", c, unit[c], es, ts, r
        }
    }' "$OUT"/ecgwb.*.txt $(ls "$OUT"/torch.*.txt 2>/dev/null)
echo
"$BUILD/ecgwb" "$DIR/sim.lua" || echo "bench: sim.lua failed"
echo
"$BUILD/ecgwb" "$DIR/loader.lua" || echo "bench: loader.lua failed"
echo
echo "GFLOP/s: median time over rounds and repeats (worst..best repeat in brackets); ecgwb/torch: ratio of"
echo "the medians (lowest..highest per-round ratio); %pk: share of the sgemm peak."
echo "FLOPs count matmuls only (forward 2MNK, backward twice that); see tests/bench/bench.lua."
echo "Throughput table: items/s of the median time (worst..best repeat); ecg_encoder_step = encoder \"small\""
echo "training step, batch 16 x 12 x 2500, AdamW; gpt_decode = GPT small (6 x 384) greedy, 64-token prompt,"
echo "128 new tokens with the KV cache, batch 1 (see tests/bench/bench.lua)."
