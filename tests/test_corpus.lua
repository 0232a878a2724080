-- test_corpus.lua: wb.corpus.load returns exactly the records of a split
-- (signals resampled as wb.signal.resample does one record, labels, reports,
-- demographics, truth), wb.corpus.subset picks rows, and bad options fail
-- with a message.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"

local file = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_test_corpus.h5"
os.remove(file)
wb.sim.make_corpus { out = file, n = 70, fs = 250, seconds = 2, seed = 3, batch = 16 }
local ds = wb.dataset.open(file)
local split = ds:field("split", 1, ds.n):totable()
local hr = wb.h5.read(file, "truth/hr")

local te = wb.corpus.load { path = file, split = "test", fs = 100 }
local want = {}
for i = 1, ds.n do if split[i] == 3 then want[#want + 1] = i end end
T.ok(#want > 0 and te.n == #want, "test split size " .. te.n .. " vs " .. #want)
T.ok(te.x:size(1) == te.n and te.x:size(2) == 12 and te.x:size(3) == 200 and te.fs == 100, "shape (n, 12, 200) at 100 Hz")
for k, i in ipairs(want) do
  T.ok(te.index[k] == i, "index of row " .. k)
  T.close(te.x:select(1, k), wb.signal.resample(ds:read(i), 250, 100), 1e-6, "signal of record " .. i)
  T.close(te.labels:select(1, k), ds:labels(i, i):view(-1):to("f32"), 0, "labels of record " .. i)
  T.ok(te.reports[k] == ds:reports(i, i)[1] and te.ids[k] == ds:ids(i, i)[1], "report and id of record " .. i)
  T.ok(math.abs(te.truth.hr:get(k) - hr:get(i)) == 0, "truth hr of record " .. i)
  T.ok(te.age:get(k) == ds:field("age", i, i):get(1) and te.sex:get(k) == ds:field("sex", i, i):get(1), "age/sex " .. i)
end

local all = wb.corpus.load { path = file, seconds = 1 }
T.ok(all.n == 70 and all.samples == 250 and all.fs == 250, "all records, first second, stored rate")
T.close(all.x:select(1, 70), ds:read(70):narrow(2, 1, 250), 0, "first second of the last record")
local tr = wb.corpus.load { path = file, split = 1, max = 5 }
T.ok(tr.n == 5, "max = 5 gives 5 records")

local s = wb.corpus.subset(te, { 2, 1 })
T.close(s.x:select(1, 1), te.x:select(1, 2), 0, "subset row 1 is row 2")
T.ok(s.reports[2] == te.reports[1] and s.index[1] == te.index[2] and s.truth.hr:get(1) == te.truth.hr:get(2), "subset strings and truth")
ds:close()

T.fails(function() wb.corpus.load { path = file, split = "dev" } end, "unknown split 'dev'")
T.fails(function() wb.corpus.load { path = file, sekonds = 1 } end, "unknown option 'sekonds'")
T.fails(function() wb.corpus.load { path = file, split = 9 } end, "no records in split 9")
T.fails(function() wb.corpus.load { path = file, seconds = 5 } end, "5 s asked")
T.fails(function() wb.corpus.load { path = file .. ".missing" } end, "missing")
os.remove(file)
T.done()
