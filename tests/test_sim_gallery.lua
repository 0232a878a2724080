-- test_sim_gallery.lua: one PNG per simulated condition (data/sim_gallery.lua)
-- is written and is a PNG of a 12-lead page.
local T = dofile("tests/check.lua")
local dir = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_sim_gallery"
local files = assert(loadfile("data/sim_gallery.lua"))(dir, "2")
T.ok(#files == 21, #files .. " figures")
for _, f in ipairs(files) do
  local h = io.open(f, "rb")
  local head = h and h:read(8)
  local size = h and h:seek("end")
  if h then h:close() end
  T.ok(head == "\137PNG\r\n\26\n" and size > 20000, f .. " is a PNG of " .. tostring(size) .. " bytes")
  os.remove(f)
end
os.remove(dir)
T.done()
