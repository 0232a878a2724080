-- test_tokenizer.lua: wb.tokenizer, the Lua face of core/tokenizer.c (the C
-- tests in test_tokenizer.c check the algorithm; these check the wrapper:
-- options, 0-based ids, tensors, strings with NULs, save/load, errors).
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local tokenizer = wb.tokenizer

-- a small report corpus
local rhythms = { "Sinus rhythm", "Sinus tachycardia", "Atrial fibrillation", "Sinus bradycardia" }
local findings = { "Left bundle branch block.", "First-degree AV block.", "ST elevation in V1–V4.", "Normal ECG." }
local texts = {}
for i = 1, 400 do
  texts[i] = string.format("%s at %d bpm, QRS %d ms. %s", rhythms[i % 4 + 1], 50 + i % 90, 80 + i % 40,
    findings[(i * 7) % 4 + 1])
end

local tok = tokenizer.train(texts, { vocab_size = 400 })
T.ok(tok:vocab_size() == 400, "vocab 400, got " .. tok:vocab_size())
T.ok(tok:num_merges() == 400 - 256 - #tokenizer.default_specials, "merges = vocab - bytes - specials")
T.ok(tostring(tok):find("400 tokens", 1, true), "tostring: " .. tostring(tok))

-- specials: defaults, 0-based ids after the merges
local specials = tok:specials()
T.ok(#specials == 5 and specials[1] == "<pad>" and specials[5] == "<gen>", "default specials")
T.ok(tok:special_id("<pad>") == 256 + tok:num_merges(), "<pad> follows the merges")
T.ok(tok:special_id("<gen>") == 399, "<gen> is the last id")
T.fails(function() tok:special_id("<unk>") end, "unknown special token '<unk>'")

-- token <-> id
T.ok(tok:token(65) == "A" and tok:id("A") == 65, "byte tokens are their byte values")
local m = tok:merges()
T.ok(#m == tok:num_merges(), "merges list")
T.ok(tok:token(256) == tok:token(m[1][1]) .. tok:token(m[1][2]), "token 256 = merge 1's two tokens")
T.ok(tok:id(tok:token(300)) <= 300, "id(token(300))")
T.ok(tok:id("no such token here") == nil, "id of a non-token is nil")
T.fails(function() tok:token(400) end, "id 400 out of range")

-- encode / decode
local s = "Sinus rhythm at 61 bpm, QRS 88 ms. <ecg>ST elevation in V1–V4."
local ids = tok:encode(s)
T.ok(ids.dtype == "i64" and ids:dim() == 1, "encode gives i64 (n)")
T.ok(ids:size(1) < #s / 2, string.format("compresses: %d ids for %d bytes", ids:size(1), #s))
T.ok(tok:decode(ids) == s, "round trip")
local withbe = tok:encode(s, { bos = true, eos = true })
local t = withbe:totable()
T.ok(t[1] == tok:special_id("<bos>") and t[#t] == tok:special_id("<eos>") and #t == ids:size(1) + 2, "bos/eos")
T.ok(tok:decode(withbe) == "<bos>" .. s .. "<eos>", "specials decode to their text")
T.ok(tok:decode(withbe, { skip_special = true }) == s:gsub("<ecg>", ""), "skip_special")
local plain = tok:encode(s, { special = false }):totable()
local has_special = false
for _, id in ipairs(plain) do has_special = has_special or id >= 256 + tok:num_merges() end
T.ok(not has_special and tok:decode(plain) == s, "special = false: '<ecg>' is plain text")
T.ok(tok:decode({ 72, 105 }) == "Hi" and tok:decode(33) == "!", "decode a Lua list or one id")
T.ok(tok:decode({}) == "" and tok:encode(""):size(1) == 0, "empty")
local bytes = "a\0b\255\254c\0"
T.ok(tok:decode(tok:encode(bytes)) == bytes, "NULs and invalid UTF-8 round-trip")
local utf8 = "心电图 😀👍🏽 µV ±0.1 → café"
T.ok(tok:decode(tok:encode(utf8)) == utf8, "UTF-8 round-trips")
T.fails(function() tok:encode(s, { bogus = true }) end, "unknown option 'bogus'")
T.fails(function() tok:encode(s, { max_len = 3 }) end, "for encode_batch")
T.fails(function() tok:decode({ 1, 400 }) end, "id 400 at position 1 (0-based) out of range")
T.fails(function() tok:decode(wb.zeros(3)) end, "ids must be i64 or i32")
T.fails(function() tok:encode(42) end, "expected a string")

-- batches
local x, mask = tok:encode_batch({ "Sinus rhythm", "", "Atrial fibrillation at 130 bpm" }, { eos = true })
local l1, l3 = tok:encode("Sinus rhythm"):size(1) + 1, tok:encode("Atrial fibrillation at 130 bpm"):size(1) + 1
T.ok(x.dtype == "i64" and mask.dtype == "bool", "batch dtypes")
T.ok(x:size(1) == 3 and x:size(2) == l3, "batch (3, longest)")
T.ok(mask:to("f32"):sum():item() == l1 + 1 + l3, "mask counts the tokens")
local pad = tok:special_id("<pad>")
T.ok(x[2][1] == tok:special_id("<eos>") and x[2][2] == pad and mask[2][2] == 0,
  "the empty text: <eos> then <pad>")
local xl, ml = tok:encode_batch({ "Sinus rhythm", "" }, { eos = true, pad_left = true, max_len = 3 })
T.ok(xl:size(2) == 3 and ml[2]:totable()[3] == 1 and ml[2]:totable()[1] == 0 and xl[2][3] == tok:special_id("<eos>"),
  "left padding, max_len")
T.fails(function() tok:encode_batch({ "a", 3 }) end, "entry 2 must be a string")

-- add a special, save, load
local id = tok:add_special("<lead:II>")
T.ok(id == 400 and tok:vocab_size() == 401, "add_special gives the next id")
local e = tok:encode("rhythm strip<lead:II>"):totable()
T.ok(e[#e] == 400, "the new special is recognised")
local file = os.tmpname()
tok:save(file)
local tok2 = tokenizer.load(file)
T.ok(tok2:vocab_size() == 401 and tok2:num_merges() == tok:num_merges(), "load: sizes")
local same = true
for i = 1, 50 do
  local a, b = tok:encode(texts[i], { bos = true }):totable(), tok2:encode(texts[i], { bos = true }):totable()
  same = same and #a == #b
  for j = 1, #a do same = same and a[j] == b[j] end
end
T.ok(same, "load: identical encodings")
-- a corrupted copy
local f = io.open(file, "rb"); local data = f:read("*a"); f:close()
f = io.open(file, "wb"); f:write((data:gsub("merges (%d+)\n(%d)", function(n, d) return "merges " .. n .. "\n" .. (d == "1" and "2" or "1") end, 1))); f:close()
T.fails(function() tokenizer.load(file) end, "checksum mismatch")
os.remove(file)
T.fails(function() tokenizer.load(file) end, "cannot open")

-- training errors
T.fails(function() tokenizer.train(texts, { vocab_size = 100 }) end, "vocab size 100 < 256")
T.fails(function() tokenizer.new { specials = { "<a>", "<a>" } } end, "given twice")
T.fails(function() tok:train({ "x", false }, 300) end, "entry 2 must be a string")
local bare = tokenizer.new { specials = {} }
T.ok(bare:vocab_size() == 256, "no specials, no merges: 256")
T.fails(function() bare:encode("x", { bos = true }) end, "needs a special token '<bos>'")
bare:train({ "aaaa" }, 300)
T.ok(bare:num_merges() == 2 and bare:encode("aaaa"):totable()[1] == 257, "'aaaa' -> aa, aaaa")

-- pre-tokenisation
local w = tokenizer.pretokenize("Hello world's  end!! 123abc\n")
T.ok(table.concat(w, "|") == "Hello| world|'s| | end|!!| 123|abc|\n", "pretokenize: " .. table.concat(w, "|"))

-- compression on the simulator's report text (wb.sim.report via wb.sim.record):
-- a 1000-token vocabulary trained on 400 reports, measured on 200 others
if wb.sim and wb.sim.record then
  local reports = {}
  local sts = { "anterior", "inferior", "lateral" }
  for i = 1, 600 do
    local rhythm = ({ "sinus", "sinus", "afib", "aflt" })[i % 4 + 1]
    local r = wb.sim.record { seed = 11, index = i, fs = 100, seconds = 4, rhythm = rhythm, hr = 45 + (i * 37) % 90,
      pr_ms = (rhythm == "sinus" and i % 5 == 0) and 240 or nil, bbb = ({ "left", "right" })[i % 7 + 1],
      st = i % 6 == 0 and sts[i % 3 + 1] or nil, t_inversion = i % 9 == 0 or nil }
    reports[i] = r.report
  end
  local train_set, held = {}, {}
  for i = 1, 600 do table.insert(i <= 400 and train_set or held, reports[i]) end
  local rt = tokenizer.train(train_set, { vocab_size = 1000 })
  local nb, nt = 0, 0
  for _, r in ipairs(held) do
    local e = rt:encode(r)
    nb, nt = nb + #r, nt + e:size(1)
    T.ok(rt:decode(e) == r, "report round trip")
  end
  io.stderr:write(string.format("wb.sim reports: %.2f bytes/token on %d held-out reports (vocab %d)\n", nb / nt, #held, rt:vocab_size()))
  T.ok(nb / nt > 2, string.format("compression on held-out sim reports: %.2f bytes/token", nb / nt))
else
  T.ok(false, "wb.sim.record is missing")
end

-- freeing
tok2:free()
T.fails(function() tok2:encode("x") end, "the tokenizer was freed")
tok2:free()

T.done()
