-- tests/test_dataset.lua: lua/ecgwb/dataset.lua. Create / append (batches and
-- single records, labels by name or as a tensor) / reopen / read round trips,
-- negative indices, the batch iterator, record(), named label sets, strings
-- with non-ASCII UTF-8, read_csv, and error messages.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local file = os.tmpname() .. ".h5"

local function same(a, b) return a:size(1) == b:size(1) and T.relerr(a, b) == 0 end

wb.manual_seed(3)
local x = wb.randn(5, 3, 20)
local ds = wb.dataset.create(file, { fs = 250, leads = { "I", "II", "V1" }, samples = 20, labels = { "AF", "NORM", "Überleitung" } })
T.ok(ds.n == 0 and ds.fs == 250 and #ds.leads == 3 and ds.leads[3] == "V1" and ds.nlabels == 3, "created: " .. tostring(ds))
ds:append { signals = x:narrow(1, 1, 4), labels = { { "AF" }, {}, { "NORM", "Überleitung" }, { "AF", "NORM" } },
  ids = { "a", 17, "ß", "d" }, reports = { "Vorhofflimmern", "", "sinus rhythm, 正常", "AF" },
  patient_id = { 1, 2, 3, 4 }, age = { 50, 60.5, 0 / 0, 80 }, sex = { 1, 0, -1, 1 }, split = { 1, 1, 2, 10 } }
ds:append { signals = x[5], labels = wb.tensor({ 0, 1, 0 }, "i32"):view(1, 3), id = "e", report = "rapport é" }
T.ok(ds.n == 5, "5 records after two appends, got " .. ds.n)
ds:close()
T.fails(function() ds:read(1) end, "the dataset is closed")

ds = wb.dataset.open(file)
T.ok(ds.n == 5 and ds.samples == 20 and ds.units == "mV" and ds.label_names[3] == "Überleitung", "reopened: " .. tostring(ds))
T.ok(same(ds:read(1, 5), x), "all records exact")
T.ok(same(ds:read(2, 3), x:narrow(1, 2, 2)), "slice 2..3 exact")
local r5 = ds:read(-1)
T.ok(r5:dim() == 2 and same(r5, x[5]), "record -1 is the last, as (leads, samples)")
T.ok(same(ds:read(-2, -1), x:narrow(1, 4, 2)), "records -2..-1")
T.ok(table.concat(ds:labels(1, 5):totable(), "") == "100000011110010", "labels: " .. table.concat(ds:labels(1, 5):totable(), ""))
T.ok(table.concat(ds:ids(1, 5), "|") == "a|17|ß|d|e", "ids: " .. table.concat(ds:ids(1, 5), "|"))
T.ok(table.concat(ds:reports(3, 5), "|") == "sinus rhythm, 正常|AF|rapport é", "reports: " .. table.concat(ds:reports(3, 5), "|"))
local age = ds:field("age", 1, 5):totable()
T.ok(age[1] == 50 and age[2] == 60.5 and age[3] ~= age[3] and age[5] ~= age[5], "ages with NaN for unknown")
T.ok(table.concat(ds:field("sex", 1, 5):totable(), ",") == "1,0,-1,1,-1", "sex")
T.ok(table.concat(ds:field("split", 1, 5):totable(), ",") == "1,1,2,10,0", "split")
T.ok(ds:field("patient_id", 4):type() == "i64" and ds:field("patient_id", 4):get(1) == 4, "patient_id")
local rec = ds:record(3)
T.ok(rec.id == "ß" and rec.report == "sinus rhythm, 正常" and rec.sex == -1 and rec.split == 2 and
  table.concat(rec.labels, ",") == "NORM,Überleitung" and same(rec.signal, x[3]), "record(3)")

-- the iterator visits every record once, in order
local seen, firsts = 0, {}
for b in ds:batches(2, { strings = true }) do
  T.ok(same(b.signals, x:narrow(1, b.first, b.last - b.first + 1)), "batch " .. b.first .. ".." .. b.last)
  T.ok(#b.ids == b.signals:size(1) and b.labels:size(1) == b.signals:size(1), "batch fields")
  seen = seen + b.signals:size(1)
  firsts[#firsts + 1] = b.first
end
T.ok(seen == 5 and table.concat(firsts, ",") == "1,3,5", "batches of 2: " .. table.concat(firsts, ","))
local nb = 0
for _ in ds:batches(2, { drop_last = true }) do nb = nb + 1 end
T.ok(nb == 2, "drop_last drops the short batch")

-- errors
T.fails(function() ds:read(6) end, "records 6..6 are out of range (1..5)")
T.fails(function() ds:read(0) end, "out of range")
T.fails(function() ds:append { signals = x } end, "is open read-only")
T.fails(function() ds:field("weight", 1) end, "unknown field 'weight'")
ds:close()
ds = wb.dataset.open(file, "a")
T.fails(function() ds:append { signals = wb.randn(2, 3, 21) } end, "signals must be f32 (n, 3, 20), got f32[2,3,21]")
T.fails(function() ds:append { signals = wb.randn(2, 3, 20), labels = { { "XYZ" }, {} } } end, "has no label 'XYZ' (record 1)")
T.fails(function() ds:append { signals = wb.randn(2, 3, 20), ids = { "a" } } end, "ids has 1 entries for 2 records")
T.fails(function() ds:append { signals = wb.randn(2, 3, 20), age = { 1, 2, 3 } } end, "age has 3 values for 2 records")
T.fails(function() ds:append { signals = wb.randn(2, 3, 20), sex = { 0, 3 } } end, "sex of record 1 of the batch is 3")
T.fails(function() ds:append { signals = wb.randn(2, 3, 20):to("i32") } end, "got i32[2,3,20]")
T.ok(ds.n == 5, "failed appends add nothing")
ds:close()
T.fails(function() wb.dataset.open("/nonexistent/x.h5") end, "cannot open '/nonexistent/x.h5'")
T.fails(function() wb.dataset.create(file, { fs = 500 }) end, "option samples is required")
T.fails(function() wb.dataset.create(file, { fs = 500, samples = 10, colour = 1 }) end, "unknown option 'colour'")
T.fails(function() wb.dataset.create(file, { fs = 500, samples = 10, dtype = "f64" }) end, "dtype must be 'f32' or 'int16'")
wb.h5.save(file, { x = wb.zeros(2) })
T.fails(function() wb.dataset.open(file) end, "has no dataset 'signals'")

-- int16 storage through Lua
ds = wb.dataset.create(file, { fs = 500, leads = 1, samples = 4, dtype = "int16", gain = 200 })
ds:append { signals = wb.tensor({ { { 0.005, -1, 2.5, 163.835 } } }) }
ds:close()
ds = wb.dataset.open(file)
T.ok(ds.int16 and ds.gain == 200, "int16 dataset")
T.close(ds:read(1), wb.tensor({ { 0.005, -1, 2.5, 163.835 } }), 1e-6, "int16 values back")
ds:close()

-- named label sets: created, appended (names or tensors, absent = zeros), reopened, read, in record() and batches
ds = wb.dataset.create(file, { fs = 100, leads = 2, samples = 3, labels = { "A", "B" },
  label_sets = { { name = "super", labels = { "MI", "NORM", "STTC" } }, { name = "rhythm_1", labels = { "SR", "AFIB" } } } })
T.ok(table.concat(ds.label_sets, ",") == "super,rhythm_1" and ds.set_label_names.super[3] == "STTC", "sets after create")
ds:append { signals = wb.zeros(3, 2, 3), labels = { { "A" }, {}, { "B" } },
  label_sets = { super = { { "MI", "STTC" }, { "NORM" }, {} }, rhythm_1 = wb.tensor({ { 1, 0 }, { 0, 0 }, { 1, 1 } }, "i32") } }
ds:append { signals = wb.zeros(2, 3), label_sets = { super = { "NORM" } } } -- one record; rhythm_1 absent -> zeros
T.fails(function() ds:append { signals = wb.zeros(2, 3), label_sets = { form = { {} } } } end, "has no label set 'form'")
T.fails(function() ds:append { signals = wb.zeros(1, 2, 3), label_sets = { super = { { "AF" } } } } end,
  "has no label 'AF' in set 'super' (record 1)")
T.fails(function() ds:append { signals = wb.zeros(1, 2, 3), label_sets = { super = wb.zeros(1, 2) } } end,
  "labels_super must be (1, 3), got f32[1,2]")
T.ok(ds.n == 4, "failed appends add nothing to any set")
ds:close()
ds = wb.dataset.open(file)
T.ok(table.concat(ds.label_sets, ",") == "super,rhythm_1" and table.concat(ds.set_label_names.rhythm_1, ",") == "SR,AFIB",
  "sets after reopen: " .. tostring(ds))
T.ok(table.concat(ds:labels(1, 4, "super"):totable(), "") == "101" .. "010" .. "000" .. "010", "set super")
T.ok(table.concat(ds:labels(1, 4, "rhythm_1"):totable(), "") == "10" .. "00" .. "11" .. "00", "set rhythm_1")
T.ok(table.concat(ds:labels(1, 4):totable(), "") == "10000100", "main labels unchanged")
T.ok(ds:labels(2, 3, "super"):size(1) == 2 and ds:labels(3, 3, "rhythm_1"):type() == "bool", "set slice, bool")
local r1 = ds:record(1)
T.ok(table.concat(r1.label_sets.super, ",") == "MI,STTC" and table.concat(r1.label_sets.rhythm_1, ",") == "SR", "record(1) sets")
local bsets = 0
for b in ds:batches(3, { label_sets = true }) do bsets = bsets + b.label_sets.super:size(1) end
T.ok(bsets == 4, "batches carry the label sets")
T.fails(function() ds:labels(1, 1, "form") end, "has no label set 'form' (it has: super, rhythm_1)")
ds:close()
T.fails(function() wb.dataset.create(file, { fs = 1, samples = 2, label_sets = { { name = "a b", labels = { "x" } } } }) end,
  "name 'a b' must be 1..200 letters, digits or '_'")
T.fails(function() wb.dataset.create(file, { fs = 1, samples = 2, label_sets = { { name = "a", labels = {} } } }) end,
  "label set 'a' needs nlabels >= 1")
T.fails(function() wb.dataset.create(file, { fs = 1, samples = 2,
  label_sets = { { name = "a", labels = { "x" } }, { name = "a", labels = { "y" } } } }) end, "label set 'a' is given twice")

-- CSV: quotes, "" escapes, commas and newlines inside quotes, CRLF, empty fields
local csv = os.tmpname()
local f = io.open(csv, "wb")
f:write('id,report,age\r\n1,"sinus, normal",63\r\n2,"line one\nline ""two""",\r\n3,plain é,40')
f:close()
local header, rows = wb.dataset.read_csv(csv)
T.ok(table.concat(header, "|") == "id|report|age", "csv header")
T.ok(#rows == 3 and rows[1].report == "sinus, normal" and rows[2].report == 'line one\nline "two"' and rows[2].age == ""
  and rows[3].report == "plain é" and rows[3].age == "40", "csv rows")
f = io.open(csv, "wb")
f:write('a,b\n1,2,3\n')
f:close()
T.fails(function() wb.dataset.read_csv(csv) end, "record 2 has 3 fields, the header has 2")
os.remove(csv)
os.remove(file)
T.done()
