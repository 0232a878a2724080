-- tests/test_import_wfdb.lua: data/import_wfdb.lua on a folder of records
-- written here with wb.wfdb.write (format 16): one at the target rate and
-- too long (cropped), one at twice the rate in uV with its leads in another
-- order, other case and an extra lead (picked by name, converted to mV,
-- resampled, padded), one in a subfolder with an invalid sample (-> 0) and
-- PTB-style comments, and a multi-segment record whose segments must not be
-- imported on their own. Checks signals, ids, reports, age/sex from the
-- comments, defaults from the first record, the command line, --skip-bad,
-- and errors naming the record for a missing lead, a missing signal file,
-- a non-voltage unit, a malformed header and an empty folder.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local I = dofile("data/import_wfdb.lua")
local dir = os.tmpname()
os.remove(dir)
local root = dir .. "/recs"
os.execute("mkdir -p " .. root .. "/a " .. root .. "/b/sub " .. root .. "/m")
local quiet = function() end

local function write(file, text)
  local f = assert(io.open(file, "wb"))
  f:write(text)
  f:close()
end

-- (leads, n) with values k/1000 (exact in mV through gain 1000)
local function sig(seed, leads, n)
  local t = {}
  for l = 1, leads do
    local r = {}
    for s = 1, n do r[s] = ((seed * 7919 + l * 104729 + s * 31) % 4001 - 2000) / 1000 end
    t[l] = r
  end
  return wb.tensor(t)
end

-- a/r1: 250 Hz, I II V1, 600 samples (2.4 s), Challenge-style comments
local x1 = sig(1, 3, 600)
wb.wfdb.write(root .. "/a/r1", { signal = x1, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" },
  comments = { "Age: 63", "Sex: Female", "Dx: 426783006" } })
-- a/r2: 500 Hz, leads ii V1 i V5 in uV (gain 1 per uV), 800 samples; lead i is a 5 Hz sine
local sv = {}
for k = 1, 800 do sv[k] = math.floor(1000 * math.sin(2 * math.pi * 5 * (k - 1) / 500) + 0.5) end
local sine = wb.tensor(sv) -- uV, integers
local other = sig(2, 3, 800):mul(1000)                         -- uV, integers
local x2 = wb.stack({ other[1], other[2], sine, other[3] }, 1) -- ii V1 i V5
wb.wfdb.write(root .. "/a/r2", { signal = x2, fs = 500, gain = 1, units = "uV", sig_name = { "ii", "V1", "i", "V5" } })
-- b/sub/r3: 250 Hz, 300 samples, one invalid sample, PTB-style comments and an MIT-style one
local x3 = sig(3, 3, 300)
x3:set(2, 17, 0 / 0)
wb.wfdb.write(root .. "/b/sub/r3", { signal = x3, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" },
  comments = { "69 M 1085 1629 x1", "age: 81", "sex: male" } })
