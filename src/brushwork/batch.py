"""Many photos: every photo times every painting (or a trained model) as resumable jobs.

The paintings are painted by the optimiser, or with `fast` in one pass by the arbitrary-style network.

A job is data (`Job`): one photo, the painting(s), the output's file name and a key hashed from the
inputs' content and every setting that changes the output. The output folder's manifest records each
finished or failed job under its output name with that key, rewritten atomically after every job, so a
rerun skips what is done and a changed setting redoes only the jobs it changes.

The network is loaded once per worker (`Engine`): in this process (`workers=1`), in N processes, or in
one Ray actor per worker. Workers return pixels and never write: the driver saves each result
atomically and records it, so outputs and the manifest have one writer, wherever the workers run.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import html
import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import torch
from PIL import Image

from . import images, memory
from .errors import BrushworkError
from .feedforward.data import EXTENSIONS
from .feedforward.modelfile import resolve, write_atomically
from .feedforward.wct import DECODERS, STRENGTH
from .presets import DEFAULT, Config, check_range
from .weights import file_hash

if TYPE_CHECKING:
    from .feedforward.wct import WCTStylizer

MANIFEST = "manifest.json"
INDEX = "index.html"
FORMAT = 1  # bump when an old manifest could be misread
CRASH_HOOK = "BRUSHWORK_BATCH_CRASH"  # tests: a marker path; the first job to see it absent exits mid-job
PAINTERS = 8  # paintings (or blends) a --fast worker keeps ready, each with its images and statistics
RAY_RETRIES = 3  # restarts of a dead actor, and retries of the task it held


class BatchError(BrushworkError, ValueError):
    """A batch that cannot start (no photos, clashing names, a bad output folder, a damaged manifest)."""


@dataclass(frozen=True)
class Settings:
    """What every job of a batch shares; plain data, so a process or a Ray actor can be given it."""

    config: Config = DEFAULT  # the optimiser's recipe (its size is the output's)
    style_blend: tuple[float, ...] | None = None  # one job per photo with the paintings mixed; None: one per painting
    model: str | None = None  # a trained network (name or file) instead of the optimiser
    fast: bool = False  # the paintings through the arbitrary-style network (feedforward/wct.py), not the optimiser
    strength: float = STRENGTH  # with fast: 0 the photo, 1 the painting's statistics in full
    decoders: str | None = None  # with fast: a file from `brushwork train-decoders` (None: the bundled ones)
    size: int | None = None  # with a model or fast: the output's longest side (None keeps the photo's)
    seed: int | None = None
    weights: str | None = None  # the optimiser's VGG weights (registry name or file)
    device: str | None = None
    max_memory: int | None = None  # bytes all local workers together may use (default: what is free)

    def __post_init__(self) -> None:
        check_range("style_blend", self.style_blend)
        check_range("size", self.size)
        check_range("seed", self.seed)
        check_range("max_memory", self.max_memory)
        if self.fast:
            from .feedforward.wct import check_options

            if self.model is not None:
                raise BatchError("give fast or a model, not both: fast paints any painting without a trained model")
            check_options(self.strength, self.config.preserve_colors, self.config.style_scale)
            if self.decoders is not None and not Path(self.decoders).is_file():
                raise BatchError(f"{self.decoders}: no such decoder file; train decoders with "
                                 f"`brushwork train-decoders` or leave --decoders out for the bundled ones")

    @property
    def method(self) -> str:
        """"model" (a trained network), "fast" (the arbitrary-style network) or "optimise"."""
        return "model" if self.model is not None else "fast" if self.fast else "optimise"


@dataclass(frozen=True)
class Job:
    photo: str
    styles: tuple[str, ...]  # the painting(s) of this job; () with a model
    output: str  # file name in the output folder
    key: str  # hash of the inputs' content and the settings that change the output


@dataclass(frozen=True)
class Outcome:
    """A finished job as the caller sees it: `path` when done, `error` (one line) when it failed."""

    job: Job
    path: Path | None
    error: str | None
    seconds: float  # the worker's time on it


@dataclass
class Plan:
    """A batch ready to run: every job, and which of them a rerun still has to do."""

    output: Path
    settings: Settings
    jobs: list[Job]
    todo: list[Job]
    manifest: dict  # output name -> record, as on disk

    def status(self, job: Job) -> str | None:
        """"done" or "failed" as recorded for this job's key, None if not recorded."""
        record = self.manifest.get(job.output, {})
        return record.get("status") if record.get("key") == job.key else None

    @property
    def done(self) -> int:
        return sum(self.status(j) == "done" for j in self.jobs)

    def failed(self) -> list[tuple[Job, str]]:
        return [(j, self.manifest[j.output]["error"]) for j in self.jobs if self.status(j) == "failed"]


