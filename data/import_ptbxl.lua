--[[ data/import_ptbxl.lua: PTB-XL (Wagner et al., PhysioNet) into one ecgwb dataset.

  ecgwb data/import_ptbxl.lua --root DIR --rate 100|500 --out ptbxl.h5
  options: --labels LEVEL (the level copied into `labels`, superclass)
           --min-likelihood P (diagnostic statements below P are dropped, 0)
           --dtype f32|int16 (f32)  --batch N (records per append, 64)
           --compression 0..9 (4)  --limit N (stop after N records)

DIR is the unpacked download: ptbxl_database.csv, scp_statements.csv and
records100/ or records500/ (WFDB, format 16, gain 1000/mV, 12 leads I..V6,
10 s). A row of ptbxl_database.csv becomes one record: signals (12, 1000) or
(12, 5000) in mV, id = ecg_id, patient_id, age (as PTB-XL stores it: 300
means 90 or older), sex (PTB-XL 0 male / 1 female becomes the dataset's
1 male / 0 female), split = strat_fold (1-8 train, 9 validation, 10 test,
as PTB-XL recommends), reports = report.

scp_codes ("{'NORM': 100.0, 'SR': 0.0}", code -> likelihood) become
multi-hot label sets, following the PTB-XL benchmark (Strodthoff et al.):
  all          every SCP code of scp_statements.csv
  diagnostic   codes with diagnostic = 1
  subclass     their diagnostic_subclass
  superclass   their diagnostic_class (CD HYP MI NORM STTC)
  form         codes with form = 1
  rhythm       codes with rhythm = 1
A code counts whatever its likelihood (form and rhythm statements carry 0),
unless --min-likelihood P > 0 drops diagnostic statements (and so their
sub/superclass) with likelihood < P. Columns are sorted by name, as the
benchmark's MultiLabelBinarizer orders them. Each level is stored as the
label set labels_<level> / label_names_<level>; `labels` repeats one level.

From Lua: dofile("data/import_ptbxl.lua").run { root = ..., rate = 500, out = ... }.
]]
local wb = require "ecgwb"

local M = {}
M.levels = { "all", "diagnostic", "subclass", "superclass", "form", "rhythm" }
M.leads = { "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6" }

