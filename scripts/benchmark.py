"""Measure scoring, decoding, the window and training on generated folders of real images.

Every figure is a ratio of two timings taken in the same run, or a time with the
ratio to its budget, so results from a busy or a slow machine stay comparable.
Writes the folders into a temporary folder (or --work-dir) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
# The checkout that contains this script is measured, not an installed copy.
sys.path.insert(0, str(REPO_ROOT))

import benchmark_data  # noqa: E402

from engine import cli  # noqa: E402
from engine.conversion import to_rgb  # noqa: E402
from engine.images import load_image  # noqa: E402
from engine.modelfile import ReferenceModel, load_model  # noqa: E402
from engine.resources import DEFAULT_MODEL_PATH  # noqa: E402
from engine.scoring import score_files  # noqa: E402

logger = logging.getLogger(__name__)

DATA_VARIABLE = "RETINA_CURATOR_DATA"
TRAINING_BUDGET_S = 120.0


@dataclass(frozen=True)
class Sizes:
    """Folder sizes and repetitions of one benchmark run."""

    small_pngs: int = 8000
    large_jpegs: int = 500
    window_images: int = 20_000
    repeats: int = 2
    epochs: int | None = None  # None trains with the command's default


QUICK = Sizes(small_pngs=48, large_jpegs=8, window_images=200, repeats=1, epochs=1)


@dataclass(frozen=True)
class Figure:
    """One row of the results table."""

    name: str
    value: str
    target: str
    met: bool | None


def best_time(action: Callable[[], object], repeats: int) -> float:
    """Return the shortest wall time of `repeats` runs of `action`, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def decode_loop(paths: list[Path], side: int, draft: bool = False) -> None:
    """Open, convert to RGB and resize each file, one after another, as a plain program would."""
    for path in paths:
        with Image.open(path) as image:
            if draft:
                image.draft("RGB", (side * 8, side * 8))
            image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)


def parallel_figure(paths: list[Path], side: int, repeats: int) -> Figure:
    """Compare two processes running the decode loop at once with one process alone.

    Scoring can approach the decode loop's time only by running the model on a
    second core beside the decoding, so this is the throughput a second core adds
    on this machine: 2× on two free cores.
    """
    alone = min(_decode_in_processes(paths, side, 1) for _ in range(repeats))
    together = min(_decode_in_processes(paths, side, 2) for _ in range(repeats))
    return Figure(
        f"Two processes decoding the {len(paths)} PNGs at once against one alone",
        f"{2 * alone / together:.2f}× the throughput of one ({together:.2f} s each "
        f"against {alone:.2f} s)",
        "–", None,
    )


def _decode_in_processes(paths: list[Path], side: int, count: int) -> float:
    """Return the longest time of `count` processes that each run decode_loop over
    `paths`, all starting together once they are ready.
    """
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(count)
    times = context.Queue()
    processes = [context.Process(target=_timed_decode_loop, args=(paths, side, ready, times))
                 for _ in range(count)]
    for process in processes:
        process.start()
    elapsed: list[float] = [times.get() for _ in processes]
    for process in processes:
        process.join()
    return max(elapsed)


def _timed_decode_loop(paths: list[Path], side: int, ready: Barrier, times: Queue[float]) -> None:
    """Run decode_loop once to warm up, wait for the other processes, then time it."""
    decode_loop(paths, side)
    ready.wait()
    started = time.perf_counter()
    decode_loop(paths, side)
    times.put(time.perf_counter() - started)


def full_intake(paths: list[Path], model: ReferenceModel) -> None:
    """Do what load_image does for a model input, but decode every JPEG at full size."""
    for path in paths:
        with Image.open(path) as image:
            image.load()
            model.framing.apply(to_rgb(image))


def scoring_figures(model: ReferenceModel, name: str, folder: Path, paths: list[Path],
                    repeats: int) -> list[Figure]:
    """Compare headless scoring of `paths` with a plain decode loop over the same files."""
    side = model.framing.size
    # The first batch through the model pays for torch's one-time set-up.
    list(score_files(model, folder, paths[:8]))
    decode = best_time(lambda: decode_loop(paths, side), repeats)
    score = best_time(lambda: list(score_files(model, folder, paths)), repeats)
    figures = [Figure(
        f"Scoring {len(paths)} {name} against decoding them",
        f"{score / decode:.2f}× ({score:.2f} s against {decode:.2f} s, "
        f"{len(paths) / score:.0f} images/s)",
        "≤ 1.5×", score / decode <= 1.5,
    )]
    if name.endswith("JPEGs"):
        drafted = best_time(lambda: decode_loop(paths, side, draft=True), repeats)
        figures.append(Figure(
            f"Scoring {len(paths)} {name} against decoding them at reduced scale",
            f"{score / drafted:.2f}× ({score:.2f} s against {drafted:.2f} s)", "–", None,
        ))
    return figures