# --- planning ---------------------------------------------------------------------------------------

def find_photos(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """Photo files as given, and the image files directly inside each folder given (sorted)."""
    found: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found += sorted(p for p in source.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
        elif source.is_file():
            found.append(source)
        else:
            raise BatchError(f"{source}: no such file or folder; give photos or folders of photos")
    if not found:
        raise BatchError(f"{', '.join(map(str, sources))}: no photos found ({', '.join(sorted(EXTENSIONS))}); "
                         f"give photos or folders of photos")
    return found


def _digest(*parts: object) -> str:
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=16).hexdigest()


def settings_key(settings: Settings) -> str:
    """The part of every job's key that the shared settings make: the recipe or the model's content, the
    seed and the VGG weights (device left out: it changes pixels by rounding, not by intent)."""
    c = settings.config
    if settings.method == "model":
        method = {"model": file_hash(resolve(settings.model), "sha256"), "size": settings.size,
                  "precision": c.precision}
    elif settings.method == "fast":
        method = {"decoders": file_hash(Path(settings.decoders or DECODERS), "sha256"), "size": settings.size,
                  "strength": settings.strength, "preserve_colors": c.preserve_colors,
                  "style_scale": c.style_scale, "precision": c.precision}
    else:
        method = {"config": settings.config.record(), "weights": _identity(settings.weights),
                  "init": _identity(settings.config.init_file())}
    return _digest(FORMAT, method, settings.seed, settings.style_blend)


def _identity(source: str | None) -> str | None:
    """A file by its content (renaming it changes nothing), anything else (a registry name) as it is."""
    return file_hash(Path(source), "sha256") if source is not None and Path(source).is_file() else source


def _output_name(photo: Path, styles: Sequence[Path], model: str | None) -> str:
    what = Path(model).name.removesuffix(".safetensors") if model is not None else "+".join(s.stem for s in styles)
    return f"{photo.stem}--{what}.png"


def plan(photos: Sequence[str | os.PathLike], styles: Sequence[str | os.PathLike], output: str | os.PathLike,
         settings: Settings = Settings(), *, retry_failed: bool = False, overwrite: bool = False) -> Plan:
    """Every job of the batch, checked before any work: inputs exist, outputs clash with no input or with
    each other; with the manifest of an earlier run, what is already done (or failed, unless
    `retry_failed`) is left out of `todo`."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out}: is a file; the output of a batch is a folder")
    photo_files = find_photos(photos)
    style_files = [Path(s) for s in styles]
    if (settings.model is None) == (not style_files):
        raise BatchError("give paintings (--style) or a trained network (--model), one of the two")
    for s in style_files:
        if not s.is_file():
            raise BatchError(f"{s}: no such painting; check the path")
    if settings.style_blend is not None and len(settings.style_blend) != len(style_files):
        raise BatchError(f"--style-blend has {len(settings.style_blend)} weight(s) for {len(style_files)} "
                         f"painting(s); give one weight per painting")
    # a folder given, or the folder of a photo given by name (photos/*.png): both are read again next time
    if out.resolve() in {(Path(p) if Path(p).is_dir() else Path(p).parent).resolve() for p in photos}:
        raise BatchError(f"{out}: is also a folder of photos; the results would be read as photos next time; "
                         f"choose another output folder")
    groups = [tuple(style_files)] if settings.style_blend is not None or settings.model else \
        [(s,) for s in style_files]
    common = settings_key(settings)
    style_hash = {s: file_hash(s, "sha256") for s in style_files}
    inputs = {p.resolve() for p in (*photo_files, *style_files)}
    jobs, names = [], {}
    for photo in photo_files:
        photo_hash = file_hash(photo, "sha256")
        for group in groups:
            name = _output_name(photo, group, settings.model)
            if name in names:
                raise BatchError(f"{photo} and {names[name]} would both be written to {out / name}; "
                                 f"rename one of them")
            names[name] = photo
            target = out / name
            if not overwrite and target.resolve() in inputs:
                raise BatchError(f"{target}: is also an input of this batch; choose another output folder")
            images.check_not_an_input(target, [photo, *group, settings.model, settings.weights, settings.decoders,
                                               settings.config.init_file()], overwrite)
            key = _digest(common, photo_hash, [style_hash[s] for s in group])
            jobs.append(Job(str(photo), tuple(map(str, group)), name, key))
    manifest = read_manifest(out)
    todo = [j for j in jobs if not _settled(out, manifest.get(j.output), j.key, retry_failed)]
    return Plan(out, settings, jobs, todo, manifest)


def _settled(out: Path, record: dict | None, key: str, retry_failed: bool) -> bool:
    """Whether an earlier run's record stands: the same key, and done with its file, or failed (kept
    unless retried)."""
    if record is None or record.get("key") != key:
        return False
    if record.get("status") == "done":
        return (out / record["output"]).is_file()
    return record.get("status") == "failed" and not retry_failed


def read_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, this brushwork reads {FORMAT}")
        return dict(data["jobs"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BatchError(f"{path}: unreadable ({exc}); delete it to redo the whole batch") from None


def _write_manifest(out: Path, manifest: dict) -> None:
    _write(out / MANIFEST, json.dumps({"format": FORMAT, "jobs": manifest}, separators=(",", ":")).encode())


def _write(path: Path, data: bytes) -> None:
    """Atomically (a temporary name, flushed, renamed); a failure is one line naming the file."""
    try:
        write_atomically(path, data)
    except OSError as exc:
        raise images.write_error(path, exc) from None


# --- workers ----------------------------------------------------------------------------------------

class Engine:
    """One worker's method, loaded once (the optimiser's network and style targets, or a trained
    network) and applied to job after job."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        c = settings.config
        if settings.method == "model":
            from .feedforward.infer import InstantStylizer

            self.paint = InstantStylizer(settings.model, device=settings.device, precision=c.precision)
        elif settings.method == "fast":  # built with the first job's paintings: a bad painting fails its job
            self.painters: dict[tuple[str, ...], WCTStylizer] = {}
        else:
            from .optimise import Stylizer

            self.stylizer = Stylizer(settings.config, weights=settings.weights, device=settings.device,
                                     max_memory=settings.max_memory)

    def __call__(self, job: Job) -> Image.Image:
        s = self.settings
        if s.method == "model":
            _crash_hook()
            return self.paint(job.photo, s.size)
        if s.method == "fast":
            _crash_hook()
            return self._fast_painter(job.styles)(job.photo, s.size)
        result = self.stylizer.run(job.photo, list(job.styles), style_blend=s.style_blend, seed=s.seed,
                                   callback=lambda step: _crash_hook() if step.iteration == 1 else None)
        if result.interrupted:
            raise KeyboardInterrupt
        return result.image

    def _fast_painter(self, styles: tuple[str, ...]) -> WCTStylizer:
        """The arbitrary-style network with these paintings: loaded once, restyled for each further painting
        (or blend), each painting's statistics read once per output size."""
        from .feedforward.wct import WCTStylizer

        painter = self.painters.pop(styles, None)
        if painter is None:
            s = self.settings
            first = next(iter(self.painters.values()), None)
            painter = first.restyled(styles, s.style_blend) if first is not None else WCTStylizer(
                styles, blend=s.style_blend, strength=s.strength, preserve_colors=s.config.preserve_colors,
                style_scale=s.config.style_scale, decoders=s.decoders, device=s.device, precision=s.config.precision)
        self.painters[styles] = painter  # the most recently used last
        while len(self.painters) > PAINTERS:  # a batch of many paintings must not grow without bound
            del self.painters[next(iter(self.painters))]
        return painter

    def attempt(self, job: Job) -> tuple[bytes | None, str | None, float]:
        """(PNG bytes, None, seconds) or (None, one-line reason, seconds): a bad photo fails its job, not
        the worker, and is not retried elsewhere. Workers encode, so the driver only writes bytes."""
        start = time.perf_counter()
        try:
            png = io.BytesIO()
            self(job).save(png, format="PNG")
            return png.getvalue(), None, time.perf_counter() - start
        except Exception as exc:  # noqa: BLE001 - any failure of one job is that job's, listed with its reason
            reason = str(exc) if isinstance(exc, BrushworkError) else f"{type(exc).__name__}: {exc}"
            return None, " ".join(reason.split()), time.perf_counter() - start


