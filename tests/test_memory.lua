-- test_memory.lua: a long training loop does not leak. A small MLP trains
-- for 10,000 AdamW steps; the live tensor bytes (wb.memory().current, after
-- a full GC) and the process RSS (/proc/self/statm) at step 10,000 must equal
-- those at step 1,000 within small margins. Without forced collections the
-- C-side byte count must stay under the GC threshold plus the working set.
-- t:free() must release bytes at once.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local nn = require "ecgwb.nn"
local optim = require "ecgwb.optim"

local PAGE = 4096
local function rss_bytes()
  local f = io.open("/proc/self/statm", "r")
  local _, resident = f:read("*n", "*n")
  f:close()
  return resident * PAGE
end

------------------------------------------------------------------ t:free()
do
  collectgarbage()
  local before = wb.memory().current
  local x = wb.zeros(1000, 1000)
  T.ok(wb.memory().current - before == 4e6, "a 1000x1000 f32 tensor counts 4,000,000 bytes")
  x:free()
  T.ok(wb.memory().current == before, "t:free() releases the bytes at once")
  T.ok(tostring(x) == "tensor(freed)", "a freed tensor prints as freed")
  T.fails(function() return x + 1 end, "freed")
end

------------------------------------------------------------------ long loop
wb.manual_seed(5)
local THRESHOLD = 4 * 2 ^ 20
wb.C.ewb_mem_set_threshold(THRESHOLD) -- a GC step every 4 MiB of tensor allocations
do
  local model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 1))
  local opt = optim.AdamW(model:parameters(), { lr = 1e-3 })
  local wtrue = wb.randn(16, 1)
  local bytes, rss, maxlive = {}, {}, 0
  local t0 = os.clock()
  for step = 1, 10000 do
    local x = wb.randn(32, 16)
    local y = x:matmul(wtrue)
    local loss = wb.mse_loss(model(x), y)
    loss:backward()
    opt:step()
    opt:zero_grad()
    maxlive = math.max(maxlive, wb.memory().current)
    if step == 1000 or step == 10000 then
      collectgarbage()
      collectgarbage()
      bytes[step], rss[step] = wb.memory().current, rss_bytes()
    end
  end
  print(string.format("10,000 steps in %.1f s; live tensor bytes %d -> %d; RSS %.1f -> %.1f MiB; max live %d bytes",
    os.clock() - t0, bytes[1000], bytes[10000], rss[1000] / 2 ^ 20, rss[10000] / 2 ^ 20, maxlive))
  -- parameters + AdamW state (3 copies of 1,153 floats) dominate what stays live
  T.ok(bytes[10000] == bytes[1000], "live tensor bytes flat: " .. bytes[1000] .. " -> " .. bytes[10000])
  -- under AddressSanitizer freed blocks sit in its quarantine (256 MiB), so
  -- RSS grows there by design; LeakSanitizer checks leaks instead
  if os.getenv("ASAN_OPTIONS") == nil then
    T.ok(rss[10000] - rss[1000] < 2 * 2 ^ 20, string.format("RSS flat within 2 MiB: %.2f -> %.2f MiB", rss[1000] / 2 ^ 20, rss[10000] / 2 ^ 20))
  end
  T.ok(maxlive < THRESHOLD + 2 * 2 ^ 20, "without forced collections live bytes stay under threshold + working set: " .. maxlive)
end
wb.C.ewb_mem_set_threshold(256 * 2 ^ 20)

T.done()
