--[[ sim_heldout.lua: ecgwb's R-peak detector and delineator (wb.signal)
against the simulator's truth on a sample of clean records outside the ones
tests/test_sim.lua checks: N records (seed SEED, index FIRST..FIRST+N-1) of
each condition and combination in test_sim.lua's dconds, with the same
tolerances (HR 2 bpm; PR, QRS, QT 20 ms) and rhythm checks (AF: RR CV above
0.1 and no P wave; flutter: no P wave; sinus: RR CV below 0.08 and P waves
in >= 80% of beats; wb.sim.check_truth). Prints every record that fails
and the count.
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
  for idx = first, first + n - 1 do
    if filt and not c.name:find(filt, 1, true) then break end
    local o = { seed = seed, index = idx }
    for k, v in pairs(c) do if k ~= "name" then o[k] = v end end
    local res = wb.sim.check_truth(o)
    local bad = res.bad
    if res.rhythm then bad[#bad + 1] = res.rhythm; nrh = nrh + 1 end
    total = total + 1
    if #bad > 0 then nbad = nbad + 1; print(c.name, "#" .. idx, table.concat(bad, "; ")) end
  end
end
print(string.format("held-out (seed %d, index %d-%d): %d of %d records fail (%d the rhythm check)", seed, first, first + n - 1, nbad, total, nrh))
