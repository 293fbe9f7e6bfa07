"""`brushwork ui`: every endpoint through gradio_client (tiny images, a few iterations), the limits, the
queue, Stop, session clean-up, traversal attempts on the file routes, instant mode hidden until a model
exists, and a real browser (Debian's chromium) painting a photo."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

gr = pytest.importorskip("gradio")
pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from brushwork import ui  # noqa: E402
from brushwork.feedforward import modelfile  # noqa: E402
from brushwork.nets.transformer import TransformerConfig, TransformerNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import ui_browser  # noqa: E402

LIMITS = ui.Limits(upload_mb=0.5, megapixels=0.1, video_seconds=2.0, audio_seconds=2.0)
SCREAM = "The Scream (Munch)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(models: Path, jobs: int = 1):
    """A server on a free port whose model folder is `models`; returns (page, url, root, the Gradio cache
    folder it replaced: one page per process is the normal case, and Gradio reads it from the environment)."""
    os.environ[modelfile.ENV_MODELS] = str(models)
    before = os.environ.get("GRADIO_TEMP_DIR")
    return (*ui.serve(port=free_port(), jobs=jobs, limits=LIMITS, device="cpu", block=False), before)


def stop_server(page, root: Path, before: str | None) -> None:
    page.close()
    shutil.rmtree(root, ignore_errors=True)
    if before is not None:
        os.environ["GRADIO_TEMP_DIR"] = before


@pytest.fixture(scope="module", autouse=True)
def environment(tmp_path_factory):
    """One thread (tiny images), and the environment variables the servers set put back afterwards."""
    saved = {k: os.environ.get(k) for k in (modelfile.ENV_MODELS, "GRADIO_TEMP_DIR")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def server(tmp_path_factory, environment):
    page, url, root, before = start(tmp_path_factory.mktemp("no-models"))
    yield page, url, root
    stop_server(page, root, before)


def picture(path: Path, width: int = 48, height: int = 32, seed: int = 0) -> Path:
    """A smooth random picture, different for each seed."""
    rng = np.random.default_rng(seed)
    small = (rng.random((3, 4, 3)) * 255).astype(np.uint8)
    Image.fromarray(small).resize((width, height), Image.BICUBIC).save(path)
    return path


@pytest.fixture
def photo(tmp_path, request) -> Path:
    """A photo of this test's own: Gradio stores uploads by content, and a session that ends deletes
    its uploads unless another session has used them in a job, which one still on its way has not."""
    return picture(tmp_path / f"{request.node.name[:60]}.png", seed=zlib.crc32(request.node.name.encode()))


def paint_args(picture_path: Path, **changes) -> list:
    args = dict(photo=handle_file(str(picture_path)), painting=SCREAM, painting_upload=None, mode=ui.BEST, model=None,
                size=32, strength=0.5, keep_colours=False, iterations=2, seed=0)
    args.update(changes)
    return list(args.values())


def session_folders(root: Path) -> list[Path]:
    folder = root / "sessions"
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --- painting a photo ------------------------------------------------------------------------------


def test_paint_shows_previews_then_the_full_size_png(server, photo) -> None:
    _, url, root = server
    client = Client(url, verbose=False)
    job = client.submit(*paint_args(photo, size=32, iterations=6), api_name="/paint")
    updates = list(job)
    final, status, download = job.result()
    assert len(updates) >= 3  # previews while it runs, then the result
    assert any("iteration" in u[1] for u in updates[:-1])
    assert "6 iterations" in status and "32x21 px" in status
    assert Image.open(final).size == (32, 21) and Image.open(final).format == "PNG"
    assert Path(download["value"]).read_bytes() == Path(final).read_bytes()
    # the result lives in this session's folder under the server's own root, nowhere else
    folders = session_folders(root)
    assert any(f.name.startswith("painting-") for folder in folders for f in folder.iterdir())


def test_keep_colours_and_an_uploaded_painting(server, photo, tmp_path) -> None:
    _, url, _ = server
    red = tmp_path / "red.png"
    Image.new("RGB", (40, 40), (220, 30, 30)).save(red)
    client = Client(url, verbose=False)
    plain = client.predict(*paint_args(photo, painting=ui.UPLOADED, painting_upload=handle_file(str(red)),
                                       strength=0.9, iterations=20), api_name="/paint")[0]
    kept = client.predict(*paint_args(photo, painting=ui.UPLOADED, painting_upload=handle_file(str(red)),
                                      strength=0.9, iterations=20, keep_colours=True), api_name="/paint")[0]
    original = np.asarray(Image.open(photo).resize((32, 21), Image.LANCZOS), dtype=float)
    redness = [np.asarray(Image.open(p), dtype=float) for p in (plain, kept)]
    # the red painting pulls the colours towards red; keeping the photo's colours undoes that
    assert (redness[0][..., 0] - redness[0][..., 1]).mean() > (original[..., 0] - original[..., 1]).mean() + 10
    assert abs(redness[1].mean((0, 1)) - original.mean((0, 1))).max() < abs(redness[0].mean((0, 1)) - original.mean((0, 1))).max()


def test_stop_keeps_the_best_image_so_far(server, photo) -> None:
    _, url, _ = server
    client = Client(url, verbose=False)
    job = client.submit(*paint_args(photo, size=48, iterations=500), api_name="/paint")
    deadline = time.monotonic() + 60
    while not any("iteration" in str(o[1]) for o in job.outputs()) and time.monotonic() < deadline:
        time.sleep(0.1)
    client.predict(api_name="/stop")  # same client, same session
    final, status, download = job.result(timeout=60)
    assert status.startswith("stopped after") and "best image so far" in status
    done = int(status.split()[2])
    assert 0 < done < 500
    assert Image.open(final).size == (48, 32) and download["value"]


def test_a_second_job_waits_in_the_queue_and_sees_its_place(server, photo) -> None:
    _, url, _ = server
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    long = first.submit(*paint_args(photo, size=48, iterations=500), api_name="/paint")
    deadline = time.monotonic() + 60
    while not long.outputs() and time.monotonic() < deadline:
        time.sleep(0.1)
    waiting = second.submit(*paint_args(photo), api_name="/paint")
    seen = None
    while time.monotonic() < deadline:
        status = waiting.status()
        if status.code.name == "IN_QUEUE" and status.rank is not None:
            seen = status
            break
        time.sleep(0.05)
    first.predict(api_name="/stop")
    long.result(timeout=60)
    assert seen is not None and seen.rank == 0 and seen.queue_size >= 1  # first in line behind the running job
    assert "2 iterations" in waiting.result(timeout=60)[1]


# --- limits and refusals ---------------------------------------------------------------------------


def refusal(client: Client, *args, api_name: str = "/paint") -> str:
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name=api_name)
    return str(info.value)


def test_limits_are_answered_with_a_clear_message(server, photo, tmp_path) -> None:
    _, url, _ = server
    client = Client(url, verbose=False)
    big = picture(tmp_path / "big.png", 400, 300)  # 0.12 megapixels, over the test's 0.1
    assert "over this page's limit of 0.1" in refusal(client, *paint_args(big))
    heavy = tmp_path / "heavy.png"  # 0.6 MB of noise, over the test's 0.5 MB
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 700, 3), dtype=np.uint8)).save(heavy)
    assert heavy.stat().st_size > 0.5e6
    message = refusal(client, *paint_args(heavy))
    assert "too large" in message.lower() or "limit" in message.lower()
    assert "no photo yet" in refusal(client, *paint_args(photo, photo=None))
    assert "greater than maximum value 1024" in refusal(client, *paint_args(photo, size=4096))
    assert "greater than maximum value 500" in refusal(client, *paint_args(photo, iterations=10**6))


def test_paintings_and_models_are_picked_by_name_never_by_path(server, photo) -> None:
    page, url, _ = server
    client = Client(url, verbose=False)
    names = ("../../etc/passwd", "/etc/passwd", str(ui.PAINTINGS[SCREAM]))
    for name in names:  # the page's own choice lists refuse them first...
        assert "not in the list of choices" in refusal(client, *paint_args(photo, painting=name))
    assert "not in the list of choices" in refusal(client, *paint_args(photo, mode=ui.INSTANT, model="/etc/passwd"))
    for name in names:  # ...and the studio behind them, for any other caller
        with pytest.raises(ui.UIError, match="unknown painting"):
            page.studio.painting(name, None, "a-session")
    with pytest.raises(ui.UIError, match="unknown instant style"):
        page.studio.model("/etc/passwd")


def test_traversal_attempts_on_the_file_routes_fail(server, photo) -> None:
    _, url, root = server
    client = Client(url, verbose=False)
    client.predict(*paint_args(photo), api_name="/paint")
    served = max(Path(root).glob("sessions/*/painting-*.png"), key=lambda p: p.stat().st_mtime)
    base = urlsplit(url)
    secret_file = Path(root).parent / "secret.txt"  # beside the server's root, never inside it
    paths = [
        "/file=../../etc/passwd", "/gradio_api/file=../../etc/passwd", "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2Fetc%2Fpasswd", "/gradio_api/file=%2Fetc%2Fpasswd",
        "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/gradio_api/file=%252e%252e%252fetc%252fpasswd",
        "/gradio_api/file=%252Fetc%252Fpasswd", f"/gradio_api/file={root}/../../etc/passwd",
        f"/gradio_api/file={root}/..%2F..%2F..%2Fetc%2Fpasswd", f"/gradio_api/file={root}/%2e%2e/{secret_file.name}",
        f"/gradio_api/file={ROOT / 'pyproject.toml'}", "/gradio_api/file=pyproject.toml",
        f"/gradio_api/file={ui.PAINTINGS[SCREAM]}",  # bundled files only as the page's cached copies
        "/static/../../../../etc/passwd", "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ]

    def get(path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)  # sends the path as written
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()

    secret_file.write_text("TOP-SECRET-CONTENT")
    try:
        for path in paths:
            status, body = get(path)
            assert status >= 400 and b"root:" not in body and b"TOP-SECRET" not in body, path
    finally:
        secret_file.unlink()
    # the control: a file this server made is served
    assert get(f"/gradio_api/file={served}") == (200, Path(served).read_bytes())
    # a file path sent as an input, instead of an upload, is refused too
    for path in ("/etc/passwd", str(ROOT / "pyproject.toml")):
        fake = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": "photo.png"}
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
        body = json.dumps({"data": [fake, SCREAM, None, ui.BEST, None, 32, 2, False, 2, 0]})
        conn.request("POST", "/gradio_api/call/paint", body, {"Content-Type": "application/json"})
        event = json.loads(conn.getresponse().read())["event_id"]
        conn.request("GET", f"/gradio_api/call/paint/{event}")
        stream = conn.getresponse().read().decode()
        assert "event: error" in stream and "root:" not in stream, stream


# --- sessions ------------------------------------------------------------------------------------


def test_a_session_s_files_are_deleted_when_it_ends(server, photo) -> None:
    _, url, root = server
    client = Client(url, verbose=False)
    before = set(session_folders(root))
    client.predict(*paint_args(photo), api_name="/paint")
    mine = set(session_folders(root)) - before
    assert len(mine) == 1
    upload = next(iter(mine))  # and its uploaded photo, in Gradio's cache under the root
    uploads = list(Path(root).rglob(photo.name))
    assert len(uploads) == 1
    # what a browser tab does: hold the heartbeat stream open, then go away
    base = urlsplit(url)
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    conn.request("GET", f"/gradio_api/heartbeat/{client.session_hash}")
    response = conn.getresponse()
    assert response.status == 200
    response.fp.readline()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    deadline = time.monotonic() + 20  # the session folder and Gradio's cached upload go one after the other
    while (upload.exists() or any(p.exists() for p in uploads)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not upload.exists()
    assert not any(p.exists() for p in uploads)


def test_sessions_idle_too_long_end_at_the_next_job(tmp_path) -> None:
    """API callers without a heartbeat never close a tab: their sessions end after a quiet spell."""
    sessions = ui.Sessions(tmp_path, idle_s=0.3)
    with sessions.job("back"):
        back = sessions.folder("back")
    with sessions.job("quiet"):
        quiet = sessions.folder("quiet")
    time.sleep(0.5)
    with sessions.job("back"):  # a user back after a long pause keeps their files; the quiet one's go
        assert back.exists() and not quiet.exists()
        with sessions.job("other"):  # a sweep while "back" runs a job leaves it alone
            pass
        assert back.exists()


def test_an_upload_another_session_uses_and_the_examples_stay(tmp_path) -> None:
    sessions = ui.Sessions(tmp_path)
    shared, example = tmp_path / "shared.png", tmp_path / "example.jpg"
    for path in (shared, example):
        path.write_bytes(b"x")
    sessions.permanent = {example.resolve()}
    for session in ("a", "b"):
        sessions.remember_upload(session, str(shared))
        sessions.remember_upload(session, str(example))
    sessions.end("a")
    assert shared.exists() and example.exists()
    sessions.end("b")
    assert not shared.exists() and example.exists()



def test_a_session_ended_mid_job_is_deleted_when_the_job_finishes(tmp_path) -> None:
    """Closing the tab during a run: the run is told to stop, saves into its folder, then all is deleted."""
    sessions = ui.Sessions(tmp_path)
    with sessions.job("a") as stop:
        folder = sessions.folder("a")
        sessions.end("a")
        assert stop.is_set() and folder.exists()  # the job may still save what it has
        (folder / "result.png").write_bytes(b"x")
    assert not folder.exists()
    with sessions.job("a"):  # the session is not stuck half-ended
        pass


def test_one_job_finishing_or_starting_never_stops_another(tmp_path) -> None:
    sessions = ui.Sessions(tmp_path)
    with sessions.job("s") as long:
        with sessions.job("s") as short:  # a second job of the same session starts and finishes
            for _ in ui.follow(lambda report: None, short):
                pass
        assert short.is_set() and not long.is_set()
        sessions.stop("s")  # the Stop button stops every job of the session
        assert long.is_set()


def test_a_session_s_own_files_are_never_taken_for_uploads(tmp_path) -> None:
    """A caller that sends another session's output as its "photo" cannot get it deleted."""
    sessions = ui.Sessions(tmp_path)
    other = sessions.folder("other") / "painted.png"
    other.write_bytes(b"x")
    sessions.remember_upload("caller", str(other))
    sessions.end("caller")
    assert other.exists()

