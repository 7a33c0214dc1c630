"""``vidpop serve --workers N`` (issue 17 §3): N server processes on one port, each with its own copy of the
models, sharing one work folder that the parent removes when they stop. The model is an item-KNN fitted on a
SYNTHETIC interaction log (labelled) so the server starts in seconds."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_serve_recommending import synthetic_log
from vidpop.errors import VidpopError
from vidpop.models.rec_baselines.itemknn import ItemKNNRecommender


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads worker processes from /proc")
def test_two_workers_answer_on_one_port_and_share_one_work_folder(tmp_path: Path) -> None:
    data = synthetic_log()
    ItemKNNRecommender(ItemKNNRecommender.Config()).fit(data).save(tmp_path / "models" / "knn")
    port = _free_port()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "vidpop.cli", "serve", "--models", str(tmp_path / "models"), "--port", str(port),
           "--workers", "2", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    work = Path("/tmp") / f"vidpop-serve-{proc.pid}"
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
            try:
                status, _ = _get(port, "/health")
            except OSError:
                status = 0
            workers = [p for p in _children(proc.pid) if "vidpop" in Path(f"/proc/{p}/cmdline").read_text()
                       or "multiprocessing" in Path(f"/proc/{p}/cmdline").read_text()]  # fmt: skip
            if status == 200 and len(workers) >= 2:
                break
            time.sleep(0.5)
        assert len(workers) >= 2, f"expected 2 worker processes, found {workers}"
        for u in ("u0", "u3", "u7"):
            status, body = _get(port, f"/recommend/{u}?k=5")
            assert status == 200
            items = json.loads(body)["items"]
            assert len(items) == 5
        assert (work / "uploads").is_dir()  # the one folder every worker writes to
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert not work.exists(), "the parent removes the shared work folder when the workers are gone"


def test_worker_factory_needs_the_parents_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidpop.serve.app import app_from_environment

    monkeypatch.delenv("VIDPOP_SERVE_MODELS", raising=False)
    with pytest.raises(VidpopError, match="--workers"):
        app_from_environment()


def test_every_setting_reaches_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent passed a hand-made list of settings to the workers, and ``warm`` was missing from it."""
    import uvicorn

    from vidpop.serve import app as app_module

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv(app_module._ENV_SETTINGS, "{}")
    settings = app_module.ServeSettings(warm=False, k=7, max_history=12, work_dir=tmp_path / "work")
    app_module.serve(tmp_path, settings=settings, workers=2)
    sent = json.loads(os.environ[app_module._ENV_SETTINGS])
    assert calls and calls[0]["workers"] == 2 and calls[0]["factory"] is True
    assert sent["warm"] is False and sent["k"] == 7 and sent["max_history"] == 12
    assert sent["work_dir"] == str(tmp_path / "work")
    assert app_module.ServeSettings(**{**sent, "work_dir": Path(sent["work_dir"])}).warm is False
