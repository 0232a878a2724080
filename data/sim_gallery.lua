--[[ sim_gallery.lua: one simulated record per condition, drawn as a 12-lead
ECG (3 x 4 and a lead II rhythm strip) to DIR/<condition>.png, titled with
its labels and the first sentence of its report: for a cardiologist to look at.
  ecgwb data/sim_gallery.lua [DIR] [seed]      (DIR default: sim_gallery)
]]
local wb = require "ecgwb"
local dir, seed = (...) or "sim_gallery", tonumber(select(2, ...)) or 1
os.execute("mkdir -p '" .. dir .. "'")
local conds = {
  { "normal", {} }, { "sinus_bradycardia", { hr = 45 } }, { "sinus_tachycardia", { hr = 125 } },
  { "atrial_fibrillation", { rhythm = "afib", hr = 95 } }, { "atrial_flutter_2to1", { rhythm = "aflt", flutter_block = 2 } },
  { "atrial_flutter_4to1", { rhythm = "aflt", flutter_block = 4 } }, { "first_degree_av_block", { pr_ms = 280 } },
  { "lbbb", { bbb = "left" } }, { "rbbb", { bbb = "right" } }, { "pvc", { pvc_prob = 0.25 } },
  { "ste_anterior", { st = "anterior", st_mv = 0.25 } }, { "ste_inferior", { st = "inferior", st_mv = 0.25 } },
  { "ste_lateral", { st = "lateral", st_mv = 0.2 } }, { "st_depression", { std_mv = 0.2 } },
  { "t_inversion", { t_inversion = true } }, { "lvh", { lvh_mv = 4.8 } }, { "long_qt", { qt_extra_ms = 150 } },
  { "left_axis", { axis = -60 } }, { "right_axis", { axis = 120 } }, { "low_voltage", { low_voltage_mv = 0.35 } },
  { "noise", { noise = { bw = 15, pl = 25, emg = 20, em = 15 } } },
}
local files = {}
for _, c in ipairs(conds) do
  local o = { seed = seed, index = 0 }
  for k, v in pairs(c[2]) do o[k] = v end
  local r = wb.sim.record(o)
  local file = dir .. "/" .. c[1] .. ".png"
  wb.plot.ecg(r.ecg, { fs = 500, file = file, title = table.concat(r.labels, " ") .. ": " .. r.report:match("^[^.]*%.") })
  files[#files + 1] = file
end
print("sim_gallery: " .. #files .. " figures in " .. dir)
return files
