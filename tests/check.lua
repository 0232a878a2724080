-- tests/check.lua: the Lua test harness. Load with
--   local T = dofile("tests/check.lua")
-- T.ok(cond, msg), T.close(a, b, tol, msg) (tensors or numbers; normalised
-- max error), T.fails(fn, needle) (must raise an error containing needle),
-- and T.done() at the end, which exits non-zero on any failure.
local T = { failures = 0, count = 0 }

function T.ok(cond, msg)
  T.count = T.count + 1
  if not cond then
    T.failures = T.failures + 1
    io.stderr:write("FAIL: " .. tostring(msg) .. "\n" .. debug.traceback("", 2) .. "\n")
  end
  return cond
end

-- max |a-b| / (max |b| + 1e-6)
function T.relerr(a, b)
  local wb = require "ecgwb"
  if type(a) == "number" then return math.abs(a - b) / (math.abs(b) + 1e-6) end
  local x, y = a:totable(), b:totable()
  if #x ~= #y then return math.huge end
  local num, den = 0, 0
  for i = 1, #x do
    local d = math.abs(x[i] - y[i])
    if not (d <= num) then num = d end
    den = math.max(den, math.abs(y[i]))
  end
  return num / (den + 1e-6)
end

function T.close(a, b, tol, msg)
  local e = T.relerr(a, b)
  return T.ok(e <= (tol or 1e-5), string.format("%s: relative error %.3g > %.3g", msg or "close", e, tol or 1e-5))
end

function T.fails(fn, needle, msg)
  local ok, err = pcall(fn)
  return T.ok(not ok and tostring(err):find(needle, 1, true) ~= nil,
    string.format("%s: expected an error containing '%s', got %s", msg or "fails", needle, ok and "success" or tostring(err)))
end

function T.done()
  io.stderr:write(string.format("%d checks, %d failed\n", T.count, T.failures))
  os.exit(T.failures == 0 and 0 or 1, true) -- close the state: finalizers free the tensors still referenced
end

return T