-- m/ms: two segments of 250 samples at 250 Hz
local s1, s2 = sig(4, 3, 250), sig(5, 3, 250)
wb.wfdb.write(root .. "/m/seg1", { signal = s1, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" } })
wb.wfdb.write(root .. "/m/seg2", { signal = s2, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" } })
write(root .. "/m/ms.hea", "ms/2 3 250 500\nseg1 250\nseg2 250\n# two segments\n")

T.ok(table.concat(I.find(root), ","):gsub(root .. "/", "") == "a/r1,a/r2,b/sub/r3,m/ms,m/seg1,m/seg2", "find: sorted, recursive")

-- explicit rate, length and leads; batches of 2
local logs = {}
local n, skipped, invalid = I.run { dir = root .. "/", out = dir .. "/w.h5", fs = 250, seconds = 2, leads = { "I", "II", "V1" },
  batch = 2, log = function(s) logs[#logs + 1] = s end }
T.ok(n == 4 and skipped == 0 and invalid == 1, string.format("4 records, 0 skipped, 1 invalid sample: %d %d %d", n, skipped, invalid))
T.ok(logs[#logs]:find("wrote 4 records (3 leads, 500 samples at 250 Hz)", 1, true), logs[#logs])
local ds = wb.dataset.open(dir .. "/w.h5")
T.ok(ds.n == 4 and ds.fs == 250 and ds.samples == 500 and table.concat(ds.leads, ",") == "I,II,V1" and ds.units == "mV"
  and ds.nlabels == 0, tostring(ds))
T.ok(table.concat(ds:ids(1, 4), ",") == "a/r1,a/r2,b/sub/r3,m/ms", "ids: the paths under the folder")
local x = ds:read(1, 4)
T.ok(T.relerr(x[1], x1:narrow(2, 1, 500)) == 0, "r1: cropped to 500 samples, exact")
-- r2: leads picked by name (i, ii, V1), uV -> mV, resampled 500 -> 250 Hz (400 samples), zero-padded
local r2mv = wb.stack({ sine, other[1], other[2] }, 1):div(1000)
local r2want = wb.signal.resample(r2mv, 500, 250)
T.ok(r2want:size(2) == 400 and T.relerr(x[2]:narrow(2, 1, 400), r2want) < 1e-6, "r2: picked, in mV, resampled")
T.ok(x[2]:narrow(2, 401, 100):abs():max():item() == 0, "r2: padded with zeros after 400 samples")
local t250 = wb.arange(0, 400):div(250):mul(2 * math.pi * 5):sin()
local mid = x[2]:narrow(1, 1, 1):narrow(2, 51, 300):view(300)
T.ok((mid - t250:narrow(1, 51, 300)):abs():max():item() < 2e-3, "r2: lead I is the 5 Hz sine at 250 Hz")
local w3 = wb.cat({ x3:masked_fill(x3:ne(x3), 0), wb.zeros(3, 200) }, 2)
T.ok(T.relerr(x[3], w3) == 0 and x[3]:get(2, 17) == 0, "r3: invalid sample -> 0, padded")
T.ok(T.relerr(x[4], wb.cat({ s1, s2 }, 2)) == 0, "ms: both segments, in order")
local reps = ds:reports(1, 4)
T.ok(reps[1] == "Age: 63\nSex: Female\nDx: 426783006" and reps[2] == "" and reps[3] == "69 M 1085 1629 x1\nage: 81\nsex: male"
  and reps[4] == "two segments", "reports = the comments")
local age = ds:field("age", 1, 4):totable()
T.ok(age[1] == 63 and age[2] ~= age[2] and age[3] == 81 and age[4] ~= age[4], "age from comments")
T.ok(table.concat(ds:field("sex", 1, 4):totable(), ",") == "0,-1,1,-1", "sex from comments")
T.ok(table.concat(ds:field("patient_id", 1, 4):totable(), ",") == "-1,-1,-1,-1" and
  table.concat(ds:field("split", 1, 4):totable(), ",") == "0,0,0,0", "no patient ids or splits")
ds:close()

-- defaults: the first record's rate, length (600 samples) and leads
I.run { dir = root, out = dir .. "/d.h5", log = quiet }
ds = wb.dataset.open(dir .. "/d.h5")
T.ok(ds.n == 4 and ds.fs == 250 and ds.samples == 600 and table.concat(ds.leads, ",") == "I,II,V1", "defaults: " .. tostring(ds))
T.ok(T.relerr(ds:read(1), x1) == 0, "r1 whole")
ds:close()

-- the command line
local host = arg[-1] or "build/ecgwb"
local function shell(cmd) -- exit status 0?, output
  local ph = io.popen(cmd .. " 2>&1; echo \"exit=$?\"")
  local out = ph:read("*a")
  ph:close()
  return out:match("exit=(%d+)%s*$") == "0", out
end
local ok, out = shell(string.format("%s data/import_wfdb.lua --dir %s --out %s/c.h5 --fs 100 --seconds 3 --leads 'V1, I' --limit 3",
  host, root, dir))
T.ok(ok and out:find("wrote 3 records (2 leads, 300 samples at 100 Hz)", 1, true), "command line: " .. out)
ds = wb.dataset.open(dir .. "/c.h5")
T.ok(ds.n == 3 and ds.fs == 100 and ds.samples == 300 and table.concat(ds.leads, ",") == "V1,I", tostring(ds))
local c1 = wb.signal.resample(wb.stack({ x1[3], x1[1] }, 1), 250, 100) -- 240 samples
T.ok(T.relerr(ds:read(1):narrow(2, 1, 240), c1) < 1e-6 and ds:read(1):narrow(2, 241, 60):abs():max():item() == 0,
  "command line: V1, I at 100 Hz, padded")
ds:close()
ok, out = shell(host .. " data/import_wfdb.lua --out " .. dir .. "/x.h5")
T.ok(not ok and out:find("import_wfdb: --dir DIR is required", 1, true), "missing --dir: " .. out)
ok, out = shell(host .. " data/import_wfdb.lua --dir " .. root .. " --out " .. dir .. "/x.h5 --fs fast")
T.ok(not ok and out:find("--fs needs a number, got 'fast'", 1, true), "bad --fs: " .. out)

-- errors name the record
T.fails(function() I.run { dir = root, out = dir .. "/e.h5", leads = { "I", "V6" }, log = quiet } end,
  "import_wfdb: record '" .. root .. "/a/r1': no lead 'V6' (it has I II V1)")
os.execute("mkdir -p " .. dir .. "/e1 " .. dir .. "/e2 " .. dir .. "/e3 " .. dir .. "/empty")
wb.wfdb.write(dir .. "/e1/ok", { signal = x1, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" } })
wb.wfdb.write(dir .. "/e1/nodat", { signal = x1, fs = 250, gain = 1000, sig_name = { "I", "II", "V1" } })
os.remove(dir .. "/e1/nodat.dat")
T.fails(function() I.run { dir = dir .. "/e1", out = dir .. "/e.h5", log = quiet } end,
  "import_wfdb: record '" .. dir .. "/e1/nodat': wfdb: cannot open " .. dir .. "/e1/nodat.dat")
-- --skip-bad: the bad record is logged and skipped
logs = {}
n, skipped = I.run { dir = dir .. "/e1", out = dir .. "/e.h5", skip_bad = true, log = function(s) logs[#logs + 1] = s end }
T.ok(n == 1 and skipped == 1 and table.concat(logs, "\n"):find("skipped: import_wfdb: record '" .. dir .. "/e1/nodat'", 1, true),
  "--skip-bad: " .. table.concat(logs, " | "))
ds = wb.dataset.open(dir .. "/e.h5")
T.ok(ds.n == 1 and ds:ids(1)[1] == "ok", "--skip-bad keeps the good record")
ds:close()
wb.wfdb.write(dir .. "/e2/bp", { signal = x1, fs = 250, gain = 1000, sig_name = { "I", "ABP", "V1" }, units = { "mV", "mmHg", "mV" } })
T.fails(function() I.run { dir = dir .. "/e2", out = dir .. "/e.h5", log = quiet } end,
  "record '" .. dir .. "/e2/bp': lead 'ABP' is in 'mmHg', not a voltage (mV, uV or V)")
write(dir .. "/e3/bad.hea", "bad 2 250 100\nbad.dat 16 1000/mV 16 0 0 0 0 I\n")
T.fails(function() I.run { dir = dir .. "/e3", out = dir .. "/e.h5", log = quiet } end,
  "import_wfdb: wfdb: " .. dir .. "/e3/bad.hea:2: header ends after 1 of 2 signal lines")
write(dir .. "/e3/bad.hea", "bad 1 250 10\nbad.dat 16 1000/mV 16 0 0 0 0 I\n# Sex: perhaps\n")
write(dir .. "/e3/bad.dat", string.rep("\0", 20))
T.fails(function() I.run { dir = dir .. "/e3", out = dir .. "/e.h5", log = quiet } end,
  "record '" .. dir .. "/e3/bad': comment 'Sex: perhaps': sex is not Male/Female")
T.fails(function() I.run { dir = dir .. "/empty", out = dir .. "/e.h5", log = quiet } end,
  "import_wfdb: no WFDB records (.hea files) under '" .. dir .. "/empty'")

os.execute("rm -rf " .. dir)
T.done()