# --- video ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    pytest.importorskip("cv2")
    from test_video import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=4)


def test_paint_video_keeps_the_audio(server, clip) -> None:
    from test_video import stream_info

    _, url, _ = server
    client = Client(url, verbose=False)
    job = client.submit(handle_file(str(clip)), SCREAM, None, ui.BEST, None, ui.CONSISTENT, 32, 2,
                        api_name="/paint_video")
    updates = list(job)
    video, status, download = job.result()
    assert any("frame 1 of 4" in u[1] for u in updates)
    assert status.startswith("4 frames, 32x24 px, with its audio")
    info = stream_info(Path(video["video"] if isinstance(video, dict) else video))
    assert "Video: h264" in info and "Audio: aac" in info


def test_a_clip_over_the_length_limit_is_refused(server, tmp_path) -> None:
    from test_video import make_clip

    _, url, _ = server
    long = make_clip(tmp_path / "long.mp4", frames=30, audio=False)  # 3 s at 10 fps, over the test's 2 s
    client = Client(url, verbose=False)
    message = refusal(client, handle_file(str(long)), SCREAM, None, ui.BEST, None, ui.CONSISTENT, 32, 2,
                      api_name="/paint_video")
    assert "3.0 s long, over this page's limit of 2 s" in message


# --- sound -------------------------------------------------------------------------------------------


