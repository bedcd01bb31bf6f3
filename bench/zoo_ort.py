"""onnxruntime's single-row latency on every zoo model, for bench/zoo.sh: one JSON
object, model name -> seconds per call (median of 5 rounds of 2000 calls), in
process, on the first held-out row (the row vigil's side runs)."""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

zoo = sys.argv[1]
out = {}
for name in sorted(os.listdir(zoo)):
    path = os.path.join(zoo, name)
    if not os.path.exists(os.path.join(path, "expected.json")):
        continue
    expected = json.load(open(os.path.join(path, "expected.json")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(path, "model.onnx"), opts, providers=["CPUExecutionProvider"])
    row = np.array([[np.nan if v is None else v for v in expected["rows"][0]]], dtype=np.float32)
    feed = {sess.get_inputs()[0].name: row}
    for _ in range(200):
        sess.run(None, feed)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            sess.run(None, feed)
        rounds.append((time.perf_counter() - start) / 2000)
    out[name] = sorted(rounds)[2]
print(json.dumps(out))
