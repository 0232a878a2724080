#!/bin/sh
# tests/bench/run.sh: `make bench`. Measures the machine's sgemm peak
# (sgemm_peak.c on oneDNN), runs the ecgwb cases (bench.lua on the host) and
# the same cases in PyTorch (bench_torch.py, Debian's python3-torch), and
# prints one table: GFLOP/s of each side (median over repeats, with the
# min..max spread), the ratio ecgwb/torch and the share of the sgemm peak.
# Both sides run with OMP_NUM_THREADS threads (2 unless set).
#   BUILD=build sh tests/bench/run.sh
#   BENCH_ONLY=linear,encoder_step  BENCH_REPEATS=7  BENCH_WARMUP=2  (passed on)
BUILD=${BUILD:-build}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=${BENCH_PYTHON:-/usr/bin/python3}
DIR=$(dirname "$0")
OUT=$BUILD/bench
mkdir -p "$OUT"

[ -x "$BUILD/ecgwb" ] || { echo "bench: $BUILD/ecgwb is missing; run make first" >&2; exit 1; }
${CC:-cc} -O2 -fopenmp -o "$OUT/sgemm_peak" "$DIR/sgemm_peak.c" -ldnnl || { echo "bench: cannot build sgemm_peak" >&2; exit 1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: OMP_NUM_THREADS=$OMP_NUM_THREADS on both sides"

# the peak is measured before and after the cases and the higher one kept,
# so that a burst of load from other users does not lower the yardstick
"$OUT/sgemm_peak" > "$OUT/peak.txt" || { echo "bench: sgemm_peak failed" >&2; exit 1; }

"$BUILD/ecgwb" "$DIR/bench.lua" > "$OUT/ecgwb.txt" 2>&1 || echo "bench: bench.lua failed: $(tail -n 3 "$OUT/ecgwb.txt")"
grep '^INFO' "$OUT/ecgwb.txt" | sed 's/^INFO /ecgwb: /'

TORCH_WHY=""
if ! [ -x "$PY" ]; then
    TORCH_WHY="no $PY"
elif ! "$PY" -c "import torch" > "$OUT/torch_import.txt" 2>&1; then
    TORCH_WHY="$PY cannot import torch ($(tail -n 1 "$OUT/torch_import.txt")); install python3-torch (make deps-reference)"
else
    "$PY" "$DIR/bench_torch.py" > "$OUT/torch.txt" 2>&1 || TORCH_WHY="bench_torch.py failed: $(tail -n 1 "$OUT/torch.txt")"
fi
if [ -z "$TORCH_WHY" ]; then
    grep '^INFO' "$OUT/torch.txt" | sed 's/^INFO /torch: /'
    grep -q '^INFO blas .*openblas' "$OUT/torch.txt" || echo "WARNING: torch is not using OpenBLAS (install libopenblas0-pthread); its matmuls will be far slower"
else
    : > "$OUT/torch.txt"
    echo "torch column empty: $TORCH_WHY"
fi
"$OUT/sgemm_peak" >> "$OUT/peak.txt" || { echo "bench: sgemm_peak failed" >&2; exit 1; }
PEAK=$(awk '$2 > p { p = $2 } END { print p }' "$OUT/peak.txt")
echo "sgemm peak (dnnl_sgemm, square 512..2048, best of reps; before, after): $(awk '{ printf "%s%s %s %s", sep, $2, $3, $4; sep = ", " }' "$OUT/peak.txt") -> $PEAK GFLOP/s"
echo

awk -v peak="$PEAK" '
    FNR == 1 { side++ }
    $1 == "RESULT" {
        name = $2
        if (!(name in seen)) { seen[name] = 1; order[++n] = name }
        gf[name] = $3
        if (side == 1) { e[name] = $3 / $4; elo[name] = $3 / $6; ehi[name] = $3 / $5 }
        else           { t[name] = $3 / $4; tlo[name] = $3 / $6; thi[name] = $3 / $5 }
    }
    $1 == "SKIP" && side == 1 { name = $2; if (!(name in seen)) { seen[name] = 1; order[++n] = name }; skip[name] = $0 }
    END {
        printf "%-13s %7s  %-22s %-22s %7s %8s %8s\n", "case", "GFLOP", "ecgwb GFLOP/s", "torch GFLOP/s", "ratio", "ecgwb%pk", "torch%pk"
        for (i = 1; i <= n; i++) {
            c = order[i]
            es = (c in e) ? sprintf("%6.1f (%5.1f..%5.1f)", e[c], elo[c], ehi[c]) : "-"
            ts = (c in t) ? sprintf("%6.1f (%5.1f..%5.1f)", t[c], tlo[c], thi[c]) : "-"
            r = (c in e && c in t) ? sprintf("%6.2fx", e[c] / t[c]) : "-"
            ep = (c in e && peak > 0) ? sprintf("%7.1f%%", 100 * e[c] / peak) : "-"
            tp = (c in t && peak > 0) ? sprintf("%7.1f%%", 100 * t[c] / peak) : "-"
            printf "%-13s %7.1f  %-22s %-22s %7s %8s %8s\n", c, gf[c], es, ts, r, ep, tp
        }
        for (i = 1; i <= n; i++) if (order[i] in skip) print "ecgwb " skip[order[i]]
    }' "$OUT/ecgwb.txt" "$OUT/torch.txt"
echo
echo "GFLOP/s: median over repeats (min..max in brackets); ratio = ecgwb/torch; %pk = share of the sgemm peak."
echo "FLOPs count matmuls only (forward 2MNK, backward twice that); see tests/bench/bench.lua."