def tone(path: Path, seconds: float, hz: float) -> Path:
    soundfile = pytest.importorskip("soundfile")
    t = np.arange(int(seconds * 22050)) / 22050
    soundfile.write(path, 0.3 * np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2, 22050)
    return path


def test_restyle_sound_gives_a_wav_of_the_sound_s_length(server, tmp_path) -> None:
    _, url, _ = server
    client = Client(url, verbose=False)
    sound, style = tone(tmp_path / "a.wav", 1.0, 440), tone(tmp_path / "b.wav", 0.5, 1500)
    result, status, download = client.predict(handle_file(str(sound)), handle_file(str(style)), 2, 0,
                                              api_name="/restyle_sound")
    assert status == "2 iterations in " + status.split(" in ")[1] and status.endswith("; 1.0 s")
    import soundfile

    wave, rate = soundfile.read(result)
    assert rate == 22050 and len(wave) == 22050 and np.abs(wave).max() > 0.01
    long = tone(tmp_path / "long.wav", 3.0, 440)  # over the test's 2 s
    assert "3 s long, more than the 2 s" in refusal(client, handle_file(str(long)), handle_file(str(style)), 2, 0,
                                                    api_name="/restyle_sound")


# --- instant mode -----------------------------------------------------------------------------------


def components(page, kind: str) -> list[dict]:
    return [c for c in page.config["components"] if c["type"] == kind]


