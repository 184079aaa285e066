"""BENCHMARKS.md from the sections' JSON files, and from nothing else.

The JSON files hold every figure the report shows, derived ones (medians, ratios,
differences) included, at the precision measured: this module only formats them, so a
report re-rendered from the same files shows the same figures."""

import datetime

from .markdown import table
from .sections import MODULES, REPORT_ORDER, SECTIONS, module_of


def provenance(doc, latest_cpu):
    m = doc["machine"]
    text = (f"run of {doc['date']}, plugin commit {m['commit']} (sha256 {m['plugin']}), "
            f"niceness {m['nice']}")
    if m["cpu"] != latest_cpu:
        text += f", CPU {m['cpu']}"
    if doc["plugin_at_end"] != m["plugin"]:
        text += "; the plugin file changed during that run"
    return text


def run_start(doc):
    return datetime.datetime.fromisoformat(doc["run"])


def header(docs):
    """The title, the intro and the machine table of the latest run, with where the
    other sections come from."""
    latest = max(docs.values(), key=run_start)
    ours = [doc for doc in docs.values() if doc["run"] == latest["run"]]
    # the last section of the run that was written tells how long it took and the load then
    last = max(ours, key=lambda doc: doc["elapsed_s"] or 0)
    m = latest["machine"]
    earlier = [key for key in SECTIONS if key in docs and docs[key]["run"] != latest["run"]]
    intro = ("Rendered from `bench/results/<section>.json`, which `bench/run.sh` writes (see "
             "its header for the environment variables that choose sections and lengths). ")
    if earlier:
        intro += ("A run of some sections rewrites only their files, so the sections can "
                  "come from different runs (`earlier sections` below); the machine rows "
                  "describe the latest run. ")
    else:
        intro += "All sections from one run on one machine, with the same input. "
    intro += "The machine was shared, so trust ratios more than absolute figures."
    took = f" (took {last['elapsed_s'] / 60:.1f} min)" if last["elapsed_s"] else ""
    ran = [key for key in SECTIONS if key in docs and docs[key]["run"] == latest["run"]]
    long_note = (f"; long recording {docs['mem']['figures']['long_s']} s"
                 if "mem" in ran else "")
    lines = [
        "# Benchmarks", "", intro, "",
        "| machine | |",
        "|---|---|",
        f"| date | {latest['date']}{took} |",
        f"| cores (nproc) | {m['nproc']} |",
        f"| CPU | {m['cpu']} |",
        f"| memory | {m['mem']} |",
        f"| OS | {m['os']} |",
        f"| GStreamer | {m['gst']} |",
        f"| ffmpeg | {m['ffmpeg']} (libvpx {m['libvpx']}, libaom {m['libaom']}) |",
        f"| plugin | commit {m['commit']}, `cargo build --release`: sha256 {m['plugin']} |",
        f"| niceness, load average at start / end | {m['nice']}; {latest['load']['start']} / "
        f"{last['load']['end'] or '?'} |",
        f"| {'sections of the latest run' if earlier else 'sections'} | {', '.join(ran)}"
        f"{long_note} |",
    ]
    if earlier:
        groups = {}
        for key in earlier:
            groups.setdefault(provenance(docs[key], m["cpu"]), []).append(key)
        lines.append("| earlier sections | " + "<br>".join(
            f"{', '.join(keys)}: {prov}" for prov, keys in groups.items()) + " |")
    lines.append("")
    if last["plugin_at_end"] != m["plugin"]:
        lines += [f"**The plugin file changed during the run** ({m['plugin']} at the "
                  f"start, {last['plugin_at_end']} at the end): someone rebuilt it, so later "
                  "sections may have measured another build.", ""]
    return lines


def targets(docs):
    rows = []
    for module in MODULES:
        if not any(key in docs for key in module.KEYS):
            continue
        for target, measured, met in module.targets(docs):
            rows.append([",".join(module.KEYS), target, measured, "yes" if met else "**no**"])
    if not rows:
        return []
    return ["## Targets", "", table(["section", "target", "measured", "met"], rows), ""]


def encoder_settings(docs):
    """The settings each section's figures were measured with; for a stream used by
    sections of different runs, the latest run's."""
    streams = {}
    for doc in sorted(docs.values(), key=run_start):
        for s in doc["encoder_settings"]:
            props = " ".join(f"{k}={v}" for k, v in s["props"].items())
            streams[(s["codec"], s["width"], s["height"], s["live"])] = \
                f"`{s['factory']} {props}`"
    if not streams:
        return []
    rows = [[f"{codec} {w}x{h} {'live' if live else 'non-live'}", text]
            for (codec, w, h, live), text in sorted(streams.items())]
    return ["## Encoder settings the element chose (read back from its encoder)", "",
            "The hand pipelines use exactly these; ffmpeg gets the same numbers "
            "(`-b:v = -minrate = -maxrate` for CBR, `-deadline realtime`, "
            "`-cpu-used`, `-lag-in-frames`, `-g`, `-threads`).", "",
            table(["stream", "encoder"], rows), ""]


def commands(docs):
    """First command of each kind, tagged with the sections that ran it (fps and quality
    share theirs)."""
    tagged = {}
    for key in SECTIONS:
        for c in docs[key]["commands"] if key in docs else []:
            tagged.setdefault((c["name"], c["command"]), []).append(key)
    if not tagged:
        return []
    lines = ["## Commands (first of each kind; $WORK is a scratch directory)", ""]
    for (name, cmd), keys in tagged.items():
        lines += [f"- {name} [{','.join(keys)}]:", f"  `{cmd}`"]
    return lines + [""]


def report(docs):
    """The whole report from {section: JSON document}."""
    if not docs:
        return "# Benchmarks\n\nNo results yet: run `bench/run.sh`.\n"
    lines = header(docs) + targets(docs)
    for number, key in enumerate(REPORT_ORDER, 1):
        if key in docs:
            title, body = module_of(key).render(key, docs[key]["figures"])
            lines += [f"## {number}. {title}", "", body.rstrip(), ""]
    lines += encoder_settings(docs) + commands(docs)
    return "\n".join(lines)
