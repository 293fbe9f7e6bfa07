"""`brushwork ui`: a local web page (Gradio) over the Python API, for people who never open a terminal.

What the server may read and serve is kept small on purpose (Gradio's file-access CVEs of 2023-2026):
its temporary root is also Gradio's cache (GRADIO_TEMP_DIR), so uploads land there and results are
written there and served in place; `allowed_paths` stays empty, and the bundled paintings and example
photo reach the page as cached copies. Paintings and models are picked by name from fixed lists, never
by a path the browser sends. Each session's files live in a folder with a random name that is deleted
when the session ends (tab closed, or two hours without a job); the root goes when the server stops.

Heavy jobs share one queue per device (`jobs` at a time, 1 by default): the optimiser fills a CPU on
its own, and Gradio shows a waiting user their place in the queue.
"""

from __future__ import annotations

import math
import os
import queue
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from . import audio, images, presets
from .assets import DEMO_CONTENT, DEMO_MELODY, DEMO_SPEECH, DEMO_WHALE, PAINTINGS
from .errors import BrushworkError, raise_interrupt
from .weights import LoadedWeights, load_weights

UPLOADED = "Your painting (upload below)"
BEST, FAST, INSTANT = "Best quality", "Fast (any painting, one pass)", "Instant"
CONSISTENT, FRAME_BY_FRAME = "Consistent (optical flow)", "Frame by frame"
PREVIEWS = 20  # live previews per run, about: every few iterations, whatever the length


@dataclass(frozen=True)
class Limits:
    """What one upload or one run may ask of a shared machine; each refusal says which limit and why."""

    upload_mb: float = 25.0  # any uploaded file (Gradio refuses larger ones before they are stored)
    megapixels: float = 25.0  # photo and painting, read from the header before decoding
    video_seconds: float = 10.0
    audio_seconds: float = 10.0  # a sound (content or style): about a minute's run with the defaults
    size: int = 1024  # longest side of a painted photo
    video_size: int = 512
    iterations: int = 500
    # A session also ends after this long without a job: API callers that keep no heartbeat (plain
    # HTTP) never close a tab, and each of their calls is a new session.
    session_idle_s: float = 2 * 3600


class UIError(BrushworkError, ValueError):
    """Input the page refuses; the message (shown to the user) says what to do instead."""