def test_instant_mode_lists_the_bundled_models(server) -> None:
    page, _, _ = server  # no user-trained model: the bundled ones alone
    bundled = sorted(p.stem for p in modelfile.BUNDLED_DIR.glob("*.safetensors"))
    modes = [c for c in components(page, "radio") if c["props"].get("label") == "Mode"]
    assert bundled and modes and all(c["props"]["visible"] for c in modes)
    pickers = [c for c in components(page, "dropdown") if c["props"].get("label") == "Instant style"]
    assert pickers and all(sorted(choice[0] for choice in c["props"]["choices"]) == bundled for c in pickers)


def test_instant_mode_is_hidden_without_a_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(modelfile, "BUNDLED_DIR", tmp_path / "none")
    page, _, root, before = start(tmp_path / "no-models")
    try:
        modes = [c for c in components(page, "radio") if c["props"].get("label") == "Mode"]
        assert modes and all([choice[0] for choice in c["props"]["choices"]] == [ui.BEST, ui.FAST] for c in modes)
    finally:
        stop_server(page, root, before)


def test_fast_mode_paints_any_painting_photo_and_clip(server, photo, clip) -> None:
    from brushwork.feedforward.wct import WCTStylizer

    _, url, _ = server
    client = Client(url, verbose=False)
    final, status, _ = client.predict(*paint_args(photo, mode=ui.FAST, size=40), api_name="/paint")
    assert "arbitrary-style network" in status
    expected = WCTStylizer([ui.PAINTINGS[SCREAM]])(photo, 40)  # the page's picture is the --fast one
    assert np.array_equal(np.asarray(Image.open(final)), np.asarray(expected))
    video, status, _ = client.predict(handle_file(str(clip)), SCREAM, None, ui.FAST, None, ui.CONSISTENT, 32, 2,
                                      api_name="/paint_video")
    assert status.startswith("4 frames, 32x24 px")