def draft_figure(model: ReferenceModel, paths: list[Path], repeats: int) -> Figure:
    """Compare load_image, which drafts JPEGs, with the same intake at full size."""
    reduced = best_time(lambda: [load_image(path, model.framing, None) for path in paths],
                        repeats)
    full = best_time(lambda: full_intake(paths, model), repeats)
    return Figure(
        f"Intake of {len(paths)} JPEGs at reduced scale against full decoding",
        f"{full / reduced:.1f}× faster ({reduced:.2f} s against {full:.2f} s)",
        "≥ 4×", full / reduced >= 4.0,
    )


def cli_cache_figure(folder: Path, csv_folder: Path, repeats: int) -> Figure:
    """Compare a second `score` command on a folder, read from its cache, with the first.

    The pair runs `repeats` times, each from an empty review state, and the
    shortest first and second runs count.
    """
    firsts, seconds = [], []
    for _ in range(repeats):
        shutil.rmtree(folder / ".retina-curator", ignore_errors=True)
        first, second = (run_score_command(folder, csv_folder / f"scores{number}.csv")
                         for number in (1, 2))
        firsts.append(first)
        seconds.append(second)
    first, second = min(firsts), min(seconds)
    return Figure(
        "Command `score` on a scored folder against the first run",
        f"{100 * second / first:.1f} % ({second:.2f} s against {first:.2f} s)",
        "< 10 %", second / first < 0.10,
    )


def run_score_command(folder: Path, csv_path: Path) -> float:
    """Run `score FOLDER --csv CSV` in this process and return its wall time in seconds."""
    arguments = ["score", str(folder), "--csv", str(csv_path), "--overwrite",
                 "--log-level", "ERROR"]
    with open(os.devnull, "w") as sink:
        started = time.perf_counter()
        stdout, stderr, sys.stdout, sys.stderr = sys.stdout, sys.stderr, sink, sink
        try:
            code = cli.main(arguments)
        finally:
            sys.stdout, sys.stderr = stdout, stderr
        elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"'python main.py {' '.join(arguments)}' exited with {code}")
    return elapsed