class Sessions:
    """Per-session folders, uploads and stop flags, keyed by Gradio's session hash.

    A folder's name is random, not the session hash: URLs of one session's files cannot be derived
    from anything another session sees."""

    def __init__(self, root: Path, idle_s: float = Limits.session_idle_s) -> None:
        self.root, self.uploads_root, self.idle_s = root / "sessions", root, idle_s
        self._lock = threading.Lock()
        self._folders: dict[str, Path] = {}
        self._stops: dict[str, set[threading.Event]] = {}  # one flag per running job
        self._uploads: dict[str, set[Path]] = {}
        self._busy: dict[str, int] = {}  # jobs running
        self._seen: dict[str, float] = {}  # when the last job ended
        self._ending: set[str] = set()  # ended while a job ran: deleted when its last job finishes
        # Gradio stores uploads by content, so sessions can share one file, and the page's example photo
        # and paintings are files in the same cache: never deleted with a session
        self.permanent: set[Path] = set()

    def folder(self, session: str) -> Path:
        with self._lock:
            if session not in self._folders:
                self._folders[session] = self.root / secrets.token_hex(16)
                self._folders[session].mkdir(parents=True)
            return self._folders[session]

    @contextmanager
    def job(self, session: str) -> Iterator[threading.Event]:
        """While a job of `session` runs: a stop flag of its own (one job finishing never stops another),
        and the session counts as active. Other sessions idle for longer than `idle_s` end first."""
        stop = threading.Event()
        with self._lock:
            self._busy[session] = self._busy.get(session, 0) + 1
            self._stops.setdefault(session, set()).add(stop)
        self.sweep()
        try:
            yield stop
        finally:
            with self._lock:
                self._busy[session] -= 1
                self._stops[session].discard(stop)
                self._seen[session] = time.monotonic()
                last = not self._busy[session] and session in self._ending
            if last:
                self.end(session)

    def stop(self, session: str) -> None:
        """The Stop button: every running job of the session stops (keeping its best so far)."""
        with self._lock:
            flags = list(self._stops.get(session, ()))
        for flag in flags:
            flag.set()

    def sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [s for s, t in self._seen.items() if not self._busy.get(s) and now - t > self.idle_s]
        for session in idle:
            self.end(session)

    def remember_upload(self, session: str, path: str | None) -> None:
        """An uploaded file (in Gradio's cache, our root) to delete with the session."""
        resolved = Path(path).resolve() if path else None
        # never a session's own output (another session's folder): only Gradio's upload cache
        if (resolved and resolved.is_relative_to(self.uploads_root.resolve())
                and not resolved.is_relative_to(self.root.resolve())):
            with self._lock:
                self._uploads.setdefault(session, set()).add(resolved)

    def end(self, session: str) -> None:
        """Stop the session's jobs and delete everything it made, and the uploads no other session uses.
        With a job still running, the deletion waits for the job to finish (`job`)."""
        self.stop(session)
        with self._lock:
            if self._busy.get(session):
                self._ending.add(session)
                return
            self._ending.discard(session)
            folder = self._folders.pop(session, None)
            self._stops.pop(session, None)
            uploads = self._uploads.pop(session, set()) - self.permanent
            uploads -= set().union(*self._uploads.values())
            self._busy.pop(session, None)
            self._seen.pop(session, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        for path in uploads:
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
            except OSError:
                pass


class Stopped(Exception):
    """A job ended by the Stop button (or its session ending) before it had anything to show."""


def follow(work: Callable[[Callable[[Any], None]], Any], stop: threading.Event) -> Iterator[tuple[bool, Any]]:
    """Run `work(report)` in a thread; yield (False, item) for each reported item, then (True, result).

    The engine reports through callbacks; a Gradio generator must yield. If the generator is closed
    (the user left, or Gradio cancelled the event) the job is told to stop and is waited for."""
    items: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work(lambda item: items.put((False, item)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = exc
        items.put((True, None))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        while True:
            done, item = items.get()
            if done:
                break
            yield False, item
    finally:
        stop.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    yield True, outcome["result"]


def check_file_size(path: str, what: str, limits: Limits) -> None:
    """Gradio refuses larger uploads at the door; this also covers files that reach a job another way."""
    megabytes = os.path.getsize(path) / 1e6
    if megabytes > limits.upload_mb:
        raise UIError(f"{Path(path).name}: the {what} is {megabytes:.1f} MB, over this page's limit of "
                      f"{limits.upload_mb:g} MB; export a smaller file")


def check_image(path: str | None, what: str, limits: Limits) -> Image.Image:
    """Load an uploaded image after checking its file size and pixel count (from the header, before
    decoding: a small file can claim a huge image)."""
    if not path:
        raise UIError(f"no {what} yet: upload one" + (" or pick the example" if what == "photo" else ""))
    check_file_size(path, what, limits)
    try:
        with Image.open(path) as probe:
            width, height = probe.size
    except Exception:  # noqa: BLE001 - images.load below names the problem in one line
        width = height = 0
    if width * height > limits.megapixels * 1e6:
        raise UIError(f"{Path(path).name}: the {what} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
                      f"over this page's limit of {limits.megapixels:g}; resize it first")
    return images.load(path)


def as_seed(seed: float | None) -> int | None:
    """The page's seed box: empty means a fresh random start."""
    if seed is None or (isinstance(seed, float) and math.isnan(seed)):
        return None
    return as_int(seed, "seed", 0, 2**63 - 1)


def as_int(value: float | None, name: str, low: int, high: int) -> int:
    """A number from the page (sliders send floats; the API may send anything) as an int in range."""
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UIError(f"{name} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise UIError(f"{name} must be between {low} and {high} on this page, not {number}")
    return number


class Studio:
    """The page's jobs, independent of its layout: paint a photo, paint a clip, stop, end a session."""

    def __init__(self, root: Path, limits: Limits = Limits(), device: str | None = None,
                 weights: LoadedWeights | None = None) -> None:
        self.limits, self.device = limits, device
        self.sessions = Sessions(root, limits.session_idle_s)
        self.weights = weights or load_weights()  # read once
        self._idle: list[Any] = []  # optimisers not in use: at most one per job that ran at once
        self._fast: Any = None  # the arbitrary-style network, loaded by the first fast job
        self._lock = threading.Lock()

    # --- choices -----------------------------------------------------------------------------------

    @staticmethod
    def models() -> dict[str, Path]:
        """The instant-style networks a user can pick: bundled and user-trained, readable ones only."""
        from .feedforward.modelfile import list_models

        return {name: path for name, _, path, header in list_models() if header is not None}

    def painting(self, choice: str, upload: str | None, session: str) -> Image.Image:
        if choice == UPLOADED:
            self.sessions.remember_upload(session, upload)
            return check_image(upload, "painting", self.limits)
        if choice not in PAINTINGS:
            raise UIError(f"unknown painting {choice!r}; pick one from the gallery or upload your own")
        return images.load(PAINTINGS[choice])

    def model(self, choice: str | None) -> Any:
        known = self.models()
        if choice not in known:
            raise UIError(f"unknown instant style {choice!r}; pick one of: {', '.join(known) or 'none'}")
        return _instant(str(known[choice]), self.device)

    def fast(self, style: Image.Image) -> Any:
        """The arbitrary-style network (`--fast`) with `style`: loaded once, restyled for each job."""
        from .feedforward.wct import WCTStylizer

        with self._lock:
            if self._fast is None:
                self._fast = WCTStylizer([style], device=self.device)
            base = self._fast
        return base.restyled([style])

    @contextmanager
    def stylizer(self, config: presets.Config) -> Iterator[Any]:
        """An optimiser for one job, with `config`. Its network is built once and reused by later jobs
        (the page changes only settings the network does not depend on: size, weights, iterations,
        colours), so memory stays flat however many jobs pass, and no two jobs share one at a time."""
        from .optimise import Stylizer

        with self._lock:
            engine = self._idle.pop() if self._idle else None
        if engine is None:
            engine = Stylizer(config, weights=self.weights, device=self.device)
        engine.config = config
        try:
            yield engine
        finally:
            with self._lock:
                self._idle.append(engine)

    # --- one photo ---------------------------------------------------------------------------------

    def paint(self, photo: str | None, painting: str, painting_upload: str | None, mode: str,
              model: str | None, size: float, style_weight: float, keep_colours: bool, iterations: float,
              seed: float, request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Yield (image, status, download) as the run goes: previews, then the full-size PNG."""
        session = request.session_hash
        with self.sessions.job(session) as stop:
            yield from self._paint(session, stop, photo, painting, painting_upload, mode, model, size,
                                   style_weight, keep_colours, iterations, seed, progress)

    def _paint(self, session: str, stop: threading.Event, photo: str | None, painting: str,
               painting_upload: str | None, mode: str, model: str | None, size: float, style_weight: float,
               keep_colours: bool, iterations: float, seed: float, progress: gr.Progress) -> Iterator[tuple]:
        try:
            self.sessions.remember_upload(session, photo)
            content = check_image(photo, "photo", self.limits)
            side = as_int(size, "size", 32, self.limits.size)
            folder = self.sessions.folder(session)
            if mode in (INSTANT, FAST):
                paint = self.model(model) if mode == INSTANT else \
                    self.fast(self.painting(painting, painting_upload, session))
                progress(0.5, desc="painting")
                out = images.to_tensor(paint(content, side), paint.device)
                if keep_colours:
                    out = images.luminance_transfer(out, images.to_tensor(images.fit(content, side), paint.device))
                result = images.to_image(out)
                note = f"painted in one pass by the network **{model}**" if mode == INSTANT else \
                    "painted in one pass by the arbitrary-style network (**fast**)"
            else:
                style = self.painting(painting, painting_upload, session)
                config = presets.get("default").with_(
                    size=side, style_weight=float(style_weight),
                    iterations=as_int(iterations, "iterations", 1, self.limits.iterations),
                    preserve_colors="luminance" if keep_colours else None)
                with self.stylizer(config) as stylizer:
                    result, note = yield from self._optimise(stylizer, content, style, seed, stop, folder, progress)
        except BrushworkError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        path = images.save(result, folder / f"painting-{secrets.token_hex(4)}.png")
        yield str(path), f"{note}; {result.width}x{result.height} px", gr.DownloadButton(value=str(path), visible=True)

    def _optimise(self, stylizer: Any, content: Image.Image, style: Image.Image, seed: float | None,
                  stop: threading.Event, folder: Path, progress: gr.Progress):
        """The optimiser in a thread, its previews yielded as they come; returns (image, note)."""
        seed_value = as_seed(seed)

        def work(report: Callable[[Any], None]):
            every = max(1, sum(n for _, n in stylizer.levels(content)) // PREVIEWS)

            def callback(step) -> None:
                if stop.is_set():
                    raise KeyboardInterrupt  # the engine's own early stop: it keeps the best image so far
                if step.iteration % every == 0 or step.iteration == step.total:
                    report(step)
                else:
                    report((step.iteration, step.total))

            try:
                return stylizer.run(content, [style], callback=callback, seed=seed_value)
            except KeyboardInterrupt:  # stopped before the first iteration finished
                raise Stopped from None

        for old in folder.glob("preview-*.jpg"):  # the session's previous run's: the page has moved on
            old.unlink(missing_ok=True)
        try:
            for done, item in follow(work, stop):
                if done:
                    result = item
                    break
                if isinstance(item, tuple):
                    progress(item, desc="iterations", unit="iterations")
                    continue
                progress((item.iteration, item.total), desc="iterations", unit="iterations")
                # kept until the session's next run (about PREVIEWS small files): the page, or an API
                # client that fetches every update, may still be reading an earlier one
                preview = images.save(item.image, folder / f"preview-{secrets.token_hex(4)}.jpg")
                yield str(preview), f"iteration {item.iteration} of {item.total}", gr.DownloadButton(visible=False)
        except Stopped:
            raise UIError("stopped before the first iteration: nothing to keep") from None
        if result.interrupted:
            return result.image, f"stopped after {result.iterations} iterations: the best image so far"
        return result.image, f"{result.iterations} iterations in {result.seconds:.1f} s"

    # --- a clip ------------------------------------------------------------------------------------

    def paint_video(self, clip: str | None, painting: str, painting_upload: str | None, mode: str,
                    model: str | None, consistency: str, size: float, iterations: float, request: gr.Request,
                    progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Yield (video, status, download): progress as frames finish, then the MP4 with the clip's audio."""
        session = request.session_hash
        with self.sessions.job(session) as stop:
            yield from self._paint_video(session, stop, clip, painting, painting_upload, mode, model, consistency,
                                         size, iterations, progress)

    def _paint_video(self, session: str, stop: threading.Event, clip: str | None, painting: str,
                     painting_upload: str | None, mode: str, model: str | None, consistency: str, size: float,
                     iterations: float, progress: gr.Progress) -> Iterator[tuple]:
        from . import video

        try:
            if not clip:
                raise UIError("no clip yet: upload a short video")
            self.sessions.remember_upload(session, clip)
            check_file_size(clip, "clip", self.limits)
            info = video.probe(clip)
            seconds = info.frames / float(info.fps) if info.frames is not None else None
            if seconds is not None and seconds > self.limits.video_seconds:
                raise UIError(f"{Path(clip).name}: the clip is {seconds:.1f} s long, over this page's limit of "
                              f"{self.limits.video_seconds:g} s; trim it first")
            max_frames = max(1, math.floor(self.limits.video_seconds * float(info.fps)))
            side = as_int(size, "size", 32, self.limits.video_size)
            output = self.sessions.folder(session) / f"painted-{secrets.token_hex(4)}.mp4"

            def work(report: Callable[[Any], None]):
                def callback(*args) -> None:  # the optimiser's FrameDone, or the network's (index, total)
                    index, total = (args[0].index, args[0].total) if len(args) == 1 else args
                    report((index + 1, total))
                    if stop.is_set():
                        raise KeyboardInterrupt
                try:
                    if mode in (INSTANT, FAST):
                        from .feedforward.infer import TEMPORAL, stylize_video
                        paint = self.model(model).model if mode == INSTANT else \
                            self.fast(self.painting(painting, painting_upload, session))
                        return stylize_video(clip, paint, output, size=side, max_frames=max_frames,
                                             temporal=TEMPORAL if consistency == CONSISTENT else 0.0,
                                             callback=callback, device=self.device)
                    style = self.painting(painting, painting_upload, session)
                    config = presets.get("default").with_(
                        size=side, iterations=as_int(iterations, "iterations", 1, self.limits.iterations))
                    with self.stylizer(config) as stylizer:
                        return video.stylize_video(clip, style, output, config=config, max_frames=max_frames,
                                                   temporal_weight=video.TEMPORAL_WEIGHT if consistency == CONSISTENT else 0.0,
                                                   callback=callback, stylizer=stylizer)
                except KeyboardInterrupt:
                    raise Stopped from None

            for done, item in follow(work, stop):
                if done:
                    result = item
                    break
                frame, total = item
                progress((frame, total), desc="frames", unit="frames")
                yield None, f"frame {frame} of {total or '?'} done", gr.DownloadButton(visible=False)
        except Stopped:
            raise gr.Error("stopped: a video is only written once every frame is painted",
                           print_exception=False) from None
        except BrushworkError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        sound = "with its audio" if result.audio else "(the clip has no audio)"
        yield (str(result.output), f"{result.frames} frames, {result.size[0]}x{result.size[1]} px, {sound}, "
                                   f"in {result.seconds:.0f} s", gr.DownloadButton(value=str(result.output), visible=True))

    # --- a sound ------------------------------------------------------------------------------------

    def restyle_sound(self, sound: str | None, style: str | None, iterations: float, seed: float,
                      request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator[tuple]:
        """Yield (sound, status, download) once: `sound` in the style of `style` (brushwork.audio), a WAV."""
        session = request.session_hash
        with self.sessions.job(session) as stop:
            yield from self._restyle_sound(session, stop, sound, style, iterations, seed, progress)

    def _restyle_sound(self, session: str, stop: threading.Event, sound: str | None, style: str | None,
                       iterations: float, seed: float, progress: gr.Progress) -> Iterator[tuple]:
        try:
            settings = audio.DEFAULT.with_(iterations=as_int(iterations, "iterations", 1, self.limits.iterations))
            folder = self.sessions.folder(session)  # before the run: a session ended meanwhile makes none
            waves = []
            for path, what in ((sound, "sound"), (style, "style sound")):
                if not path:
                    raise UIError(f"no {what} yet: upload one or pick an example")
                self.sessions.remember_upload(session, path)
                check_file_size(path, what, self.limits)
                waves.append(audio.load(path, settings.rate, max_seconds=self.limits.audio_seconds))

            def work(report: Callable[[Any], None]):
                def callback(step) -> None:
                    if stop.is_set():
                        raise KeyboardInterrupt  # the run keeps the best so far, as after Ctrl-C
                    report((step.iteration, step.total))

                return audio.stylize(*waves, settings, seed=as_seed(seed), callback=callback,
                                     device=self.device or "cpu")

            for done, item in follow(work, stop):
                if done:
                    result = item
                    break
                progress(item, desc="iterations", unit="iterations")
            path = audio.save(result.wave, folder / f"sound-{secrets.token_hex(4)}.wav",
                              result.rate)
        except BrushworkError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        note = (f"stopped after {result.iterations} iterations: the best so far" if result.interrupted
                else f"{result.iterations} iterations in {result.seconds:.1f} s")
        yield str(path), f"{note}; {result.wave.numel() / result.rate:.1f} s", \
            gr.DownloadButton(value=str(path), visible=True)

    # --- session -----------------------------------------------------------------------------------

    def stop(self, request: gr.Request) -> None:
        self.sessions.stop(request.session_hash)

    def end_session(self, request: gr.Request) -> None:
        self.sessions.end(request.session_hash)


@lru_cache(maxsize=4)
def _instant(path: str, device: str | None):
    """A loaded network, kept across requests (a few MB each)."""
    from .feedforward.infer import InstantStylizer

    return InstantStylizer(path, device=device)


def _style_picker(key: str) -> tuple[gr.Dropdown, gr.Image]:
    """The gallery of bundled paintings, the chosen painting's name, and an upload of one's own."""
    names = list(PAINTINGS)
    gallery = gr.Gallery(value=[(str(p), n) for n, p in PAINTINGS.items()], label="Paintings (click one)",
                         columns=2, height=300, allow_preview=False, elem_id=f"{key}-gallery")
    choice = gr.Dropdown([*names, UPLOADED], value=names[0], label="Painting", elem_id=f"{key}-painting")
    upload = gr.Image(label="…or upload any painting", type="filepath", image_mode=None, sources=["upload"],
                      height=140, elem_id=f"{key}-painting-upload")

    def pick(evt: gr.SelectData) -> str:
        return names[evt.index]

    gallery.select(pick, None, choice, queue=False, api_name=False)
    upload.upload(lambda: UPLOADED, None, choice, queue=False, api_name=False)
    return choice, upload


def _mode_picker(models: list[str]) -> tuple[gr.Radio, gr.Dropdown]:
    """Best quality (the optimiser), fast (any painting, one pass) and, only when a trained network exists
    (not faked before that), instant."""
    mode = gr.Radio([BEST, FAST, *([INSTANT] if models else [])], value=BEST, label="Mode")
    model = gr.Dropdown(models, value=models[0] if models else None, label="Instant style", visible=False)
    mode.change(lambda m: gr.Dropdown(visible=m == INSTANT), mode, model, queue=False, api_name=False)
    return mode, model


def build(studio: Studio, jobs: int = 1) -> gr.Blocks:
    """The page. `jobs`: heavy jobs (photo or video) that may run at once on the device."""
    limits = studio.limits
    models = list(studio.models())
    heavy = dict(concurrency_id="device", concurrency_limit=jobs)
    with gr.Blocks(title="brushwork", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown("# brushwork\nRepaint a photo in the style of a painting.")
        with gr.Tab("Photo"):
            with gr.Row():
                with gr.Column():
                    photo = gr.Image(label="Photo", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                     height=320, elem_id="photo")
                    gr.Examples([[str(DEMO_CONTENT)]], inputs=[photo], label="Example photo")
                with gr.Column():
                    painting, painting_upload = _style_picker("photo")
                with gr.Column():
                    output = gr.Image(label="Painting", type="filepath", interactive=False, height=320,
                                      elem_id="output")
                    status = gr.Markdown(elem_id="status")
                    download = gr.DownloadButton("Download full-size PNG", visible=False, elem_id="download")
            with gr.Row():
                mode, model = _mode_picker(models)
                size = gr.Slider(32, limits.size, value=256, step=16, label="Size (longest side, pixels)",
                                 elem_id="size")
                strength = gr.Slider(0.5, 10, value=presets.DEFAULT.style_weight, step=0.5,
                                     label="Style strength (style weight)")
                iterations = gr.Slider(1, limits.iterations, value=presets.DEFAULT.iterations, step=1,
                                       label="Iterations at full size (after 3 x 50 at smaller sizes)",
                                       elem_id="iterations")
            with gr.Row():
                keep = gr.Checkbox(label="Keep the photo's colours")
                seed = gr.Number(0, precision=0, label="Seed (same seed, same painting)")
                go = gr.Button("Paint", variant="primary", elem_id="paint")
                stop = gr.Button("Stop (keeps the best so far)", elem_id="stop")
            mode.change(lambda m: [gr.Slider(visible=m == BEST)] * 2, mode, [strength, iterations], queue=False,
                        api_name=False)
            go.click(studio.paint, [photo, painting, painting_upload, mode, model, size, strength, keep, iterations,
                                    seed], [output, status, download], api_name="paint", **heavy)
            stop.click(studio.stop, None, None, api_name="stop", queue=False)
        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column():
                    clip = gr.Video(label=f"Clip (up to {limits.video_seconds:g} s)", sources=["upload"], format=None,
                                    include_audio=True, elem_id="clip")
                    v_painting, v_upload = _style_picker("video")
                with gr.Column():
                    v_mode, v_model = _mode_picker(models)
                    consistency = gr.Radio([CONSISTENT, FRAME_BY_FRAME], value=CONSISTENT, label="Frames")
                    v_size = gr.Slider(32, limits.video_size, value=128, step=16, label="Size (longest side, pixels)")
                    v_iterations = gr.Slider(1, limits.iterations, value=30, step=1,
                                             label="Iterations for the first frame (later frames: half)")
                    with gr.Row():
                        v_go = gr.Button("Paint the clip", variant="primary", elem_id="paint-video")
                        v_stop = gr.Button("Stop", elem_id="stop-video")
                with gr.Column():
                    v_output = gr.Video(label="Painted clip", interactive=False, format=None, elem_id="video-output")
                    v_status = gr.Markdown()
                    v_download = gr.DownloadButton("Download MP4", visible=False)
            v_go.click(studio.paint_video, [clip, v_painting, v_upload, v_mode, v_model, consistency, v_size,
                                            v_iterations], [v_output, v_status, v_download], api_name="paint_video",
                       **heavy)
            v_stop.click(studio.stop, None, None, api_name=False, queue=False)
        with gr.Tab("Sound"):
            with gr.Row():
                with gr.Column():
                    sound = gr.Audio(label=f"Sound (up to {limits.audio_seconds:g} s)", type="filepath", format=None,
                                     sources=["upload"], elem_id="sound")
                    gr.Examples([[str(DEMO_SPEECH)], [str(DEMO_MELODY)]], inputs=[sound], label="Example sounds")
                with gr.Column():
                    style_sound = gr.Audio(label="Style sound (its texture is taken)", type="filepath", format=None,
                                           sources=["upload"], elem_id="style-sound")
                    gr.Examples([[str(DEMO_WHALE)], [str(DEMO_MELODY)]], inputs=[style_sound], label="Example styles")
                with gr.Column():
                    a_output = gr.Audio(label="Restyled sound", type="filepath", format=None, interactive=False)
                    a_status = gr.Markdown()
                    a_download = gr.DownloadButton("Download WAV", visible=False)
            with gr.Row():
                a_iterations = gr.Slider(1, limits.iterations, value=audio.DEFAULT.iterations, step=1,
                                         label="Iterations")
                a_seed = gr.Number(0, precision=0, label="Seed")
                a_go = gr.Button("Restyle the sound", variant="primary")
                a_stop = gr.Button("Stop (keeps the best so far)")
            a_go.click(studio.restyle_sound, [sound, style_sound, a_iterations, a_seed], [a_output, a_status, a_download],
                       api_name="restyle_sound", **heavy)
            a_stop.click(studio.stop, None, None, api_name=False, queue=False)
        page.unload(studio.end_session)
    return page


def serve(host: str = "127.0.0.1", port: int = 7860, *, open_browser: bool = False, jobs: int = 1,
          limits: Limits = Limits(), device: str | None = None, block: bool = True) -> tuple[gr.Blocks, str, Path]:
    """Start the page; returns (page, its address, the server's temporary root).

    With `block` (the CLI) it serves until interrupted, then deletes the root."""
    root = Path(tempfile.mkdtemp(prefix="brushwork-ui-"))
    os.environ["GRADIO_TEMP_DIR"] = str(root)  # Gradio's cache, read when the page is built
    try:
        studio = Studio(root, limits, device)
        page = build(studio, jobs)
        page.queue(default_concurrency_limit=jobs)
        _, url, _ = page.launch(server_name=host, server_port=port, inbrowser=open_browser, quiet=True,
                                prevent_thread_lock=True, ssr_mode=False, allowed_paths=[],
                                max_file_size=int(limits.upload_mb * 1e6), show_error=True,
                                theme=gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                                        font_mono=["ui-monospace", "monospace"]))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    studio.sessions.permanent = {p.resolve() for p in root.rglob("*") if p.is_file()}  # the examples' copies
    page.studio = studio  # type: ignore[attr-defined] - tests and benchmarks reach the sessions
    if not block:
        return page, url, root
    # a service manager's SIGTERM ends the page as Ctrl-C does, so the temporary root is deleted too
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        print(f"brushwork ui: {url}", flush=True)
        page.block_thread()
    finally:
        page.close()
        shutil.rmtree(root, ignore_errors=True)
    return page, url, root
