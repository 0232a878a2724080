-- test_wfdb.lua: wb.wfdb from Lua: read against rdsamp and the header's
-- calibration, rdann against rdann's output, write/read round trips in
-- formats 16 and 212, annotation round trips, option and input errors.
-- The reference data must be present ($ECGWB_SHARED/data/wfdb): without it
-- the test fails.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local shared = os.getenv("ECGWB_SHARED")
if not shared or shared == "" then shared = "../shared" end
local dir = shared .. "/data/wfdb/"
local probe = io.open(dir .. "100.hea")
if not probe then
  io.stderr:write("test_wfdb.lua: FAIL: the reference WFDB data is missing (" .. dir ..
    "100.hea); set ECGWB_SHARED to the folder holding data/wfdb\n")
  os.exit(1)
end
probe:close()
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)

-- test01_00s: digital against rdsamp; physical = digital / gain
local d = wb.wfdb.read(dir .. "test01_00s", { physical = false })
T.ok(d.signal.dtype == "i32" and d.signal:size(1) == 4 and d.signal:size(2) == 4000, "shape (4, 4000) i32")
T.ok(d.fs == 500 and d.nsamp == 4000 and d.sig_name[3] == "ECG 3" and d.units[1] == "mV" and d.gain[1] == 100, "fields")
T.ok(d.checksum_ok[1] == true and d.checksum_ok[4] == true, "checksums")
local rows, bad = 0, 0
local dt = d.signal:totable() -- flat, row-major
for line in io.lines(dir .. "test01_00s.rdsamp.txt") do
  rows = rows + 1
  local c = 0
  for v in line:gmatch("%S+") do
    c = c + 1
    if dt[(c - 1) * 4000 + rows] ~= tonumber(v) then bad = bad + 1 end
  end
end
T.ok(rows == 4000 and bad == 0, "rdsamp: " .. rows .. " rows, " .. bad .. " samples differ")
local p = wb.wfdb.read(dir .. "test01_00s")
T.ok(p.signal.dtype == "f32", "physical is f32")
T.close(p.signal, d.signal:to("f32") / 100, 1e-6, "physical = (digital - 0) / 100")
local part = wb.wfdb.read(dir .. "test01_00s", { physical = false, from = 11, to = 20 })
T.ok(part.signal:size(2) == 10 and part.signal[2][1] == dt[4000 + 11], "from/to are 1-based, inclusive")

-- record 100: 212, CRLF header with comments
local r = wb.wfdb.read(dir .. "100", { from = 1, to = 360 })
T.ok(r.fs == 360 and r.nsamp == 650000 and r.sig_name[1] == "MLII" and r.sig_name[2] == "V5", "100 header")
T.ok(r.comments[2] == "69 M 1085 1629 x1", "comments: " .. tostring(r.comments[2]))
T.close(r.signal[1][1], (995 - 1024) / 200, 1e-6, "first MLII sample in mV")
local h = wb.wfdb.header(dir .. "100")
T.ok(h.signals[1].fmt == 212 and h.signals[1].initval == 995 and h.signals[2].checksum == 20052 and h.signal == nil,
  "header() has no samples")