def window_figures(folder: Path, work: Path) -> list[Figure]:
    """Run the window on `folder` in a child process and turn its timings into figures."""
    shutil.rmtree(folder / ".retina-curator", ignore_errors=True)
    # The first scoring starts with no thumbnails cached either, like a new folder.
    cache = work / "user-cache"
    shutil.rmtree(cache, ignore_errors=True)
    output = work / "window.json"
    environment = dict(os.environ, XDG_CACHE_HOME=str(cache),
                       QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    command = [sys.executable, str(REPO_ROOT / "scripts" / "benchmark_gui.py"), str(folder),
               "--model", str(DEFAULT_MODEL_PATH), "--json", str(output)]
    result = subprocess.run(command, env=environment, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the window benchmark failed:\n{result.stderr}")

    values = json.loads(output.read_text())
    files = values["files"]
    scoring, reopening = values["first_scoring_s"], values["reopening_s"]
    stall = max(values["scoring_stall_ms"], values["reopening_stall_ms"])
    handler = max(values["scoring_handler"], values["reopening_handler"],
                  key=lambda timing: timing["cpu_ms"])

    return [
        Figure(f"Window on {files} images: window and first thumbnails",
               f"{values['first_thumbnails_s']:.2f} s ({values['imports_s']:.2f} s more for "
               f"imports); all scored in {scoring:.1f} s", "< 2 s",
               values["first_thumbnails_s"] < 2.0),
        Figure("Longest event-loop stall while scoring or re-opening (50 ms heartbeat)",
               f"{stall:.0f} ms; longest handler {describe_handler(handler)}",
               "< 100 ms", stall < 100),
        Figure("Longest event-loop stall while scrolling the whole gallery",
               f"{values['scrolling_stall_ms']:.0f} ms (scrolled in "
               f"{values['scrolling_s']:.1f} s); longest handler "
               f"{describe_handler(values['scrolling_handler'])}", "< 100 ms",
               values["scrolling_stall_ms"] < 100),
        Figure("Peak resident memory of the window", f"{values['peak_rss_mb']:.0f} MB",
               "< 1 GB", values["peak_rss_mb"] < 1024),
        Figure("Window re-opening the scored folder against the first scoring",
               f"{100 * reopening / scoring:.1f} % ({reopening:.2f} s against {scoring:.2f} s)",
               "< 10 %", reopening / scoring < 0.10),
    ]


def describe_handler(timing: dict[str, float | str]) -> str:
    """Describe the benchmark_gui timing of one event handler: CPU and wall time, event."""
    return (f"{float(timing['cpu_ms']):.0f} ms CPU, {float(timing['wall_ms']):.0f} ms wall "
            f"({timing['event']})")


def training_figure(data_root: Path, work: Path, epochs: int | None) -> Figure:
    """Time `python main.py train` on RetinaMNIST against the two-minute budget."""
    command = [sys.executable, str(REPO_ROOT / "main.py"), "train",
               "--medmnist-root", str(data_root / "medmnist"),
               "--out", str(work / "trained.safetensors"), "--overwrite", "--log-level", "ERROR"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True,
                            check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"training failed:\n{result.stderr}")
    label = "default settings" if epochs is None else f"{epochs} epoch(s)"
    return Figure(f"Training the default model ({label})",
                  f"{elapsed:.1f} s, {100 * elapsed / TRAINING_BUDGET_S:.0f} % of the budget",
                  "< 2 min", elapsed < TRAINING_BUDGET_S)


def describe_machine() -> list[str]:
    """Return lines naming the CPU, cores, memory and the versions that were measured."""
    import PySide6
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; load average at the start {load}",
        f"- Memory: {memory_gb:.1f} GB; {platform.platform()}",
        f"- Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), PySide6 {PySide6.__version__}, "
        f"Pillow {Image.__version__}",
    ]


def format_table(figures: list[Figure]) -> str:
    """Return the figures as a Markdown table."""
    marks = {True: "met", False: "**not met**", None: "–"}
    lines = ["| measurement | result | target | |", "|---|---|---|---|"]
    lines += [f"| {f.name} | {f.value} | {f.target} | {marks[f.met]} |" for f in figures]
    return "\n".join(lines)


def run(data_root: Path, work: Path, sizes: Sizes, skip: set[str]) -> list[Figure]:
    """Write the benchmark folders under `work` and measure every figure not in `skip`."""
    model = load_model(DEFAULT_MODEL_PATH)
    small = benchmark_data.write_small_pngs(data_root, work / "small", sizes.small_pngs)
    large = benchmark_data.write_large_jpegs(data_root, work / "large", sizes.large_jpegs)
    logger.info("benchmark folders ready under %s", work)
    figures = scoring_figures(model, "28 px PNGs", work / "small", small, sizes.repeats)
    figures.append(parallel_figure(small, model.framing.size, sizes.repeats))
    figures += scoring_figures(model, "2–8 Mpx JPEGs", work / "large", large, sizes.repeats)
    figures.append(draft_figure(model, large, sizes.repeats))
    figures.append(cli_cache_figure(work / "small", work, sizes.repeats))
    if "window" not in skip:
        folder = work / "window"
        benchmark_data.write_small_pngs(data_root, folder, sizes.window_images)
        figures += window_figures(folder, work)
    if "training" not in skip:
        figures.append(training_figure(data_root, work, sizes.epochs))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=os.environ.get(DATA_VARIABLE),
                        help="folder of the shared real images, with medmnist/, blood/, "
                             f"fundus/ and other/ (default: ${DATA_VARIABLE})")
    parser.add_argument("--work-dir", type=Path,
                        help="folder for the generated images, kept and reused by later runs "
                             "(default: a temporary folder, removed at the end)")
    parser.add_argument("--quick", action="store_true",
                        help="a few dozen images and one training epoch, to check that the "
                             "script runs; the figures mean nothing")
    parser.add_argument("--skip", action="append", choices=("window", "training"), default=[],
                        help="leave out the window or the training figures")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.data_root is None:
        parser.error(f"pass --data-root or set {DATA_VARIABLE} to the shared data folder")
    sizes = QUICK if args.quick else Sizes()

    print("\n".join(describe_machine()) + "\n")
    with tempfile.TemporaryDirectory(prefix="retina-benchmark-") as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        figures = run(args.data_root, work, sizes, set(args.skip))
    print(format_table(figures))
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"\nMeasured in {time.perf_counter() - started:.0f} s with "
          f"'{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}'; load average at the "
          f"end {load}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
