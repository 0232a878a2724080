--[[ sim_heldout.lua: ecgwb's R-peak detector and delineator (wb.signal)
against the simulator's truth on a sample of clean records outside the ones
tests/test_sim.lua checks: N records (seed SEED, index FIRST..FIRST+N-1) of
each condition and combination in test_sim.lua's dconds, with the same
tolerances (HR 2 bpm; PR, QRS, QT 20 ms) and rhythm checks (AF: RR CV above
0.1 and no P wave; flutter: no P wave; sinus: RR CV below 0.08 and P waves
in >= 80% of beats). Prints every record that fails and the count.
  ecgwb data/sim_heldout.lua [SEED] [FIRST] [N] [condition-substring]
  (default seed 13, index 201-220)
]]
local wb = require "ecgwb"
local args = { ... }
local seed, first, n, filt = tonumber(args[1]) or 13, tonumber(args[2]) or 201, tonumber(args[3]) or 20, args[4]
local src = assert(io.open("tests/test_sim.lua"), "run from the repository's root"):read("*a")
local dconds = assert(loadstring(src:match("(local dconds = %b{})") .. " return dconds"))()
local nbad, nrh, total = 0, 0, 0
for _, c in ipairs(dconds) do
  local af, fl, sinus = c.rhythm == "afib", c.rhythm == "aflt", not c.rhythm and not c.pvc_prob
  for idx = first, first + n - 1 do
    if filt and not c.name:find(filt, 1, true) then break end
    local o = { seed = seed, index = idx }
    for k, v in pairs(c) do if k ~= "name" then o[k] = v end end
    local r = wb.sim.record(o)
    local peaks, hr = wb.signal.rpeaks(r.clean, 500)
    local m = wb.signal.delineate(r.clean, 500, { peaks = peaks })
    local rh = wb.signal.rhythm(peaks, 500)
    local t, bad = r.truth, {}
    local function off(a, b, tol) return a == nil or a ~= a or math.abs(a - b) >= tol end
    if off(hr, t.hr, 2) then bad[#bad + 1] = string.format("HR %.1f vs %.1f (%d vs %d peaks)", hr or -1, t.hr, peaks:numel(), r.rpeaks:numel()) end
    if t.pr_ms and off(m.pr, t.pr_ms, 20) then bad[#bad + 1] = string.format("PR %s vs %.0f", tostring(m.pr), t.pr_ms) end
    if off(m.qrs, t.qrs_ms, 20) then bad[#bad + 1] = string.format("QRS %s vs %.0f", tostring(m.qrs), t.qrs_ms) end
    if off(m.qt, t.qt_ms, 20) then bad[#bad + 1] = string.format("QT %s vs %.0f", tostring(m.qt), t.qt_ms) end
    local rb
    if af and not (rh.cv > 0.1 and m.p_fraction == 0) then rb = string.format("AF: RR CV %.3f, P in %.2f", rh.cv, m.p_fraction)
    elseif fl and m.p_fraction ~= 0 then rb = string.format("flutter: P in %.2f (RR CV %.3f)", m.p_fraction, rh.cv)
    elseif sinus and not (rh.cv < 0.08 and m.p_fraction >= 0.8) then rb = string.format("sinus: RR CV %.3f, P in %.2f", rh.cv, m.p_fraction) end
    if rb then bad[#bad + 1] = rb; nrh = nrh + 1 end
    total = total + 1
    if #bad > 0 then nbad = nbad + 1; print(c.name, "#" .. idx, table.concat(bad, "; ")) end
  end
end
print(string.format("held-out (seed %d, index %d-%d): %d of %d records fail (%d the rhythm check)", seed, first, first + n - 1, nbad, total, nrh))
