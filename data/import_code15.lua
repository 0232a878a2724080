--[[ data/import_code15.lua: CODE-15% (Ribeiro et al.) into one ecgwb dataset.

  ecgwb data/import_code15.lua --csv exams.csv --out code15.h5 exams_part0.hdf5 exams_part1.hdf5 ...
  options: --batch N (records per append, 256)  --compression 0..9 (4)  --limit N (stop after N records)

Each shard holds `tracings` (N, 4096, 12) f32 in V at 400 Hz, zero-padded
to 4096 samples, and `exam_id` (N). exams.csv has one row per exam:
exam_id, age, is_male, nn_predicted_age, 1dAVb, RBBB, LBBB, SB, ST, AF,
patient_id, death, timey, normal_ecg, trace_file. A record becomes
signals (12, 4096) (transposed; lead order DI DII DIII aVR aVL aVF V1..V6,
named I II ... V6), id = exam_id, patient_id, age, sex = is_male, and the six
labels. Shard rows whose exam_id is not in the CSV (the shards end with a
zero padding row of exam_id 0) are skipped and counted. Shards are read a
batch of rows at a time, so a 20,000-exam shard never sits in memory whole.

From Lua: dofile("data/import_code15.lua").run { csv = ..., out = ..., shards = { ... } }.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C

local M = {}
M.labels = { "1dAVb", "RBBB", "LBBB", "SB", "ST", "AF" }

local function truthy(v, what, id)
  if v == "True" or v == "true" or v == "1" or v == "1.0" then return 1 end
  if v == "False" or v == "false" or v == "0" or v == "0.0" then return 0 end
  error(string.format("import_code15: exam %s: %s is '%s' (want True/False or 1/0)", id, what, tostring(v)), 0)
end

-- rows [start, start+count) of a shard's `tracings`, as (count, 4096, 12)
local function read_rows(file, name, start, count)
  local out = ffi.new("ewb_tensor*[1]")
  if C.ewb_h5_read_rows(file, name, start, count, out) ~= 0 then error(ffi.string(C.ewb_last_error()), 0) end
  return wb._internal.wrap(out[0])
end

function M.run(o)
  if not o.csv then error("import_code15: --csv exams.csv is required", 0) end
  if not o.out then error("import_code15: --out FILE.h5 is required", 0) end
  if not (o.shards and #o.shards > 0) then error("import_code15: give at least one shard (.hdf5)", 0) end
  local batch = o.batch or 256
  local log = o.log or print
  local _, rows = wb.dataset.read_csv(o.csv)
  local exams = {}
  for _, r in ipairs(rows) do
    if not r.exam_id then error("import_code15: '" .. o.csv .. "' has no exam_id column", 0) end
    exams[r.exam_id] = r
  end
  local ds = wb.dataset.create(o.out, { fs = 400, leads = 12, samples = 4096, labels = M.labels, units = "V",
    compression = o.compression })
  local total, skipped, t0 = 0, 0, wb.now()
  local ok, err = pcall(function()
    for _, shard in ipairs(o.shards) do
      local ids = wb.h5.read(shard, "exam_id")
      if ids:dim() ~= 1 then error("import_code15: '" .. shard .. "': exam_id must be 1-D, got " .. ids:describe(), 0) end
      local n = ids:size(1)
      ids = ids:to("i64")
      local idp = ffi.cast("int64_t*", ids:data_ptr())
      for first = 0, n - 1, batch do
        if o.limit and total >= o.limit then break end
        local count = math.min(batch, n - first)
        local tr = read_rows(shard, "tracings", first, count) -- (count, 4096, 12)
        if tr:dim() ~= 3 or tr:size(2) ~= 4096 or tr:size(3) ~= 12 then
          error(string.format("import_code15: '%s': tracings must be (N, 4096, 12), got rows %s", shard, tr:describe()), 0)
        end
        local keep, b = {}, { ids = {}, patient_id = {}, age = {}, sex = {}, labels = {} }
        for k = 0, count - 1 do
          local id = tostring(idp[first + k]):gsub("LL$", "")
          local r = exams[id]
          if r and not (o.limit and total + #keep >= o.limit) then
            keep[#keep + 1] = k
            local i = #keep
            b.ids[i] = id
            b.patient_id[i] = tonumber(r.patient_id) or -1
            b.age[i] = tonumber(r.age) or 0 / 0
            b.sex[i] = r.is_male and r.is_male ~= "" and truthy(r.is_male, "is_male", id) or -1
            local names = {}
            for _, l in ipairs(M.labels) do
              if r[l] and r[l] ~= "" and truthy(r[l], l, id) == 1 then names[#names + 1] = l end
            end
            b.labels[i] = names
          elseif not r then
            skipped = skipped + 1
          end
        end
        if #keep > 0 then
          local sel = wb.tensor(keep, "i64")
          b.signals = tr:index_select(1, sel):transpose(2, 3):contiguous() -- (n, 12, 4096)
          ds:append(b)
          total = total + #keep
        end
      end
      log(string.format("import_code15: %s: %d records so far (%.0f records/s)", shard, total, total / (wb.now() - t0)))
    end
  end)
  ds:close() -- also after an error, so the file can be written again
  if not ok then error(err, 0) end
  log(string.format("import_code15: wrote %d records to %s; skipped %d shard rows not in %s", total, o.out, skipped, o.csv))
  return total, skipped
end

-- command line
local function main(args)
  local o = { shards = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--csv" or a == "--out" or a == "--batch" or a == "--compression" or a == "--limit" then
      local v = args[i + 1] or error("import_code15: " .. a .. " needs a value", 0)
      o[a:sub(3)] = (a == "--csv" or a == "--out") and v or tonumber(v)
      i = i + 2
    elseif a == "-h" or a == "--help" then
      print("usage: ecgwb data/import_code15.lua --csv exams.csv --out FILE.h5 shard.hdf5 ... [--batch N] [--compression 0..9] [--limit N]")
      os.exit(0)
    else
      o.shards[#o.shards + 1] = a
      i = i + 1
    end
  end
  M.run(o)
end

-- run as a script (not when loaded with dofile from another script)
if arg and arg[0] and (arg[0] == "import_code15.lua" or arg[0]:match("[/\\]import_code15%.lua$")) then
  local ok, err = pcall(main, arg)
  if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end
end
return M
