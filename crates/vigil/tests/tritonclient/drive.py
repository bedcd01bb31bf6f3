"""Drives a running vigil with the real tritonclient (HTTP) and prints what it saw as
JSON, for crates/vigil/tests/tritonclient.rs to check against /predict's answers.

    python drive.py HOST:PORT '[[row], ...]'
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

url, rows = sys.argv[1], np.array(json.loads(sys.argv[2]), dtype=np.float32)
client = httpclient.InferenceServerClient(url=url)
MODEL = "defect-detector"


def outputs(result):
    labels = result.as_numpy("label")
    return {
        "probabilities": result.as_numpy("probabilities").tolist(),
        "label": [x.decode() if isinstance(x, bytes) else x for x in labels.tolist()],
        "response": result.get_response(),
    }


def infer(data, datatype="FP32", binary=True, asked=None, **kwargs):
    tensor = httpclient.InferInput("input", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    return client.infer(MODEL, [tensor], outputs=asked, **kwargs)


def refusal(call):
    try:
        call()
    except InferenceServerException as e:
        return {"status": e.status(), "message": e.message()}
    return None


seen = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready(MODEL),
    "model_version_ready": client.is_model_ready(MODEL, "1.0.0"),
    "unknown_model_ready": client.is_model_ready("nope"),
    "server": client.get_server_metadata(),
    "metadata": client.get_model_metadata(MODEL),
    "metadata_version": client.get_model_metadata(MODEL, "1.0.0"),
    # tritonclient's defaults: binary tensors both ways.
    "binary": outputs(infer(rows)),
    # JSON both ways, outputs asked for one by one, with an id to echo.
    "json": outputs(infer(rows, binary=False, request_id="req-7", asked=[
        httpclient.InferRequestedOutput("probabilities", binary_data=False),
        httpclient.InferRequestedOutput("label", binary_data=False),
    ])),
    "versioned": outputs(infer(rows, model_version="1.0.0")),
    # numpy's default float64, with values that are exactly FP32.
    "fp64": outputs(infer(rows.astype(np.float64), datatype="FP64")),
    "unknown_model": refusal(lambda: client.infer("nope", [httpclient.InferInput("input", [1, 6], "FP32")])),
    "wrong_shape": refusal(lambda: infer(rows[:, :5])),
    "non_finite": refusal(lambda: infer(np.full((1, 6), np.nan, dtype=np.float32))),
}
print(json.dumps(seen))