-- 100.atr against rdann
local anns = wb.wfdb.rdann(dir .. "100", "atr")
T.ok(#anns == 2274 and anns.samples:numel() == 2274, "2274 annotations")
local i, diff = 0, 0
for line in io.lines(dir .. "100.atr.rdann.txt") do
  i = i + 1
  local main, aux = line:match("^([^\t]*)\t?(.*)$")
  local _, samp, sym, sub, chan, num = main:match("(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)%s+(%S+)")
  local a = anns[i]
  if not a or a.sample ~= tonumber(samp) or a.symbol ~= sym or a.subtype ~= tonumber(sub) or a.chan ~= tonumber(chan)
    or a.num ~= tonumber(num) or a.aux ~= aux then diff = diff + 1 end
end
T.ok(i == 2274 and diff == 0, "rdann: " .. diff .. " differ")
T.ok(anns.samples[1] == 18 and anns[1].aux == "(N", "first: rhythm (N at 18")
wb.wfdb.wrann(tmp .. "/copy", "atr", anns)
local a1 = io.open(dir .. "100.atr", "rb"):read("*a")
local a2 = io.open(tmp .. "/copy.atr", "rb"):read("*a")
T.ok(a1 == a2, "wrann(rdann(100.atr)) is byte-identical")

-- write/read round trips: digital exact (16 and 212, odd length, invalid samples)
for _, fmt in ipairs { 16, 212 } do
  local lim = fmt == 16 and 32767 or 2047
  local x = wb.randint(-lim, lim + 1, { 3, 333 }):to("i32")
  x[1][1] = wb.wfdb.INVALID
  x[3][333] = wb.wfdb.INVALID
  x[2][5] = lim
  x[2][6] = -lim
  local rec = tmp .. "/rt" .. fmt
  wb.wfdb.write(rec, { signal = x, fs = 250, fmt = fmt, sig_name = { "I", "II", "V1" }, gain = { 100, 200, 400 },
    baseline = 7, units = "mV", comments = { "sex: F", "age: 40" } })
  local y = wb.wfdb.read(rec, { physical = false })
  T.ok(y.signal.dtype == "i32" and y.signal:size(2) == 333, "shape")
  T.close(y.signal:to("f32"), x:to("f32"), 0, "format " .. fmt .. " digital round trip")
  T.ok(y.sig_name[3] == "V1" and y.gain[3] == 400 and y.baseline[2] == 7 and y.comments[2] == "age: 40" and
    y.fmt[1] == fmt and y.checksum_ok[2] == true, "format " .. fmt .. " header round trip")
  local z = wb.wfdb.read(rec)
  T.ok(z.signal[1][1] ~= z.signal[1][1], "invalid -> NaN")
  T.close(z.signal[2][5], (lim - 7) / 200, 1e-6, "physical = (d - baseline) / gain")
end
-- physical input
local x = wb.tensor { { 0.5, -1.0, 0 / 0, 2.0, 0.25 } }
wb.wfdb.write(tmp .. "/ph", { signal = x, fs = 100, fmt = 212, gain = 200 })
local y = wb.wfdb.read(tmp .. "/ph").signal
T.ok(y[1][3] ~= y[1][3] and y[1][1] == 0.5 and y[1][5] == 0.25, "physical round trip with NaN")

-- annotations written from Lua: symbols, gaps > 1023 samples (SKIP), aux
wb.wfdb.wrann(tmp .. "/ph", "test", {
  { sample = 3, symbol = "N" }, { sample = 100000, symbol = "V", subtype = 2, chan = 1, num = 3 },
  { sample = 100001, symbol = "+", aux = "(AFIB" } })
local b = wb.wfdb.rdann(tmp .. "/ph", "test")
T.ok(#b == 3 and b[2].sample == 100000 and b[2].symbol == "V" and b[2].subtype == 2 and b[2].chan == 1 and b[2].num == 3
  and b[3].aux == "(AFIB" and b[3].chan == 0 and b[3].num == 0, "annotation round trip")

-- errors
T.fails(function() wb.wfdb.read(tmp .. "/nothing") end, "nothing.hea")
T.fails(function() wb.wfdb.read(dir .. "100", { phys = true }) end, "wfdb.read: unknown option 'phys'")
T.fails(function() wb.wfdb.read(dir .. "100", { from = 0 }) end, "need 1 <= from <= to")
T.fails(function() wb.wfdb.write(tmp .. "/e", { signal = wb.tensor { { 20 } }, fs = 100, fmt = 212 }) end,
  "outside format 212's range")
T.fails(function() wb.wfdb.write(tmp .. "/e", { signal = x, fs = 100, fmt = 8 }) end, "format 8 cannot be written")
T.fails(function() wb.wfdb.write(tmp .. "/e", { signal = x }) end, "fs (Hz) is required")
T.fails(function() wb.wfdb.wrann(tmp .. "/e", "atr", { { sample = 1, symbol = "ZZ" } }) end, "unknown symbol 'ZZ'")
local f = io.open(tmp .. "/bad.hea", "w")
f:write("bad 1 250 10\nbad.dat 16x 200\n")
f:close()
T.fails(function() wb.wfdb.header(tmp .. "/bad") end, "bad.hea:2: bad format field '16x'")

os.execute("rm -rf " .. tmp)
T.done()
