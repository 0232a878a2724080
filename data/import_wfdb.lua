--[[ data/import_wfdb.lua: every WFDB record of a folder into one ecgwb dataset.

  ecgwb data/import_wfdb.lua --dir DIR --out FILE.h5 [--fs 500] [--seconds 10] [--leads I,II,V1]
  options: --skip-bad (log a record that cannot be imported and go on)
           --batch N (records per append, 64)  --compression 0..9 (4)  --limit N

A record is a .hea file anywhere under DIR (subfolders included), taken in
sorted path order; the segments of a multi-segment record are read through
their master header and not imported on their own. Each record is read in
physical units, its leads picked by name (exact, else case-insensitive),
converted to mV (from uV or V), resampled to --fs (wb.signal.resample), and
cut or zero-padded at the end to --seconds. Samples the record marks
invalid (NaN) become 0 and are counted. Defaults come from the first record:
its rate, its length and all its signals. id = the record's path under DIR
(e.g. "p01/100"), reports = its header comments joined by newlines, and age
and sex from "Age: 63" / "Sex: Male|Female|M|F" comments when present (the
PhysioNet Challenge and PTB styles), else unknown. There are no labels.

From Lua: dofile("data/import_wfdb.lua").run { dir = ..., out = ..., fs = 500, seconds = 10, leads = {"I", "II"} }.
]]
local wb = require "ecgwb"

local M = {}