def test_instant_mode_with_a_user_trained_model(tmp_path, photo, clip) -> None:
    from test_video import stream_info

    models = tmp_path / "models"
    models.mkdir()
    torch.manual_seed(0)
    net = TransformerNet(TransformerConfig(width=8, blocks=1)).eval()
    record = modelfile.style_record(Image.open(ui.PAINTINGS[SCREAM]).convert("RGB"), "the_scream.jpg", 1.0)
    modelfile.save_model(net, models / "scream.safetensors", styles=[record], training={"steps_done": 0})
    page, url, root, before = start(models)
    try:
        modes = [c for c in components(page, "radio") if c["props"].get("label") == "Mode"]
        assert modes and all(c["props"]["visible"] for c in modes)
        client = Client(url, verbose=False)
        final, status, _ = client.predict(*paint_args(photo, mode=ui.INSTANT, model="scream", size=40),
                                          api_name="/paint")
        assert "network **scream**" in status
        assert Image.open(final).size == (40, 27)
        video, status, _ = client.predict(handle_file(str(clip)), SCREAM, None, ui.INSTANT, "scream", ui.CONSISTENT,
                                          32, 2, api_name="/paint_video")
        assert status.startswith("4 frames, 32x24 px, with its audio")
        assert "Audio: aac" in stream_info(Path(video["video"] if isinstance(video, dict) else video))
    finally:
        stop_server(page, root, before)


# --- the command line --------------------------------------------------------------------------------


def test_cli_prints_the_address_and_cleans_up_when_stopped(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "brushwork.cli", "ui", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"brushwork ui: http://127.0.0.1:{port}/", proc.stderr.read() if not line else line
        assert list(tmp_path.glob("brushwork-ui-*"))  # its temporary root, Gradio's cache
    finally:
        proc.terminate()  # SIGTERM, as a service manager stops it
        returncode = proc.wait(timeout=30)
    assert returncode in (0, 130) and not list(tmp_path.glob("brushwork-ui-*")), proc.stderr.read()


def test_cli_without_gradio_says_what_to_install(monkeypatch, capsys) -> None:
    from brushwork import cli

    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.delitem(sys.modules, "brushwork.ui")
    assert cli.main(["ui"]) == cli.EXIT_ERROR
    assert "pip install 'brushwork[ui]'" in capsys.readouterr().err


# --- a real browser ------------------------------------------------------------------------------------


def test_a_browser_uploads_a_photo_picks_a_painting_and_sees_the_result(server, photo, tmp_path) -> None:
    reason = ui_browser.missing()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("selenium")
    _, url, root = server
    before = set(session_folders(root))
    browser = ui_browser.driver()
    try:
        assert ui_browser.paint(browser, url, photo, painting=1, size=32, iterations=2) == SCREAM
        assert "2 iterations" in browser.find_element("css selector", "#status").text
        shot = tmp_path / "page.png"
        assert browser.save_screenshot(str(shot)) and Image.open(shot).size[0] > 0
        mine = set(session_folders(root)) - before
        assert len(mine) == 1
    finally:
        ui_browser.close(browser)
    deadline = time.monotonic() + 20  # closing the tab ends the session: its folder goes
    while any(p.exists() for p in mine) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(p.exists() for p in mine)
