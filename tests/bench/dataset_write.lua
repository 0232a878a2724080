-- tests/bench/dataset_write.lua: how fast wb.dataset appends and reads records.
--   build/ecgwb tests/bench/dataset_write.lua [N=10000] [batch=64] [compression=4] [dtype=f32] [file]
-- Writes N simulated 12 x 5000 records (500 Hz, 10 s; 64 distinct ECGs from
-- wb.sim, reused) in batches, then reads them back in batches, and prints
-- records/s, MB/s of raw f32 and the file size.
local wb = require "ecgwb"
local N = tonumber(arg[1]) or 10000
local B = tonumber(arg[2]) or 64
local level = tonumber(arg[3]) or 4
local dtype = arg[4] or "f32"
local file = arg[5] or os.tmpname() .. ".h5"

local recs = {}
for i = 1, B do recs[i] = wb.sim.ecg { fs = 500, seconds = 10, hr = 50 + i, seed = 1, index = i }:view(1, 12, 5000) end
local x = wb.cat(recs, 1) -- (B, 12, 5000)
local ids, reports, age = {}, {}, {}
for i = 1, B do ids[i] = "rec" .. i; reports[i] = "sinus rhythm " .. i; age[i] = 20 + i end

local ds = wb.dataset.create(file, { fs = 500, samples = 5000, labels = { "AF", "RBBB" }, compression = level, dtype = dtype })
local t0 = wb.now()
local written = 0
while written < N do
  local n = math.min(B, N - written)
  if n < B then -- the last, short batch
    x = x:narrow(1, 1, n)
    for i = n + 1, B do ids[i], reports[i], age[i] = nil, nil, nil end
  end
  ds:append { signals = x, ids = ids, reports = reports, age = age }
  written = written + n
end
ds:close()
local tw = wb.now() - t0
local size = io.open(file, "rb"):seek("end")
local raw = N * 12 * 5000 * 4
print(string.format("write: %d records of 12x5000 %s, deflate %d, batch %d: %.1f s, %.0f records/s, %.0f MB/s raw; file %.0f MB (%.2f of raw)",
  N, dtype, level, B, tw, N / tw, raw / tw / 1e6, size / 1e6, size / raw))

ds = wb.dataset.open(file)
t0 = wb.now()
local seen = 0
for b in ds:batches(B) do seen = seen + b.signals:size(1) end
local tr = wb.now() - t0
print(string.format("read: %d records in batches of %d: %.1f s, %.0f records/s", seen, B, tr, seen / tr))
t0 = wb.now()
local R = math.min(2000, N)
for i = 1, R do ds:read(math.random(N)) end
local t1 = wb.now() - t0
print(string.format("random single-record reads: %.0f records/s", R / t1))
ds:close()
if not arg[5] then os.remove(file) end