-- microvolt spellings and their factor to mV
local to_mv = { mV = 1, mv = 1, MV = 1, uV = 1e-3, uv = 1e-3, ["µV"] = 1e-3, ["μV"] = 1e-3, V = 1e3, v = 1e3 }

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- sorted record paths (without .hea) under dir
function M.find(dir)
  local p = io.popen("find " .. shell_quote(dir) .. " -name '*.hea' -type f 2>/dev/null")
  local out = {}
  for line in p:lines() do out[#out + 1] = line:sub(1, -5) end
  p:close()
  table.sort(out)
  return out
end

-- age and sex from header comments ("Age: 63", "sex: female"); nil when absent
function M.demographics(comments, where)
  local age, sex
  for _, c in ipairs(comments) do
    local a = c:match("^%s*[Aa][Gg][Ee]%s*:%s*(%S*)")
    if a then
      age = tonumber(a)
      if not age and a ~= "" and a:lower() ~= "nan" and a ~= "?" then
        error(string.format("%s: comment '%s': age is not a number", where, c), 0)
      end
    end
    local s = c:match("^%s*[Ss][Ee][Xx]%s*:%s*(%S*)")
    if s then
      s = s:lower()
      if s == "male" or s == "m" then sex = 1
      elseif s == "female" or s == "f" then sex = 0
      elseif s ~= "" and s ~= "nan" and s ~= "?" and s ~= "unknown" then
        error(string.format("%s: comment '%s': sex is not Male/Female", where, c), 0)
      end
    end
  end
  return age, sex
end

-- 0-based row of lead `want` in names, exact first, else case-insensitive
local function find_lead(names, want)
  for i, n in ipairs(names) do if n == want then return i - 1 end end
  for i, n in ipairs(names) do if n:lower() == want:lower() then return i - 1 end end
end

-- record -> (leads, samples) f32 in mV, number of invalid samples zeroed
local function convert(r, leads, fs, samples, where)
  local idx, scale = {}, {}
  for j, want in ipairs(leads) do
    local i = find_lead(r.sig_name, want)
    if not i then error(string.format("%s: no lead '%s' (it has %s)", where, want, table.concat(r.sig_name, " ")), 0) end
    local u = r.units[i + 1]
    scale[j] = to_mv[u ~= "" and u or "mV"]
    if not scale[j] then error(string.format("%s: lead '%s' is in '%s', not a voltage (mV, uV or V)", where, want, u), 0) end
    idx[j] = i
  end
  local x = r.signal:index_select(1, wb.tensor(idx, "i64")) -- (leads, n)
  local nan = x:ne(x)
  local invalid = nan:to("f32"):sum():item()
  if invalid > 0 then x = x:masked_fill(nan, 0) end
  x = x:mul(wb.tensor(scale):view(#leads, 1))
  if r.fs ~= fs then
    if x:size(2) < 2 then error(string.format("%s: %d samples cannot be resampled", where, x:size(2)), 0) end
    x = wb.signal.resample(x, r.fs, fs)
  end
  local n = x:size(2)
  if n > samples then x = x:narrow(2, 1, samples)
  elseif n < samples then x = wb.cat({ x, wb.zeros(#leads, samples - n) }, 2) end
  return x:contiguous(), invalid
end

function M.run(o)
  if not o.dir then error("import_wfdb: --dir DIR is required", 0) end
  if not o.out then error("import_wfdb: --out FILE.h5 is required", 0) end
  local log, batch = o.log or print, o.batch or 64
  local paths = M.find(o.dir)
  if #paths == 0 then error("import_wfdb: no WFDB records (.hea files) under '" .. o.dir .. "'", 0) end

  -- headers first: skip the segments of multi-segment records, take the defaults from the first record
  local headers, segment = {}, {}
  for _, p in ipairs(paths) do
    local ok, h = pcall(wb.wfdb.header, p)
    if not ok then
      if not o.skip_bad then error("import_wfdb: " .. tostring(h), 0) end
      log("import_wfdb: skipped: " .. tostring(h))
    else
      headers[p] = h
      local folder = p:match("^(.*)/[^/]*$") or "."
      for _, s in ipairs(h.segments) do
        if s.name ~= "~" then segment[folder .. "/" .. s.name] = true end
      end
    end
  end
  local records = {}
  for _, p in ipairs(paths) do
    if headers[p] and not segment[p] then records[#records + 1] = p end
  end
  if #records == 0 then error("import_wfdb: no importable records under '" .. o.dir .. "'", 0) end
  local first = headers[records[1]]
  local fs = o.fs or first.fs
  local seconds = o.seconds or first.nsamp / first.fs
  local leads = o.leads or first.sig_name
  if type(leads) == "string" then
    local l = {}
    for name in leads:gmatch("[^,]+") do l[#l + 1] = name:match("^%s*(.-)%s*$") end
    leads = l
  end
  if not (fs > 0) then error("import_wfdb: --fs must be > 0, got " .. tostring(fs), 0) end
  if not (seconds > 0) then error("import_wfdb: --seconds must be > 0, got " .. tostring(seconds) ..
    " (the first record, " .. records[1] .. ", has no samples?)", 0) end
  if #leads == 0 then error("import_wfdb: no leads selected", 0) end
  local samples = math.floor(seconds * fs + 0.5)
  local prefix = o.dir:gsub("/+$", "") .. "/"

  local ds = wb.dataset.create(o.out, { fs = fs, leads = leads, samples = samples, units = "mV", compression = o.compression })
  local total, skipped, invalid, t0 = 0, 0, 0, wb.now()
  local ok, err = pcall(function()
    local b
    local function flush()
      if b and #b.ids > 0 then
        b.signals = wb.stack(b.signals, 1)
        ds:append(b)
        total = total + #b.ids
        log(string.format("import_wfdb: %d / %d records (%.0f records/s)", total, #records, total / (wb.now() - t0)))
      end
      b = { signals = {}, ids = {}, reports = {}, age = {}, sex = {} }
    end
    flush()
    for _, p in ipairs(records) do
      if o.limit and total + #b.ids >= o.limit then break end
      local id = p:sub(1, #prefix) == prefix and p:sub(#prefix + 1) or p
      local where = "import_wfdb: record '" .. p .. "'"
      local good, why = pcall(function()
        local rok, r = pcall(wb.wfdb.read, p)
        if not rok then error(where .. ": " .. tostring(r), 0) end
        local x, bad = convert(r, leads, fs, samples, where)
        local age, sex = M.demographics(r.comments, where)
        local k = #b.ids + 1
        b.signals[k], b.ids[k], b.reports[k] = x, id, table.concat(r.comments, "\n")
        b.age[k], b.sex[k] = age or 0 / 0, sex or -1
        invalid = invalid + bad
      end)
      if not good then
        if not o.skip_bad then error(why, 0) end
        skipped = skipped + 1
        log("import_wfdb: skipped: " .. tostring(why))
      end
      if #b.ids >= batch then flush() end
    end
    flush()
  end)
  ds:close() -- also after an error, so the file can be written again
  if not ok then error(err, 0) end
  log(string.format("import_wfdb: wrote %d records (%d leads, %d samples at %g Hz) to %s; skipped %d; %d invalid samples set to 0",
    total, #leads, samples, fs, o.out, skipped, invalid))
  return total, skipped, invalid
end

-- command line
local function main(args)
  local o = {}
  local opts = { ["--dir"] = "dir", ["--out"] = "out", ["--fs"] = "fs", ["--seconds"] = "seconds", ["--leads"] = "leads",
    ["--batch"] = "batch", ["--compression"] = "compression", ["--limit"] = "limit" }
  local numeric = { fs = true, seconds = true, batch = true, compression = true, limit = true }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      print("usage: ecgwb data/import_wfdb.lua --dir DIR --out FILE.h5 [--fs HZ] [--seconds S] [--leads I,II,...] " ..
        "[--skip-bad] [--batch N] [--compression 0..9] [--limit N]")
      os.exit(0)
    elseif a == "--skip-bad" then
      o.skip_bad = true
      i = i + 1
    else
      local k = opts[a] or error("import_wfdb: unknown argument '" .. a .. "' (--help lists the options)", 0)
      local v = args[i + 1] or error("import_wfdb: " .. a .. " needs a value", 0)
      o[k] = numeric[k] and (tonumber(v) or error("import_wfdb: " .. a .. " needs a number, got '" .. v .. "'", 0)) or v
      i = i + 2
    end
  end
  M.run(o)
end

-- run as a script (not when loaded with dofile from another script)
if arg and arg[0] and (arg[0] == "import_wfdb.lua" or arg[0]:match("[/\\]import_wfdb%.lua$")) then
  local ok, err = pcall(main, arg)
  if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end
end
return M
