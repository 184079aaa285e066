"""The JSON files the sections write and the renderer reads: one per section,
<results directory>/<section>.json."""

import json
import os

from .common import BENCH, ROOT

DEFAULT_DIR = os.path.join(BENCH, "results")
DEFAULT_REPORT = os.path.join(ROOT, "BENCHMARKS.md")


def results_dir(report_path):
    """BENCH_RESULTS if set; else bench/results for the repository's report, and a
    directory beside any other report (so BENCH_OUT=/tmp/b.md leaves the committed
    figures alone)."""
    chosen = os.environ.get("BENCH_RESULTS")
    if chosen:
        return chosen
    if os.path.abspath(report_path) == DEFAULT_REPORT:
        return DEFAULT_DIR
    return os.path.splitext(report_path)[0] + ".results"


def write(directory, doc):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{doc['section']}.json")
    # written aside and renamed, so an interrupted run leaves the old file whole
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def load(directory, keys):
    """{section: document} for the sections that have a file."""
    docs = {}
    for key in keys:
        path = os.path.join(directory, f"{key}.json")
        if os.path.exists(path):
            with open(path) as f:
                docs[key] = json.load(f)
    return docs
