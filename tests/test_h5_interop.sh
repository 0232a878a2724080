#!/bin/sh
# tests/test_h5_interop.sh: HDF5 files written by ecgwb read in h5py with the
# same values, and files written by h5py read in ecgwb (f64 -> f32, int16 and
# uint8 -> i64, numpy bool -> bool, scalars, empty arrays). Skips (exit 0)
# with a notice only when /usr/bin/python3 has no h5py.
set -e
ECGWB=${ECGWB:-build/ecgwb}
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import h5py, numpy" 2>/dev/null; then
    echo "SKIP test_h5_interop: /usr/bin/python3 with h5py is not available"
    exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# 1. ecgwb writes, h5py checks
"$ECGWB" -e "
local wb = require 'ecgwb'
wb.h5.save('$dir/a.h5', {
  ['f/x'] = wb.tensor({ { -0.5, -0.25, 0 }, { 0.25, 0.5, 0.75 } }),
  ['i32'] = wb.tensor({ -7, 2147483647 }, 'i32'),
  ['i64'] = wb.tensor({ -3, 5 }, 'i64'),
  ['b'] = wb.tensor({ true, false, true }, 'bool'),
  ['s'] = wb.tensor(3.5),
  ['e'] = wb.zeros(0, 2),
})
-- an i64 beyond 2^53 cannot come from a Lua number: set it through the FFI
local t = wb.zeros(1):to('i64')
wb.ffi.cast('int64_t*', t:data_ptr())[0] = 9007199254740993LL
wb.h5.write('$dir/a.h5', 'big', t)
"
"$PY" - "$dir/a.h5" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
def same(name, want, dtype):
    got = f[name][()]
    assert got.dtype == dtype, (name, got.dtype, dtype)
    assert np.shape(got) == np.shape(want), (name, np.shape(got), np.shape(want))
    assert np.array_equal(got, want), (name, got, want)
same("f/x", np.arange(6, dtype=np.float32).reshape(2, 3) * 0.25 - 0.5, np.float32)
same("i32", np.array([-7, 2147483647], np.int32), np.int32)
same("i64", np.array([-3, 5], np.int64), np.int64)
same("b", np.array([True, False, True]), np.bool_)
same("s", np.float32(3.5), np.float32)
same("e", np.zeros((0, 2), np.float32), np.float32)
same("big", np.array([9007199254740993], np.int64), np.int64)
names = []
f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert sorted(names) == ["b", "big", "e", "f/x", "i32", "i64", "s"], names
print("h5py reads ecgwb's file: ok")
PYEOF

# 2. h5py writes, ecgwb checks
"$PY" - "$dir/b.h5" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "w") as f:
    f["f64"] = np.array([[1.5, -2.25], [1e-3, 3e5]], np.float64)
    f["f32"] = np.array([0.1, 0.2], np.float32)
    f["deep/er/i16"] = np.array([-300, 300], np.int16)
    f["u8"] = np.array([0, 255], np.uint8)
    f["i32"] = np.array([-5, 6], np.int32)
    f["bool"] = np.array([True, False, False, True])
    f["scalar"] = np.int64(42)
    f["empty"] = np.zeros((3, 0), np.float32)
    f["text"] = "a string"
    f.create_group("empty_group")
PYEOF
"$ECGWB" -e "
local wb = require 'ecgwb'
local T = dofile('tests/check.lua')
local file = '$dir/b.h5'
T.fails(function() wb.h5.load(file) end, [[dataset 'text' has an unsupported string type]])
local d = {}
for _, name in ipairs(wb.h5.list(file)) do if name ~= 'text' then d[name] = wb.h5.read(file, name) end end
local function vals(t) return table.concat(t:totable(), ' ') end
T.ok(d.f64:type() == 'f32' and vals(d.f64) == table.concat({1.5, -2.25, tonumber(wb.ffi.new('float', 1e-3)), 3e5}, ' '), 'f64 as f32: ' .. vals(d.f64))
T.ok(table.concat(d.f64:size(), ',') == '2,2', 'f64 shape')
T.close(d.f32, wb.tensor({ 0.1, 0.2 }), 0, 'f32')
T.ok(d['deep/er/i16']:type() == 'i64' and vals(d['deep/er/i16']) == '-300 300', 'i16 as i64')
T.ok(d.u8:type() == 'i64' and vals(d.u8) == '0 255', 'u8 as i64')
T.ok(d.i32:type() == 'i32' and vals(d.i32) == '-5 6', 'i32')
T.ok(d.bool:type() == 'bool' and vals(d.bool) == '1 0 0 1', 'bool: ' .. d.bool:type())
T.ok(d.scalar:dim() == 0 and d.scalar:type() == 'i64' and d.scalar:item() == 42, 'scalar')
T.ok(d.empty:numel() == 0 and table.concat(d.empty:size(), ',') == '3,0', 'empty')
T.fails(function() wb.h5.read(file, 'text') end, 'unsupported string type')
T.fails(function() wb.h5.read(file, 'empty_group') end, 'is not a dataset')
T.done()
"
echo "ecgwb reads h5py's file: ok"
