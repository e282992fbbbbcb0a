"""A real Triton Inference Server (the nvidia-pytriton wheel's tritonserver, Python backend,
CPU) serving a repository `edgeseg triton` wrote: results equal the in-process Segmenter's
over HTTP and gRPC, under concurrent clients, and bad requests get errors while the server
keeps serving, a killed client included. Slow: a server start is ~10-20 s."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgeseg.runtime import Segmenter
from edgeseg.triton.repository import RepoConfig, write

pytest.importorskip("tritonclient.http")
pytest.importorskip("tritonclient.grpc")
server = pytest.importorskip("edgeseg.triton.server")
from tritonclient.utils import InferenceServerException  # noqa: E402

from edgeseg.triton.client import TritonSegmenter  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = "bisenetv2"


@pytest.fixture(scope="module")
def served(logits_artifact, tmp_path_factory):
    try:
        server.triton_root()
    except Exception as e:
        pytest.skip(str(e))
    repo = tmp_path_factory.mktemp("repo") / "repo"
    write(RepoConfig(str(logits_artifact), str(repo), backends=("python",),
                     segmenter_backend="onnxruntime", threads=1), log=lambda m: None)
    with server.serve(repo, [MODEL], log_dir=repo.parent) as s:
        yield s


def images(n, h=40, w=70, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def local(logits_artifact):
    with Segmenter(logits_artifact, backend="onnxruntime", threads=1) as s:
        yield s


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_labels_equal_the_in_process_segmenter(served, local, protocol):
    url = served.http if protocol == "http" else served.grpc
    c = TritonSegmenter(url, MODEL, protocol)
    one = images(1)[0]
    assert np.array_equal(c.predict(one), local.predict(one))
    batch = images(3, seed=1)
    for got, want in zip(c.predict_batch(batch), local.predict_batch(batch)):
        assert got.shape == want.shape == (40, 70) and np.array_equal(got, want)
    c.close()


def test_concurrent_clients(served, local):
    """16 clients, 4 requests each, at once: every answer is its own image's labels (the
    dynamic batcher mixes requests; a mix-up would show)."""
    def client(k):
        c = TritonSegmenter(served.grpc if k % 2 else served.http, MODEL,
                            "grpc" if k % 2 else "http")
        ims = images(4, seed=100 + k)
        out = [c.predict(im) for im in ims]
        c.close()
        return ims, out

    with ThreadPoolExecutor(16) as pool:
        for ims, out in pool.map(client, range(16)):
            for im, got in zip(ims, out):
                assert np.array_equal(got, local.predict(im))


def bad_requests():
    ok = images(1)[0][None]
    return {
        "wrong dtype": (ok.astype(np.float32), "FP32"),
        "wrong shape": (np.zeros((1, 40, 70, 4), np.uint8), "UINT8"),
        "empty batch": (np.zeros((0, 40, 70, 3), np.uint8), "UINT8"),
        "empty image": (np.zeros((1, 0, 70, 3), np.uint8), "UINT8"),
        "not an image": (np.array([[b'{"hello": "json"}']], dtype=object), "BYTES"),
    }


EXPECTED = {"wrong dtype": "expects 'UINT8'", "wrong shape": "unexpected shape",
            "empty batch": "byte size mismatch", "empty image": '"image" is empty',
            "not an image": "data-type is 'BYTES'"}


@pytest.mark.parametrize("case", list(bad_requests()))
def test_bad_input_gets_an_error_and_the_server_keeps_serving(served, local, case):
    c = TritonSegmenter(served.http, MODEL)
    batch, dtype = bad_requests()[case]
    with pytest.raises(InferenceServerException) as e:
        c.infer_raw(batch, dtype=dtype)
    # a message that names the problem, from Triton's checks or from model.py's
    assert EXPECTED[case] in str(e.value)
    good = images(1, seed=7)[0]
    assert np.array_equal(c.predict(good), local.predict(good))
    assert server.ready(served.http, MODEL)
    c.close()


KILLED_CLIENT = """
import sys, numpy as np
from edgeseg.triton.client import TritonSegmenter
c = TritonSegmenter(sys.argv[1], sys.argv[2])
print("sending", flush=True)
c.predict(np.zeros((1500, 2500, 3), np.uint8))
"""


def test_a_client_killed_mid_request_loses_nothing_for_the_others(served, local):
    p = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, served.http, MODEL],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "sending"
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(lambda k: TritonSegmenter(served.http, MODEL).predict(
            images(1, seed=200 + k)[0]), k) for k in range(8)]
        time.sleep(0.05)
        p.kill()
        p.wait()
        for k, f in enumerate(futures):
            assert np.array_equal(f.result(), local.predict(images(1, seed=200 + k)[0]))
    assert p.returncode != 0 and server.ready(served.http, MODEL)


def test_a_port_taken_before_the_server_binds_it_is_retried(served, logits_artifact, tmp_path,
                                                            monkeypatch):
    """Another process listens on the HTTP port picked for the server (the race between
    picking a free port and tritonserver binding it): it exits saying so, and starts again
    on new ports."""
    import socket

    repo = tmp_path / "repo"
    write(RepoConfig(str(logits_artifact), str(repo), backends=("python",),
                     segmenter_backend="onnxruntime", threads=1), log=lambda m: None)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken, real, calls = busy.getsockname()[1], server._free_port, []

        def racing():
            calls.append(1)
            return taken if len(calls) == 1 else real()

        monkeypatch.setattr(server, "_free_port", racing)
        with server.serve(repo, [MODEL]) as s:
            assert len(calls) == 4 and str(taken) not in s.http
            assert server.ready(s.http, MODEL)