def _crash_hook() -> None:
    """Tests of crash recovery: with BRUSHWORK_BATCH_CRASH=PATH, the first job (over all processes) to
    find PATH absent creates it and ends its process at once, mid-job."""
    marker = os.environ.get(CRASH_HOOK)
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(17)


def _threads(workers: int) -> int:
    """Torch threads per worker: this machine's share, so N workers do not oversubscribe its cores."""
    return max(1, torch.get_num_threads() // workers)


_engine: Engine | None = None  # a worker process's own


def _start_process(settings: Settings, threads: int) -> None:
    global _engine
    torch.set_num_threads(threads)
    _engine = Engine(settings)


def _run_in_process(job: Job) -> tuple[bytes | None, str | None, float]:
    return _engine.attempt(job)


Result = tuple[Job, bytes | None, str | None, float]


def _local(todo: list[Job], settings: Settings, workers: int) -> Iterator[Result]:
    if workers == 1:
        engine = Engine(settings)
        for job in todo:
            yield job, *engine.attempt(job)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_process,
                                                initargs=(settings, _threads(workers))) as pool:
        running = {pool.submit(_run_in_process, job): job for job in todo}
        try:
            for future in concurrent.futures.as_completed(running):
                try:
                    result = future.result()
                except concurrent.futures.process.BrokenProcessPool:
                    raise BatchError("a worker process died (out of memory?); finished results are kept: "
                                     "rerun the same command to do the rest") from None
                yield running[future], *result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _share_memory(todo: list[Job], settings: Settings, workers: int) -> Settings:
    """Split the memory between the local workers (each holds its own network and image, and plans its
    own tiles within its share), and stop before any starts if the largest photo cannot fit in a share even
    in tiles. A Ray cluster's machines are not this one's and are not checked."""
    from . import tiles
    from .perceptual import pick_device, pick_precision

    device = pick_device(settings.device)
    limit = memory.budget(device, settings.max_memory)
    processes = min(workers, len(todo))
    sizes = []
    for job in todo:
        try:
            with Image.open(job.photo) as img:  # the header only
                sizes.append(images.fit_size(img.size, settings.config.size))
        except OSError:
            continue  # an unreadable photo fails its own job
    if limit is None or not sizes:
        return settings
    if processes > 1:
        limit = memory.Budget(limit.bytes // processes, f"{limit.have}, shared by {processes} workers",
                              f"{limit.advice}, or use fewer --workers")
    tiles.choose(*max(sizes, key=lambda s: s[0] * s[1]), settings.config,
                 pick_precision(settings.config.precision, device), limit)
    return dataclasses.replace(settings, max_memory=limit.bytes)


