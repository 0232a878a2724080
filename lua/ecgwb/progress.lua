--[[ ecgwb.progress: progress bars for training loops.

  local bar = wb.progress { total = cfg.steps, desc = "train" }
  for step = 1, cfg.steps do
    ...
    bar:update(step, { loss = loss:item() })
  end
  bar:close()

On a terminal: one line, redrawn at most 10 times a second, with step/total,
steps/s, ETA and the latest loss. Otherwise (a pipe, a log file): a plain line
each time another 10% is done (`every_pct`) or `every_s` seconds have passed
(default 30), and a last one at the end. Options: total, desc, out (a file,
default io.stderr), tty (default: whether out is a terminal), every_pct,
every_s, quiet (default: on a terminal, quiet in background tasks, whose
progress print(job) shows). update() also reports step, total and the given values to the
calling task's metrics (job:metrics()) and, in a task, yields to the loop.
]]
local wb = require "ecgwb"
local ffi = wb.ffi
pcall(ffi.cdef, "int isatty(int fd);")

local Progress = {}
Progress.__index = Progress

local function is_tty(out)
  local fd = out == io.stderr and 2 or out == io.stdout and 1 or nil
  return fd ~= nil and ffi.C.isatty(fd) == 1
end

local function clock(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%d:%02d:%02d", s / 3600, (s % 3600) / 60, s % 60) end
  return string.format("%d:%02d", s / 60, s % 60)
end

local function new(o)
  o = o or {}
  if o.total ~= nil and (type(o.total) ~= "number" or o.total <= 0) then
    error("progress: total must be a number > 0, got " .. tostring(o.total), 2)
  end
  local out = o.out or io.stderr
  local self = setmetatable({
    total = o.total, desc = o.desc or "", out = out,
    tty = o.tty == nil and is_tty(out) or o.tty,
    every_pct = o.every_pct or 10, every_s = o.every_s or 30,
    start = wb.now(), step = 0, first_step = nil, last_draw = -math.huge, last_line = -math.huge,
    last_bucket = 0, values = {}, closed = false,
  }, Progress)
  local loop = wb.loop
  local task = loop.current()
  self.quiet = o.quiet or (task and task.quiet) or false
  -- on a terminal only the foreground redraws its line (a background job's
  -- would overwrite the REPL's prompt); job:metrics() and print(job) show it
  if self.tty and task and task ~= loop.main_task() and o.quiet == nil then self.quiet = true end
  return self
end

-- steps per second since the first update
function Progress:rate()
  local dt = wb.now() - self.start
  return dt > 0 and self.step / dt or 0
end

function Progress:line()
  local rate = self:rate()
  local parts = {}
  if self.desc ~= "" then parts[#parts + 1] = self.desc .. ":" end
  if self.total then
    parts[#parts + 1] = string.format("%d/%d (%d%%)", self.step, self.total, math.floor(100 * self.step / self.total))
  else
    parts[#parts + 1] = string.format("step %d", self.step)
  end
  parts[#parts + 1] = string.format("%.2f steps/s", rate)
  if self.total then
    parts[#parts + 1] = "ETA " .. clock(rate > 0 and (self.total - self.step) / rate or nil)
  end
  parts[#parts + 1] = "elapsed " .. clock(wb.now() - self.start)
  local keys = {}
  for k in pairs(self.values) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return (a == "loss" and "" or a) < (b == "loss" and "" or b) end)
  for _, k in ipairs(keys) do
    local v = self.values[k]
    parts[#parts + 1] = type(v) == "number" and string.format("%s %.4g", k, v) or (k .. " " .. tostring(v))
  end
  return table.concat(parts, " ")
end

function Progress:draw(final)
  if self.quiet then return end
  if self.tty then
    local bar = ""
    if self.total then
      local w = 20
      local n = math.floor(w * math.min(self.step, self.total) / self.total)
      bar = "[" .. string.rep("#", n) .. string.rep(".", w - n) .. "] "
    end
    self.out:write("\r", bar, self:line(), "\27[K", final and "\n" or "")
  else
    self.out:write(self:line(), "\n")
  end
  self.out:flush()
end

function Progress:update(step, values)
  if self.closed then error("progress: update after close", 2) end
  self.step = step or (self.step + 1)
  for k, v in pairs(values or {}) do self.values[k] = v end
  local now = wb.now()
  local done = self.total and self.step >= self.total
  if self.tty then
    if done or now - self.last_draw >= 0.1 then self.last_draw = now; self:draw(false) end
  else
    local bucket = self.total and math.floor(self.step * 100 / self.total / self.every_pct) or 0
    if (self.total and bucket > self.last_bucket) or now - self.last_line >= self.every_s then
      self.last_bucket, self.last_line = bucket, now
      self:draw(false)
    end
  end
  local r = { step = self.step, total = self.total }
  for k, v in pairs(values or {}) do r[k] = v end
  wb.loop.report(r)      -- yields in a task
  if done then self:close() end
  return self
end

-- the last line (a newline on a terminal); idempotent
function Progress:close()
  if self.closed then return end
  self.closed = true
  if self.tty then self:draw(true)
  elseif self.last_line ~= wb.now() and not (self.total and self.last_bucket * self.every_pct >= 100) then self:draw(false) end
end

return setmetatable({ Progress = Progress, new = new }, { __call = function(_, o) return new(o) end })
