#!/bin/sh
# tests/test_dataset_interop.sh: an ECG dataset written by ecgwb, opened in
# h5py (Debian's /usr/bin/python3), shows plain arrays and str values with
# the layout's names, shapes, dtypes, chunks and filters; and a dataset
# written by h5py in the same layout (data/README.md) opens in ecgwb with the
# same values. Skips (exit 0) with a notice only when h5py is not installed.
set -e
ECGWB=${ECGWB:-build/ecgwb}
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import h5py, numpy" 2>/dev/null; then
    echo "SKIP test_dataset_interop: /usr/bin/python3 with h5py is not available"
    exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# 1. ecgwb writes (values are exact in f32: k/8), h5py checks
"$ECGWB" -e "
local wb = require 'ecgwb'
local ds = wb.dataset.create('$dir/a.h5', { fs = 500, samples = 6, labels = { 'AF', 'RBBB', 'Überleitungsstörung' },
  label_sets = { { name = 'superclass', labels = { 'CD', 'NORM' } } } })
local x = wb.arange(0, 3 * 12 * 6):view(3, 12, 6):mul(0.125)
ds:append { signals = x:narrow(1, 1, 2), labels = { { 'AF' }, { 'RBBB', 'Überleitungsstörung' } },
  ids = { 'ecg-1', 'ЭКГ-2' }, reports = { 'sinus rhythm', 'bloc de branche droit, 日本語' },
  patient_id = { 11, 12 }, age = { 61, 0 / 0 }, sex = { 1, 0 }, split = { 3, 7 },
  label_sets = { superclass = { { 'NORM' }, { 'CD' } } } }
ds:append { signals = x[3] }
ds:close()
"
"$PY" - "$dir/a.h5" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
s = f["signals"]
assert s.dtype == np.float32 and s.shape == (3, 12, 6), (s.dtype, s.shape)
assert np.array_equal(s[()], np.arange(3 * 12 * 6, dtype=np.float32).reshape(3, 12, 6) * 0.125)
assert s.chunks == (1, 12, 6) and s.compression == "gzip" and s.shuffle and s.maxshape == (None, 12, 6), (s.chunks, s.compression, s.shuffle, s.maxshape)
assert s.attrs["fs"] == 500.0
assert list(s.attrs["lead_names"]) == ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"], s.attrs["lead_names"]
assert s.attrs["units"] == "mV", s.attrs["units"]
assert list(f["id"].asstr()[()]) == ["ecg-1", "ЭКГ-2", "2"], f["id"].asstr()[()]
assert list(f["reports"].asstr()[()]) == ["sinus rhythm", "bloc de branche droit, 日本語", ""]
assert f["reports"][0] == "sinus rhythm".encode()  # h5py's plain bytes view of a str dataset
assert list(f["label_names"].asstr()[()]) == ["AF", "RBBB", "Überleitungsstörung"]
assert f["labels"].dtype == np.uint8 and np.array_equal(f["labels"][()], [[1, 0, 0], [0, 1, 1], [0, 0, 0]])
assert f["patient_id"].dtype == np.int64 and list(f["patient_id"][()]) == [11, 12, -1]
age = f["age"][()]
assert age.dtype == np.float32 and age[0] == 61 and np.isnan(age[1]) and np.isnan(age[2])
assert f["sex"].dtype == np.int8 and list(f["sex"][()]) == [1, 0, -1]
assert f["split"].dtype == np.int32 and list(f["split"][()]) == [3, 7, 0]
assert list(f.attrs["label_sets"]) == ["superclass"], f.attrs["label_sets"]
assert list(f["label_names_superclass"].asstr()[()]) == ["CD", "NORM"]
assert f["labels_superclass"].dtype == np.uint8 and np.array_equal(f["labels_superclass"][()], [[0, 1], [1, 0], [0, 0]])
for name in ["id", "reports", "label_names", "label_names_superclass"]:
    t = f[name].id.get_type()
    assert t.is_variable_str() and t.get_cset() == h5py.h5t.CSET_UTF8, name
print("h5py reads ecgwb's dataset: ok")
PYEOF

# 2. h5py writes the layout (int16 + gain, str ids, attributes on the file), ecgwb checks
"$PY" - "$dir/b.h5" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    x = (np.arange(2 * 3 * 5).reshape(2, 3, 5) - 10).astype(np.int16)
    f.create_dataset("signals", data=x, chunks=(1, 3, 5), maxshape=(None, 3, 5), shuffle=True, compression="gzip")
    f["signals"].attrs["gain"] = 4.0
    f.attrs["fs"] = 360
    f.attrs["lead_names"] = ["MLII", "V1", "V5"]
    f.attrs["units"] = "mV"
    f["id"] = ["100", "101ä"]
    f["patient_id"] = np.array([5, 6], np.int64)
    f["age"] = np.array([69, 75], np.float32)
    f["sex"] = np.array([1, 0], np.int8)
    f["split"] = np.array([0, 1], np.int32)
    f["labels"] = np.array([[0, 1], [1, 1]], np.uint8)
    f["label_names"] = ["N", "V"]
    f["reports"] = ["normal beats", "ventricular ectopy, bigeminy – ☃"]
PYEOF
"$ECGWB" -e "
local wb = require 'ecgwb'
local T = dofile('tests/check.lua')
local ds = wb.dataset.open('$dir/b.h5')
T.ok(ds.n == 2 and ds.fs == 360 and ds.samples == 5 and ds.int16 and ds.gain == 4, 'h5py dataset: ' .. tostring(ds))
T.ok(table.concat(ds.leads, ',') == 'MLII,V1,V5', 'lead names from file attributes')
T.ok(T.relerr(ds:read(1, 2), wb.arange(0, 30):view(2, 3, 5):sub(10):div(4)) == 0, 'int16 signals / gain')
T.ok(table.concat(ds:ids(1, 2), '|') == '100|101ä', 'str ids')
T.ok(table.concat(ds:reports(1, 2), '|') == 'normal beats|ventricular ectopy, bigeminy – ☃', 'str reports')
T.ok(table.concat(ds.label_names, ',') == 'N,V' and table.concat(ds:labels(1, 2):totable(), '') == '0111', 'labels')
T.ok(table.concat(ds:field('age', 1, 2):totable(), ',') == '69,75' and table.concat(ds:field('sex', 1, 2):totable(), ',') == '1,0', 'age, sex')
T.ok(ds:field('patient_id', 2):get(1) == 6 and ds:field('split', 2):get(1) == 1, 'patient_id, split')
ds:close()
T.done()
"
echo "ecgwb reads h5py's dataset: ok"