class RayWorker:
    """A Ray actor: one worker's engine, loaded when the actor starts (again after a restart)."""

    def __init__(self, settings: Settings, threads: int) -> None:
        _start_process(settings, threads)

    def run(self, job: Job) -> tuple[bytes | None, str | None, float]:
        return _run_in_process(job)


def _ray(todo: list[Job], settings: Settings, workers: int | None, address: str | None) -> Iterator[Result]:
    """One actor per worker (None: one per GPU of the cluster, else per CPU), each given its next job as
    it finishes one. A dead actor is restarted and the job it held retried (`RAY_RETRIES` times); past
    that the job is failed and the actor given no more. Results come back to this process, which writes."""
    try:
        import ray
    except ImportError:
        raise BatchError("--ray needs Ray: pip install 'brushwork[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    resources = ray.cluster_resources()
    cpus = int(resources.get("CPU", 1))
    # Ray hides the GPUs from an actor that does not ask for one; an actor asking for more than the
    # cluster has would wait for ever, and with it the jobs given to it
    gpus = int(resources.get("GPU", 0)) if str(settings.device or "auto").startswith(("auto", "cuda")) else 0
    count = min(workers or gpus or cpus, gpus or cpus, len(todo))
    actor = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0, max_restarts=RAY_RETRIES,
                       max_task_retries=RAY_RETRIES)(RayWorker)
    threads = max(1, cpus // count) if address is None else 1
    actors = [actor.remote(settings, threads) for _ in range(count)]
    queue = list(reversed(todo))
    running = {}
    for a in actors:
        if queue:
            job = queue.pop()
            running[a.run.remote(job)] = (a, job)
    try:
        while running:
            [ready], _ = ray.wait(list(running), num_returns=1)
            a, job = running.pop(ready)
            try:
                result, alive = ray.get(ready), True
            except ray.exceptions.RayError as exc:  # the actor died more often than it may restart
                result, alive = (None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", 0.0), False
            yield job, *result
            if queue and alive:
                job = queue.pop()
                running[a.run.remote(job)] = (a, job)
        if queue:  # every actor died and took no more jobs
            raise BatchError(f"{len(queue)} job(s) were not started because every Ray worker died; finished "
                             f"results are kept: rerun the same command to do the rest")
    finally:
        for a in actors:
            ray.kill(a)


# --- the driver -------------------------------------------------------------------------------------

def run(plan: Plan, *, workers: int | None = None, ray: str | bool | None = None) -> Iterator[Outcome]:
    """Do the plan's remaining jobs, yielding each outcome as it finishes (not in order).

    Each result is saved atomically and recorded in the manifest before it is yielded, so stopping at
    any moment (Ctrl-C, a kill, leaving the loop) loses at most the jobs then running. `ray`: None for
    local workers, True for a local Ray, or a cluster's address; `workers` None is one process, or with
    Ray one actor per GPU (else per CPU) of the cluster. The contact sheet is rewritten at the end.
    """
    check_range("workers", workers)
    out = plan.output
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise BatchError(f"{out}: folder is not writable; choose another output folder")
    ours = {MANIFEST, INDEX, *(j.output for j in plan.jobs)}
    for leftover in out.glob(".*.part"):  # a file a killed run was writing (images.save's temporary names)
        if leftover.name[1:].rsplit(".", 2)[0] in ours:
            leftover.unlink(missing_ok=True)
    if not plan.todo:  # no worker to start, no network to load
        write_index(plan)
        return
    settings = plan.settings
    if ray is None and settings.method == "optimise":
        settings = _share_memory(plan.todo, settings, workers or 1)
    results = (_local(plan.todo, settings, workers or 1) if ray is None else
               _ray(plan.todo, plan.settings, workers, None if ray is True else ray))
    try:
        for job, png, error, seconds in results:
            if png is not None:
                _write(out / job.output, png)
            plan.manifest[job.output] = {
                "key": job.key, "status": "done" if error is None else "failed", "output": job.output,
                "photo": job.photo, "styles": list(job.styles), "model": plan.settings.model,
                "seconds": round(seconds, 3), "error": error}
            _write_manifest(out, plan.manifest)
            yield Outcome(job, out / job.output if error is None else None, error, seconds)
    finally:
        results.close()
        write_index(plan)


def stylize_batch(photos: Sequence[str | os.PathLike], styles: Sequence[str | os.PathLike],
                  output: str | os.PathLike, settings: Settings = Settings(), *, workers: int | None = None,
                  ray: str | bool | None = None, retry_failed: bool = False,
                  overwrite: bool = False) -> Iterator[Outcome]:
    """Every photo times every painting (or blend, or the model) into the folder `output`, yielding each
    outcome as it finishes; jobs done by an earlier call with the same inputs and settings are skipped.

    >>> for outcome in stylize_batch(["photos/"], ["starry.jpg"], "out/", Settings(config=config)):
    ...     print(outcome.path or outcome.error)
    """
    return run(plan(photos, styles, output, settings, retry_failed=retry_failed, overwrite=overwrite),
               workers=workers, ray=ray)


# --- the contact sheet ------------------------------------------------------------------------------

def write_index(plan: Plan) -> Path:
    """`index.html`: photo, painting(s) and result of every job, linked relatively, so the page works
    offline and wherever the folders are moved together."""
    out = plan.output

    def img(path: str | Path, title: str) -> str:
        link = quote(os.path.relpath(Path(path).resolve(), out.resolve()))
        return f'<a href="{link}"><img src="{link}" loading="lazy" alt="{html.escape(title)}"></a>'

    rows = []
    for job in plan.jobs:
        status = plan.status(job)
        if status is None:
            result = "<td>not done yet</td>"
        elif status == "failed":
            result = f'<td class="failed">failed: {html.escape(plan.manifest[job.output]["error"])}</td>'
        else:
            result = f"<td>{img(out / job.output, job.output)}</td>"
        method = "".join(img(s, Path(s).name) for s in job.styles) or html.escape(str(plan.settings.model))
        rows.append(f"<tr><td>{img(job.photo, Path(job.photo).name)}<br>{html.escape(Path(job.photo).name)}</td>"
                    f"<td>{method}</td>{result}</tr>")
    page = ("<!doctype html><meta charset=utf-8><title>brushwork batch</title><style>"
            "body{font-family:sans-serif}img{max-width:256px;max-height:256px;margin:2px}"
            "td{vertical-align:top;padding:4px}.failed{color:#b00}</style>"
            f"<h1>{plan.done} of {len(plan.jobs)} done</h1><table><tr><th>photo</th><th>painting</th>"
            f"<th>result</th></tr>{''.join(rows)}</table>\n")
    _write(out / INDEX, page.encode())
    return out / INDEX