-- a Python dict literal of string keys and numbers, "{'NORM': 100.0, 'SR': 0.0}":
-- list of {code, likelihood} in order, or nil and what is wrong
function M.parse_scp(s)
  local out, pos = {}, 1
  local function ws() pos = s:match("^%s*()", pos) end
  ws()
  if s:sub(pos, pos) ~= "{" then return nil, "does not start with '{'" end
  pos = pos + 1
  ws()
  if s:sub(pos, pos) == "}" then
    pos = pos + 1
  else
    while true do
      local q = s:sub(pos, pos)
      if q ~= "'" and q ~= '"' then return nil, "expected a quoted code at character " .. pos end
      local close = s:find(q, pos + 1, true)
      if not close then return nil, "unterminated code at character " .. pos end
      local code = s:sub(pos + 1, close - 1)
      if code == "" then return nil, "empty code at character " .. pos end
      pos = close + 1
      ws()
      if s:sub(pos, pos) ~= ":" then return nil, "expected ':' after '" .. code .. "'" end
      pos = pos + 1
      ws()
      local num, after = s:match("^([-+]?[%d%.]+[eE]?[-+]?%d*)()", pos)
      local v = num and tonumber(num)
      if not v then return nil, "the likelihood of '" .. code .. "' is not a number" end
      out[#out + 1] = { code, v }
      pos = after
      ws()
      local c = s:sub(pos, pos)
      pos = pos + 1
      if c == "}" then break end
      if c ~= "," then return nil, "expected ',' or '}' after the likelihood of '" .. code .. "'" end
      ws()
    end
  end
  ws()
  if pos <= #s then return nil, "unexpected text after '}'" end
  return out
end

-- wb.dataset.read_csv with the importer's name on its errors
local function read_csv(file)
  local ok, header, rows = pcall(wb.dataset.read_csv, file)
  if not ok then error("import_ptbxl: " .. tostring(header):gsub("^[^ ]-:%d+: ", ""), 0) end
  return header, rows
end

local function need_columns(file, header, cols)
  local have = {}
  for _, h in ipairs(header) do have[h] = true end
  for _, c in ipairs(cols) do
    if not have[c] then error("import_ptbxl: '" .. file .. "' has no column '" .. c .. "'", 0) end
  end
end

-- scp_statements.csv: code -> {diagnostic, form, rhythm, class, subclass}, and the names of every level
function M.read_statements(file)
  local header, rows = read_csv(file)
  need_columns(file, header, { "diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass" })
  local key = header[1] -- the index column (unnamed in PTB-XL's file)
  local stmts, sets = {}, {}
  for _, l in ipairs(M.levels) do sets[l] = {} end
  for i, r in ipairs(rows) do
    local code = r[key]
    local where = string.format("import_ptbxl: '%s' row %d (%s)", file, i, code)
    if code == "" then error(where .. ": empty SCP code", 0) end
    if stmts[code] then error(where .. ": SCP code listed twice", 0) end
    local function flag(col)
      local v = r[col]
      if v == "" or v == "0" or v == "0.0" then return false end
      if v == "1" or v == "1.0" then return true end
      error(string.format("%s: %s is '%s' (want 1.0 or empty)", where, col, v), 0)
    end
    local s = { diagnostic = flag("diagnostic"), form = flag("form"), rhythm = flag("rhythm") }
    if s.diagnostic then
      s.class, s.subclass = r.diagnostic_class, r.diagnostic_subclass
      if s.class == "" or s.subclass == "" then error(where .. ": a diagnostic statement without diagnostic_class/subclass", 0) end
      sets.diagnostic[code], sets.superclass[s.class], sets.subclass[s.subclass] = true, true, true
    end
    sets.all[code] = true
    if s.form then sets.form[code] = true end
    if s.rhythm then sets.rhythm[code] = true end
    stmts[code] = s
  end
  local names = {}
  for _, l in ipairs(M.levels) do
    names[l] = {}
    for n in pairs(sets[l]) do names[l][#names[l] + 1] = n end
    table.sort(names[l])
    if #names[l] == 0 then error("import_ptbxl: '" .. file .. "' has no " .. l .. " statements", 0) end
  end
  return stmts, names
end

-- the label names of each level for one record's parsed scp_codes
function M.record_labels(codes, stmts, min_likelihood, where)
  local lab, seen = {}, {}
  for _, l in ipairs(M.levels) do lab[l], seen[l] = {}, {} end
  local function add(l, name)
    if not seen[l][name] then seen[l][name] = true; lab[l][#lab[l] + 1] = name end
  end
  for _, cv in ipairs(codes) do
    local code, likelihood = cv[1], cv[2]
    local s = stmts[code]
    if not s then error(where .. ": SCP code '" .. code .. "' is not in scp_statements.csv", 0) end
    add("all", code)
    if s.diagnostic and likelihood >= min_likelihood then
      add("diagnostic", code)
      add("subclass", s.subclass)
      add("superclass", s.class)
    end
    if s.form then add("form", code) end
    if s.rhythm then add("rhythm", code) end
  end
  return lab
end

-- one WFDB record as (12, samples) in mV in the standard lead order
local function read_record(path, rate, samples, where)
  local ok, r = pcall(wb.wfdb.read, path)
  if not ok then error(where .. ": " .. tostring(r), 0) end
  if r.fs ~= rate then error(string.format("%s: '%s' is at %g Hz, want %d", where, path, r.fs, rate), 0) end
  if r.signal:size(2) ~= samples then
    error(string.format("%s: '%s' has %d samples, want %d (10 s at %d Hz)", where, path, r.signal:size(2), samples, rate), 0)
  end
  local idx = {}
  for j, want in ipairs(M.leads) do
    for i, name in ipairs(r.sig_name) do
      if name:upper() == want:upper() then idx[j] = i - 1 end
    end
    if not idx[j] then
      error(string.format("%s: '%s' has no lead %s (it has %s)", where, path, want, table.concat(r.sig_name, " ")), 0)
    end
    local u = r.units[idx[j] + 1]
    if u ~= "mV" then error(string.format("%s: '%s': lead %s is in '%s', want mV", where, path, want, u), 0) end
  end
  return r.signal:index_select(1, wb.tensor(idx, "i64"))
end

local function integer(v, what, where)
  local x = tonumber(v)
  if not x or x ~= math.floor(x) then error(string.format("%s: %s is '%s' (want an integer)", where, what, v), 0) end
  return x
end

function M.run(o)
  if not o.root then error("import_ptbxl: --root DIR (the PTB-XL folder) is required", 0) end
  if not o.out then error("import_ptbxl: --out FILE.h5 is required", 0) end
  local rate = tonumber(o.rate)
  if rate ~= 100 and rate ~= 500 then error("import_ptbxl: --rate must be 100 or 500, got " .. tostring(o.rate), 0) end
  local main_level = o.labels or "superclass"
  local known = false
  for _, l in ipairs(M.levels) do known = known or l == main_level end
  if not known then error("import_ptbxl: --labels must be one of " .. table.concat(M.levels, " ") .. ", got " .. main_level, 0) end
  local min_likelihood = tonumber(o.min_likelihood or 0)
  if not min_likelihood then error("import_ptbxl: --min-likelihood must be a number, got " .. tostring(o.min_likelihood), 0) end
  local batch, log = o.batch or 64, o.log or print
  local samples = rate * 10
  local dbfile, stfile = o.root .. "/ptbxl_database.csv", o.root .. "/scp_statements.csv"
  local fcol = rate == 100 and "filename_lr" or "filename_hr"

  local stmts, names = M.read_statements(stfile)
  local header, rows = read_csv(dbfile)
  need_columns(dbfile, header, { "ecg_id", "patient_id", "age", "sex", "report", "scp_codes", "strat_fold", fcol })

  local sets = {}
  for _, l in ipairs(M.levels) do sets[#sets + 1] = { name = l, labels = names[l] } end
  local ds = wb.dataset.create(o.out, { fs = rate, leads = 12, samples = samples, labels = names[main_level],
    label_sets = sets, units = "mV", dtype = o.dtype, gain = o.dtype == "int16" and 1000 or nil,
    compression = o.compression })
  local total, t0 = 0, wb.now()
  local ok, err = pcall(function()
    local b
    local function flush()
      if b and #b.ids > 0 then
        b.signals = wb.stack(b.signals, 1) -- (n, 12, samples)
        ds:append(b)
        total = total + #b.ids
        if math.floor(total / 1000) > math.floor((total - #b.ids) / 1000) then
          log(string.format("import_ptbxl: %d / %d records (%.0f records/s)", total, #rows, total / (wb.now() - t0)))
        end
      end
      b = { signals = {}, ids = {}, reports = {}, patient_id = {}, age = {}, sex = {}, split = {}, labels = {}, label_sets = {} }
      for _, l in ipairs(M.levels) do b.label_sets[l] = {} end
    end
    flush()
    for i, r in ipairs(rows) do
      if o.limit and total + #b.ids >= o.limit then break end
      if r.ecg_id == "" then error(string.format("import_ptbxl: '%s' row %d: empty ecg_id", dbfile, i), 0) end
      local where = string.format("import_ptbxl: '%s' row %d (ecg_id %s)", dbfile, i, r.ecg_id)
      local codes, why = M.parse_scp(r.scp_codes)
      if not codes then error(string.format("%s: malformed scp_codes \"%s\": %s", where, r.scp_codes, why), 0) end
      local lab = M.record_labels(codes, stmts, min_likelihood, where)
      if r[fcol] == "" then error(where .. ": empty " .. fcol, 0) end
      local x = read_record(o.root .. "/" .. r[fcol], rate, samples, where)
      local k = #b.ids + 1
      b.signals[k], b.ids[k], b.reports[k] = x, r.ecg_id, r.report
      b.patient_id[k] = r.patient_id == "" and -1 or integer(r.patient_id, "patient_id", where)
      b.age[k] = tonumber(r.age) or 0 / 0
      if r.sex == "0" or r.sex == "0.0" then b.sex[k] = 1 -- PTB-XL: 0 male
      elseif r.sex == "1" or r.sex == "1.0" then b.sex[k] = 0 -- 1 female
      elseif r.sex == "" then b.sex[k] = -1
      else error(string.format("%s: sex is '%s' (want 0 male or 1 female)", where, r.sex), 0) end
      b.split[k] = r.strat_fold == "" and 0 or integer(r.strat_fold, "strat_fold", where)
      b.labels[k] = lab[main_level]
      for _, l in ipairs(M.levels) do b.label_sets[l][k] = lab[l] end
      if k >= batch then flush() end
    end
    flush()
  end)
  ds:close() -- also after an error, so the file can be written again
  if not ok then error(err, 0) end
  log(string.format("import_ptbxl: wrote %d records at %d Hz to %s (%.0f records/s)", total, rate, o.out,
    total / math.max(wb.now() - t0, 1e-9)))
  return total
end

-- command line
local function main(args)
  local o = {}
  local opts = { ["--root"] = "root", ["--out"] = "out", ["--rate"] = "rate", ["--labels"] = "labels",
    ["--min-likelihood"] = "min_likelihood", ["--dtype"] = "dtype", ["--batch"] = "batch",
    ["--compression"] = "compression", ["--limit"] = "limit" }
  local numeric = { rate = true, min_likelihood = true, batch = true, compression = true, limit = true }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      print("usage: ecgwb data/import_ptbxl.lua --root DIR --rate 100|500 --out FILE.h5 [--labels LEVEL] " ..
        "[--min-likelihood P] [--dtype f32|int16] [--batch N] [--compression 0..9] [--limit N]")
      os.exit(0)
    end
    local k = opts[a] or error("import_ptbxl: unknown argument '" .. a .. "' (--help lists the options)", 0)
    local v = args[i + 1] or error("import_ptbxl: " .. a .. " needs a value", 0)
    o[k] = numeric[k] and (tonumber(v) or error("import_ptbxl: " .. a .. " needs a number, got '" .. v .. "'", 0)) or v
    i = i + 2
  end
  M.run(o)
end

-- run as a script (not when loaded with dofile from another script)
if arg and arg[0] and (arg[0] == "import_ptbxl.lua" or arg[0]:match("[/\\]import_ptbxl%.lua$")) then
  local ok, err = pcall(main, arg)
  if not ok then io.stderr:write(tostring(err), "\n"); os.exit(1) end
end
return M
