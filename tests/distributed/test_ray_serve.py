"""``livematte serve --engine ray`` on a real local Ray cluster (2 CPUs): the three endpoints,
and a key's rate limit and balance holding across 2 matting replicas under concurrent load."""

from __future__ import annotations

import argparse
import base64
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from media import free_port

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'livematte[ray]'")
pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install 'livematte[ray]'")
requests = pytest.importorskip("requests")

from livematte.config import load_config  # noqa: E402
from livematte.distributed import Engine  # noqa: E402
from livematte.distributed.serve import start  # noqa: E402
from livematte.server.engine import ServerSettings  # noqa: E402
from livematte.server.keys import KeyStore  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "livematte" / "samples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    db = tmp_path_factory.mktemp("keys") / "keys.db"
    with KeyStore(db) as store:
        _, slow = store.create("one per second", rate=1.0)
        _, three = store.create("three calls", calls=3, rate=1000.0)
        _, plenty = store.create("plenty", rate=1000.0)
    port = free_port()
    args = argparse.Namespace(host="127.0.0.1", port=port, engine=Engine("ray"), replicas=2,
                              cpus_per_replica=0.5, gpus_per_replica=0.0, keys_db=str(db),
                              rate=1.0)  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = load_config("default", {"runtime.mode": "image"})
    keys, _ = start(args, config, ServerSettings(keyless="off", rate=1.0, queue=64))
    yield {"url": f"http://127.0.0.1:{port}", "slow": slow, "three": three, "plenty": plenty,
           "db": db}  # fmt: skip
    from ray import serve

    serve.shutdown()
    ray.kill(keys)
    ray.shutdown()


def _post(service, route, token, **data):
    with open(SAMPLE, "rb") as photo:
        return requests.post(f"{service['url']}/api/v1/{route}", headers={"APIKEY": token},
                             files={"file": ("astronaut.jpg", photo, "image/jpeg")},
                             data=data, timeout=120)  # fmt: skip


def test_the_three_endpoints_answer_as_the_plain_server(service):
    png = _post(service, "matting", service["plenty"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    time.sleep(0.01)
    two = _post(service, "matting2", service["plenty"]).json()
    assert two["code"] == 0 and base64.b64decode(two["data"]["imageBase64"])[:4] == b"\x89PNG"
    both = _post(service, "mattingAndAnalysis", service["plenty"]).json()
    assert both["code"] == 0 and "bodyAnalysis" in both["data"]
    missing = requests.post(f"{service['url']}/api/v1/matting", timeout=30,
                            files={"file": ("a.jpg", b"x", "image/jpeg")})  # fmt: skip
    assert missing.status_code == 401


def test_one_request_per_second_holds_across_replicas(service):
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _post(service, "matting2", service["slow"]), range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 429, 429, 429, 429, 429], codes


def test_the_balance_is_charged_once_per_result_under_concurrency(service):
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _post(service, "matting2", service["three"]), range(8)))
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(ok) == 3 and len(refused) == 5, [a.status_code for a in answers]
    with KeyStore(service["db"]) as store:
        key = next(k for k in store.list() if k.name == "three calls")
    assert key.calls == 0 and key.used == 3
