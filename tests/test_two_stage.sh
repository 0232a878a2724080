#!/bin/sh
# test_two_stage.sh: the main job, recipes/two_stage.lua, end to end at toy
# size on a small simulated corpus: it runs, prints its metrics, writes its
# page with the figures and a model that loads and answers both kinds of
# request; a bad option stops it with a message.
set -e
. tests/hostlib.sh
dir=$tmp
"$ECGWB" -e "require('ecgwb').sim.make_corpus { out = '$dir/c.h5', n = 40, fs = 500, seconds = 10, seed = 3, split = { 60, 10, 30 }, progress = false }"
"$ECGWB" recipes/two_stage.lua --corpus="$dir/c.h5" --out="$dir/run" --stage1_encoder_steps=5 --stage1_steps=5 \
    --text_steps=5 --align_steps=5 --vae_steps=5 --gen_steps=5 --clf_steps=20 --n_eval=4 --sample_steps=2 --requests_per_record=1 \
    --lm_layers=1 --lm_width=32 > "$dir/log" 2>&1 \
    || { cat "$dir/log"; fail "two_stage.lua failed"; }
grep -q "label F1 micro" "$dir/log" || fail "no interpretation metrics"
grep -q '"lm_over":{[^}]*"n_embd":32' "$dir/run/stage1/model/config.json" && grep -q '"n_layer":1' "$dir/run/stage1/model/config.json" \
    || fail "--lm_layers/--lm_width did not reach the stage-1 LM: $(cat "$dir/run/stage1/model/config.json")"
grep -q "condition space: InfoNCE .* same findings" "$dir/log" || fail "no condition-space training"
grep -q "HR MAE .* condition accuracy .* rFID" "$dir/log" || fail "no generation metrics"
grep -q "condition accuracy [01]\.[0-9][0-9][0-9] (2 classifiers' mean probabilities; each alone [01]\.[0-9][0-9][0-9], [01]\.[0-9][0-9][0-9];" "$dir/log" \
    || fail "condition accuracy does not come from an ensemble of 2 with its members' figures"
grep -q "experience prior: [0-9]* training records' beats and residuals (residual power / signal power 0\.[0-9]*)" "$dir/log" \
    || fail "no experience prior for the sampling start"
grep -q "from noise, without the experience start, [01]\.[0-9][0-9][0-9], against [01]\.[0-9][0-9][0-9] with it, on the first 4 requests" "$dir/log" || fail "no from-noise condition accuracy"
grep -q "experience retrieval: a test request's training record has its condition in [01]\.[0-9]* (by the request's words; by its aligned <gen> states it would be [01]\.[0-9]*)" "$dir/log" \
    || fail "no experience retrieval accuracy"
grep -q '"prior_start":0.15' "$dir/run/model/config.json" || fail "the saved model does not start from the experience prior"
grep -q "done. The run's page: $dir/run/report.html" "$dir/log" || fail "the page's path is not printed"
test "$(grep -o 'data:image/png;base64' "$dir/run/report.html" | wc -l)" -ge 3 || fail "the page has fewer than 3 figures"
"$ECGWB" -e "
local wb = require 'ecgwb'
local U = require 'ecgwb.models.uniecg'
local uni = U.load('$dir/run/model')
local g = uni:respond { text = 'Generate an ECG showing atrial fibrillation at 110 bpm', seed = 1 }
assert(g.kind == 'ecg' and g.ecg:size(1) == 12 and g.ecg:size(2) == 1024, 'generation')
-- the request bank: one training request per record (--requests_per_record=1), each naming its record
assert(uni.request_bank:size(1) == uni.exp_templates:size(1) and uni.request_rows:get(uni.request_rows:size(1)) == uni.request_bank:size(1) - 1, 'request bank')
local r = uni:respond { ecg = wb.sim.ecg { fs = 500, seconds = 10, seed = 4 }, fs = 500, max_new_tokens = 8 }
assert(r.kind == 'report' and type(r.text) == 'string', 'report')
print('loaded model answers')" | grep -q "loaded model answers" || fail "the saved model does not load and answer"
# the demo notebook on the model just trained: it runs, and its page holds
# the figures of each cell (12-lead plots of real and generated ECGs, the
# guidance overlay); without a model it stops with a message saying what to do
ECGWB_UNIECG_MODEL="$dir/run/model" "$ECGWB" notebook run notebooks/two_stage_demo.lua --out "$dir/demo.html" --quiet \
    || fail "the two-stage demo notebook failed"
/usr/bin/python3 tests/check_notebook_html.py page notebooks/two_stage_demo.lua "$dir/demo.html" --figures "2=2,3=4,5=1" \
    > /dev/null || fail "the demo notebook's page"
grep -q "HR measured on the generated ECG" "$dir/demo.html" || fail "the demo has no HR table"
grep -q "guidance 4: measured HR" "$dir/demo.html" || fail "the demo has no guidance comparison"
if ECGWB_UNIECG_MODEL="$dir/none" "$ECGWB" notebook run notebooks/two_stage_demo.lua --out "$dir/demo2.html" --quiet \
    > "$dir/log3" 2>&1; then fail "the demo ran without a model"; fi
grep -q "run \`make run\`" "$dir/demo2.html" || fail "no message for a missing model: $(cat "$dir/log3")"
if "$ECGWB" recipes/two_stage.lua --corpus="$dir/c.h5" --gen_stepz=5 > "$dir/log2" 2>&1; then fail "a misspelt option was accepted"; fi
grep -q "unknown option 'gen_stepz'" "$dir/log2" || fail "no message for a misspelt option: $(cat "$dir/log2")"
if "$ECGWB" recipes/two_stage.lua --corpus="$dir/c.h5" --gen_crop=6 > "$dir/log4" 2>&1; then fail "gen_crop=6 was accepted"; fi
grep -q "gen_crop must be false or a multiple of 4" "$dir/log4" || fail "no message for a bad gen_crop: $(cat "$dir/log4")"
if "$ECGWB" recipes/two_stage.lua --corpus="$dir/c.h5" --vae_crop=100 > "$dir/log5" 2>&1; then fail "vae_crop=100 was accepted"; fi
grep -q "vae_crop must be a multiple of 8, got 100" "$dir/log5" || fail "no message for a bad vae_crop: $(cat "$dir/log5")"
grep -q "stage 1" "$dir/log5" && fail "a bad vae_crop was found only after stage 1 started"
echo ok
