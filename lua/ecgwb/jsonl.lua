--[[ ecgwb.jsonl: metric logs as JSONL (one JSON object per line).

  local log = wb.jsonl.open("runs/x/metrics.jsonl")          -- truncates
  local log = wb.jsonl.open("runs/x/metrics.jsonl", { append = true }) -- e.g. on resume
  log:write { step = 100, loss = 0.31, lr = 3e-4 }         -- one line, flushed
  log:close()
  for _, rec in ipairs(wb.jsonl.read("runs/x/metrics.jsonl")) do print(rec.step, rec.loss) end

Each line is written and flushed at once, so a reader (the dashboard, tail -f,
pandas.read_json(lines=True)) sees whole records while the job runs, and a
killed job leaves at most one partial last line, which read() drops
(read(path, { strict = true }) reports it instead). Values follow ecgwb.json: a
NaN loss is written as NaN (Python's json reads it). Records are JSON objects
with sorted keys; :write adds nothing of its own.
]]
local json = require "ecgwb.json"

local M = {}

local Log = {}
Log.__index = Log

function M.open(path, opts)
  if type(path) ~= "string" then error("jsonl.open: path must be a string, got " .. type(path), 2) end
  opts = opts or {}
  local f, err = io.open(path, opts.append and "a" or "w")
  if not f then error("jsonl.open: cannot open '" .. path .. "': " .. tostring(err), 2) end
  return setmetatable({ path = path, file = f, n = 0 }, Log)
end

-- writes one record (a table with string keys) as a line, and flushes
function Log:write(rec)
  if not self.file then error("log:write: '" .. self.path .. "' is closed", 2) end
  if type(rec) ~= "table" then error("log:write: expected a table, got " .. type(rec), 2) end
  if next(rec) ~= nil and #rec > 0 then error("log:write: expected a record with string keys, got an array", 2) end
  local ok, line = pcall(json.encode, rec)
  if not ok then error("log:write: " .. tostring(line), 2) end
  self.file:write(line, "\n")
  self.file:flush()
  self.n = self.n + 1
end

function Log:close()
  if self.file then self.file:close(); self.file = nil end
end

-- every record of a JSONL file, as a list of tables. A last line without its
-- newline (a writer killed mid-line) is dropped unless opts.strict.
function M.read(path, opts)
  if type(path) ~= "string" then error("jsonl.read: path must be a string, got " .. type(path), 2) end
  local f, err = io.open(path, "rb")
  if not f then error("jsonl.read: cannot open '" .. path .. "': " .. tostring(err), 2) end
  local text = f:read("*a")
  f:close()
  local out, lineno, pos = {}, 0, 1
  while pos <= #text do
    local nl = text:find("\n", pos, true)
    local line = text:sub(pos, (nl or #text + 1) - 1)
    lineno = lineno + 1
    if line:match("%S") then
      local ok, rec = pcall(json.decode, line)
      if not ok then
        if nl or (opts and opts.strict) then error(string.format("jsonl.read: %s:%d: %s", path, lineno, rec), 2) end
      else
        out[#out + 1] = rec
      end
    end
    if not nl then break end
    pos = nl + 1
  end
  return out
end

return M
