-- tests/test_import_code15.lua: data/import_code15.lua on two tiny shards in
-- CODE-15%'s layout (tracings (N, 4096, 12) f32, exam_id), written with
-- wb.h5, and an exams.csv: transposed signals, ids, metadata, the six
-- labels, skipped rows, batching across shard rows, the command line, and
-- errors for a bad CSV value and a wrongly shaped shard.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local I = dofile("data/import_code15.lua")
local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

wb.manual_seed(5)
local t1 = wb.randn(3, 4096, 12) -- exams 101, 205 and the padding row 0
local t2 = wb.randn(2, 4096, 12) -- exams 300 and 999 (999 is not in the CSV)
wb.h5.save(dir .. "/part0.hdf5", { tracings = t1, exam_id = wb.tensor({ 101, 205, 0 }, "i64") })
wb.h5.save(dir .. "/part1.hdf5", { tracings = t2, exam_id = wb.tensor({ 300, 999 }, "i32") })
local f = io.open(dir .. "/exams.csv", "w")
f:write("exam_id,age,is_male,nn_predicted_age,1dAVb,RBBB,LBBB,SB,ST,AF,patient_id,death,timey,normal_ecg,trace_file\n")
f:write("101,54,True,50.2,False,True,False,False,False,True,7001,False,3.1,False,exams_part0.hdf5\n")
f:write("205,77,False,80.0,True,False,False,False,False,False,7002,,,True,exams_part0.hdf5\n")
f:write("300,,,33.3,False,False,True,True,True,False,7001,False,1.0,False,exams_part1.hdf5\n")
f:write("400,30,True,31,False,False,False,False,False,False,7003,False,1.0,True,exams_part9.hdf5\n")
f:close()

local quiet = function() end
local total, skipped = I.run { csv = dir .. "/exams.csv", out = dir .. "/code15.h5", batch = 2, log = quiet,
  shards = { dir .. "/part0.hdf5", dir .. "/part1.hdf5" } }
T.ok(total == 3 and skipped == 2, "3 records imported, 2 shard rows skipped: " .. total .. ", " .. skipped)

local ds = wb.dataset.open(dir .. "/code15.h5")
T.ok(ds.n == 3 and ds.fs == 400 and ds.samples == 4096 and #ds.leads == 12 and ds.units == "V", tostring(ds))
T.ok(table.concat(ds.label_names, ",") == "1dAVb,RBBB,LBBB,SB,ST,AF", "label names")
T.ok(table.concat(ds:ids(1, 3), ",") == "101,205,300", "ids: " .. table.concat(ds:ids(1, 3), ","))
local x = ds:read(1, 3) -- (3, 12, 4096)
local want = wb.cat({ t1:narrow(1, 1, 2), t2:narrow(1, 1, 1) }, 1):transpose(2, 3):contiguous()
T.ok(x:size(2) == 12 and x:size(3) == 4096 and T.relerr(x, want) == 0, "signals transposed to (12, 4096), exact")
T.ok(x:get(1, 2, 10) == t1:get(1, 10, 2), "lead II of exam 101 at sample 10")
T.ok(table.concat(ds:labels(1, 3):totable(), "") == "010001" .. "100000" .. "001110", "labels: " .. table.concat(ds:labels(1, 3):totable(), ""))
T.ok(table.concat(ds:field("patient_id", 1, 3):totable(), ",") == "7001,7002,7001", "patient ids")
local age = ds:field("age", 1, 3):totable()
T.ok(age[1] == 54 and age[2] == 77 and age[3] ~= age[3], "ages (missing -> NaN)")
T.ok(table.concat(ds:field("sex", 1, 3):totable(), ",") == "1,0,-1", "sex from is_male (missing -> -1)")
ds:close()

-- the command line, with --limit
local host = arg[-1] or "build/ecgwb"
local cmd = string.format("%s data/import_code15.lua --csv %s/exams.csv --out %s/cli.h5 --limit 2 %s/part0.hdf5 %s/part1.hdf5 2>&1",
  host, dir, dir, dir, dir)
local p = io.popen(cmd)
local out = p:read("*a")
local ok = p:close()
T.ok(ok and out:find("wrote 2 records", 1, true), "command line: " .. out)
ds = wb.dataset.open(dir .. "/cli.h5")
T.ok(ds.n == 2 and table.concat(ds:ids(1, 2), ",") == "101,205", "--limit 2")
ds:close()
p = io.popen(host .. " data/import_code15.lua --out " .. dir .. "/x.h5 " .. dir .. "/part0.hdf5 2>&1")
out = p:read("*a")
p:close()
T.ok(out:find("import_code15: --csv exams.csv is required", 1, true), "missing --csv: " .. out)

-- errors
f = io.open(dir .. "/bad.csv", "w")
f:write("exam_id,age,is_male,1dAVb,RBBB,LBBB,SB,ST,AF,patient_id\n101,54,maybe,0,0,0,0,0,0,1\n")
f:close()
T.fails(function() I.run { csv = dir .. "/bad.csv", out = dir .. "/b.h5", log = quiet, shards = { dir .. "/part0.hdf5" } } end,
  "exam 101: is_male is 'maybe'")
wb.h5.save(dir .. "/wrong.hdf5", { tracings = wb.randn(2, 12, 4096), exam_id = wb.tensor({ 101, 205 }, "i64") })
T.fails(function() I.run { csv = dir .. "/exams.csv", out = dir .. "/b.h5", log = quiet, shards = { dir .. "/wrong.hdf5" } } end,
  "tracings must be (N, 4096, 12)")
T.fails(function() I.run { csv = dir .. "/exams.csv", out = dir .. "/b.h5", log = quiet, shards = { dir .. "/none.hdf5" } } end,
  "none.hdf5")

os.execute("rm -rf " .. dir)
T.done()
