#!/usr/bin/env bash
# The `tokenize` step beside the `tokenizers` library, same run, one thread each: 10,000 varied
# sentences (accents, CJK, emoji, numbers, 1–60 words) to padded ids, attention mask and type
# ids, as one batch. Tokenizers: all-MiniLM-L6-v2's WordPiece file (Examples/minilm) and a
# byte-level BPE file the library trains here (GPT-2's pre-tokenizer, 8,000 tokens).
#
# Vessel is timed with `vessel predict --repeat` on a model that is Identity on the ids (so the
# time is the step's, plus building the tensors); the library with `encode_batch` and padding
# to the longest, then numpy arrays of the three, with TOKENIZERS_PARALLELISM=false (one
# thread). Rounds alternate; the better p50 of each tool is kept.
# Usage: Benchmarks/tokenize.sh [REPETITIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
repetitions="${1:-10}"
rounds="${2:-3}"
work=".build/bench-tokenize"
rm -rf "$work" && mkdir -p "$work"
scripts/onnx-test-data.sh >/dev/null   # the test venv: numpy, onnx, tokenizers
scripts/examples.sh >/dev/null         # Examples/minilm/tokenizer.json
python=".build/venv/bin/python"
swift build -c release --product vessel >/dev/null
vessel=".build/release/vessel"
export TOKENIZERS_PARALLELISM=false

"$python" - "$work" <<'PY'
import json, random, sys, numpy as np, onnx
from onnx import helper, TensorProto
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
work = sys.argv[1]
random.seed(11)
words = ("the quick brown fox jumps over lazy dog model serving package weights tensor image text table café naïve "
         "résumé Zürich don't I'll we've it's price $4.99 3.14159 1,000,000 2026-12-05 東京 北京大学 Привет мир "
         "😀 🚀 👍🏽 HTTP/2 snake_case camelCase supercalifragilistic tokenization throughput latency benchmark").split()
sentences = [" ".join(random.choice(words) for _ in range(random.randint(1, 60))) + random.choice([".", "!", "?", ""]) for _ in range(10000)]
json.dump(sentences, open(f"{work}/sentences.json", "w"), ensure_ascii=False)
bpe = Tokenizer(models.BPE())
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.train_from_iterator(sentences, trainers.BpeTrainer(vocab_size=8000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       special_tokens=["<pad>"]))
bpe.save(f"{work}/bpe.json")
for name, file in (("wordpiece", "Examples/minilm/tokenizer.json"), ("bpe", f"{work}/bpe.json")):
    import os, shutil
    os.makedirs(f"{work}/{name}", exist_ok=True)
    shutil.copy(file, f"{work}/{name}/tokenizer.json")
    graph = helper.make_graph([helper.make_node("Identity", ["input_ids"], ["ids"])], "identity",
                              [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
                               helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
                               helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"])],
                              [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), f"{work}/{name}/model.onnx")
    open(f"{work}/{name}/vessel.yaml", "w").write("""schemaVersion: 1
name: tokenize
version: 1.0.0
model: {format: onnx, file: model.onnx}
signature:
  inputs:
    - {name: input_ids, dtype: int64, shape: [batch, sequence]}
    - {name: attention_mask, dtype: int64, shape: [batch, sequence]}
    - {name: token_type_ids, dtype: int64, shape: [batch, sequence]}
  outputs: [{name: ids, dtype: int64, shape: [batch, sequence]}]
preprocess:
  - {type: tokenize, input: input_ids, file: tokenizer.json, padding: longest, max_length: 512, truncate: true}
""")
PY

library() {
  "$python" - "$work/$1/tokenizer.json" "$work/sentences.json" "$repetitions" <<'PY'
import json, sys, time, numpy as np
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
t.no_padding(); t.enable_padding(pad_id=0)
t.enable_truncation(max_length=512)
sentences = json.load(open(sys.argv[2]))
def run():
    e = t.encode_batch(sentences)
    return (np.array([x.ids for x in e], np.int64), np.array([x.attention_mask for x in e], np.int64),
            np.array([x.type_ids for x in e], np.int64))
run()
times = []
for _ in range(int(sys.argv[3])):
    s = time.perf_counter(); run(); times.append((time.perf_counter() - s) * 1000)
times.sort()
print(f"{times[len(times) // 2]:.1f} {times[0]:.1f}")
PY
}

vessel_p50() {
  "$vessel" predict "$work/$1" -i "text=$work/sentences.json" --repeat "$repetitions" 2>&1 >/dev/null \
    | sed -E 's/.*p50 ([0-9.]+) ms.*min ([0-9.]+) ms.*/\1 \2/'
}

for name in wordpiece bpe; do
  # Agreement first: every id of the batch equal.
  "$vessel" predict "$work/$name" -i "text=$work/sentences.json" --json > "$work/$name.vessel.json"
  "$python" - "$work/$name/tokenizer.json" "$work/sentences.json" "$work/$name.vessel.json" <<'PY'
import json, sys, numpy as np
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1]); t.no_padding(); t.enable_padding(pad_id=0); t.enable_truncation(max_length=512)
want = np.array([x.ids for x in t.encode_batch(json.load(open(sys.argv[2])))])
out = json.load(open(sys.argv[3]))["outputs"][0]
got = np.array(out["data"]).reshape(out["shape"])
print(f"{sys.argv[1]}: {want.shape[0]} sentences, {int((want != 0).sum())} tokens;", "ids equal" if got.shape == want.shape and (got == want).all() else "IDS DIFFER")
PY
  best_v=999999; best_l=999999
  echo "| round | tokenizer | tool | p50 ms | min ms |"
  echo "|---|---|---|---|---|"
  for round in $(seq 1 "$rounds"); do
    for tool in vessel library; do
      if [ "$tool" = vessel ]; then read -r p50 min < <(vessel_p50 "$name"); else read -r p50 min < <(library "$name"); fi
      echo "| $round | $name | $tool | $p50 | $min |"
      if [ "$tool" = vessel ]; then best_v=$(python3 -c "print(min($best_v, $p50))"); else best_l=$(python3 -c "print(min($best_l, $p50))"); fi
    done
  done
  echo
  echo "$name best p50: vessel $best_v ms, tokenizers $best_l ms; tokenizers / vessel = $(python3 -c "print(round($best_l / $best_v, 2))")×"
  echo
done
