"""Render benchmark results into docs/benchmarks.md and docs/benchmarks.png, and judge the targets.

The plot is matplotlib's (a dev/bench dependency; the plugin never imports it).
"""

from __future__ import annotations

from pathlib import Path

from bench.common import MiB

COLORS = {
    "raw": "#4659c8",
    "operator": "#009650",
    "seed": "#d27800",
    "socket": "#555555",
    "plugin": "#009650",
    "previous": "#9b59b6",
}
RSS_TARGET = 64 * MiB
#: Same run, paired by repeat: the new code path against the previous one.
REGRESSION_FLOOR = 0.95
PARSE_TARGET = 0.3
CPU_TARGET = 0.15


def _mib(value: float) -> str:
    return f"{value / MiB:,.1f}"


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


# ------------------------------------------------------------------------------------------------ verdicts
def _ratio(spread: dict) -> str:
    return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"


def targets(results: dict, benchmarks: dict | None = None) -> list[tuple[str, str, str, bool]]:
    """(benchmark, target, measured, met) for every target that was measured."""
    rows = []
    # Judged at the largest size (the smaller ones last tens of ms, where scheduling dominates) and on
    # client CPU: on a shared 2-core box wall-clock pairs swing by tens of percent (see the min-max).
    for row in ((results.get("isolated") or {}).get("summary") or [])[-1:]:
        rows.append(
            (
                "upload (isolated)",
                f"no regression at {row['size_mib']} MiB: client CPU, previous hook / plugin >= {REGRESSION_FLOOR}"
                " (paired median, min-max)",
                f"{_ratio(row['cpu_previous_over_plugin'])}; "
                f"MiB/s plugin / previous {_ratio(row['plugin_vs_previous'])}",
                row["cpu_previous_over_plugin"]["median"] >= REGRESSION_FLOOR,
            )
        )
    pairs = results.get("hooks")
    if pairs:
        rows.append(
            (
                "trigger path",
                f"no regression: CPU per job GET, previous / current hook >= {REGRESSION_FLOOR}",
                _ratio(pairs["speed_ratio"]),
                pairs["speed_ratio"]["median"] >= REGRESSION_FLOOR,
            )
        )
    up = results.get("upload", {}).get("summary") or []
    if up:
        largest, smallest = up[-1], up[0]
        op_big = largest["operator"]["extra_rss"]
        rows.append(
            (
                "upload",
                f"extra RSS < 64 MiB at {largest['size_mib']} MiB",
                f"{_mib(op_big)} MiB (seed: {_mib(largest['seed']['extra_rss'])} MiB)",
                op_big < RSS_TARGET,
            )
        )
        growth = largest["operator"]["extra_rss"] - smallest["operator"]["extra_rss"]
        rows.append(
            (
                "upload",
                "extra RSS flat in object size",
                f"{_mib(growth)} MiB growth from {smallest['size_mib']} to {largest['size_mib']} MiB",
                abs(growth) < 16 * MiB,
            )
        )
        worst = min(up, key=lambda r: r["throughput_vs_raw"])
        rows.append(
            (
                "upload",
                "throughput >= 0.9x raw pipe (median of runs)",
                ", ".join(f"{r['size_mib']} MiB: {r['throughput_vs_raw']:.2f}x" for r in up),
                worst["throughput_vs_raw"] >= 0.9,
            )
        )
        sandbox_peak = max(r[v]["sandbox_extra"] for r in up for v in ("raw", "operator", "seed"))
        rows.append(("upload", "sandbox RSS flat", f"peak growth {_mib(sandbox_peak)} MiB", sandbox_peak < RSS_TARGET))
    for run in results.get("trigger") or []:
        tag = "all at once" if not run["spread_s"] else f"spread {run['spread_s']:g} s"
        rows.append(
            (
                f"trigger ({tag})",
                "CPU < 15% of one core",
                f"{run['cpu_share'] * 100:.1f}%",
                run["cpu_share"] < CPU_TARGET,
            )
        )
        rows.append(
            (
                f"trigger ({tag})",
                "one token fetch per connection",
                f"{run['token_fetches']} for 1 connection",
                run["token_fetches"] == 1,
            )
        )
        limit = run["poll_interval"] + 1
        rows.append(
            (
                f"trigger ({tag})",
                f"p99 lag <= poll interval + 1 s = {limit:g} s",
                f"p99 {run['lag_p99']:.2f} s (p50 {run['lag_p50']:.2f} s)",
                run["lag_p99"] <= limit,
            )
        )
    parse = results.get("parse")
    if parse:
        for row in parse["dags"]:
            if row.get("what_if"):
                continue
            rows.append(
                (
                    "DAG parse",
                    f"{row['file']} < {PARSE_TARGET} s over airflow.sdk",
                    f"{row['dag_s']:.3f} s",
                    row["dag_s"] < PARSE_TARGET,
                )
            )
        attempts = sum(row["network_attempts"] for row in parse["dags"])
        rows.append(("DAG parse", "no network calls while parsing", f"{attempts} attempts", attempts == 0))
    for name, (_, module) in (benchmarks or {}).items():
        extra = getattr(module, "targets", None)
        if name in results and extra is not None and module.__name__ not in _BUILTIN:
            rows.extend(extra(results[name]))
    return rows


#: Modules whose sections and targets this file renders itself.
_BUILTIN = {"bench.parse", "bench.trigger", "bench.isolated", "bench.upload"}


def verdicts(results: dict, benchmarks: dict | None = None) -> list[str]:
    return [
        f"[{'met' if ok else 'MISSED'}] {bench}: {target}: {measured}"
        for bench, target, measured, ok in targets(results, benchmarks)
    ]


# ------------------------------------------------------------------------------------------------ plot
def _whiskers(spreads: list[dict], scale: float = 1.0) -> tuple[list[float], list[list[float]]]:
    """Medians and matplotlib ``yerr`` (distance to min and max) from ``{"median", "min", "max"}`` dicts."""
    mid = [s["median"] / scale for s in spreads]
    low = [max(0.0, (s["median"] - s["min"]) / scale) for s in spreads]
    high = [max(0.0, (s["max"] - s["median"]) / scale) for s in spreads]
    return mid, [low, high]


def _runs_spread(runs: list[dict], key: str, scale: float = 1.0) -> dict:
    values = [r[key] / scale for r in runs]
    from bench.common import median

    return {"median": median(values), "min": min(values), "max": max(values)}


def _emulator_series(results: dict, key: str, scale: float) -> dict[str, tuple[list[int], list[dict]]]:
    runs = (results.get("upload") or {}).get("runs") or []
    series: dict[str, tuple[list[int], list[dict]]] = {}
    for variant in ("raw", "operator", "seed"):
        sizes = sorted({r["size_mib"] for r in runs if r["variant"] == variant})
        spreads = [
            _runs_spread([r for r in runs if r["variant"] == variant and r["size_mib"] == size], key, scale)
            for size in sizes
        ]
        if sizes:
            series[variant] = (sizes, spreads)
    return series


def _isolated_series(results: dict, metric: str, scale: float = 1.0) -> dict[str, tuple[list[int], list[dict]]]:
    rows = (results.get("isolated") or {}).get("summary") or []
    series = {}
    for variant in ("socket", "plugin", "previous"):
        sizes = [r["size_mib"] for r in rows]
        spreads = [{k: v / scale for k, v in r[variant][metric].items()} for r in rows]
        if sizes:
            series[variant] = (sizes, spreads)
    return series


def _line(ax, sizes, spreads, label, color, style="-", marker="o") -> None:
    mid, err = _whiskers(spreads)
    ax.errorbar(sizes, mid, yerr=err, label=label, color=color, linestyle=style, marker=marker, capsize=3, ms=4)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(13, 14))
    (rss_ax, tput_ax), (trig_ax, parse_ax), (scale_ax, disc_ax) = axes

    # 1. extra RSS of the uploader: spans KiB..GiB, so both axes are logarithmic.
    for variant, (sizes, spreads) in _emulator_series(results, "extra_rss", MiB).items():
        _line(rss_ax, sizes, spreads, f"{variant} (with the local emulators)", COLORS[variant], "--", "s")
    for variant, (sizes, spreads) in _isolated_series(results, "extra_rss", MiB).items():
        _line(rss_ax, sizes, spreads, f"{variant} (isolated)", COLORS[variant])
    rss_ax.axhline(RSS_TARGET / MiB, color="red", linewidth=1, linestyle=":", label="target 64 MiB")
    rss_ax.set(xscale="log", yscale="log", xlabel="object size (MiB)", ylabel="extra RSS during the upload (MiB)")
    rss_ax.set_title("Upload: memory of the uploading process")

    # 2. throughput: isolated path (the plugin) and, dashed, through the emulators.
    for variant, (sizes, spreads) in _isolated_series(results, "mib_s").items():
        _line(tput_ax, sizes, spreads, f"{variant} (isolated)", COLORS[variant])
    for variant, (sizes, spreads) in _emulator_series(results, "mib_s", 1.0).items():
        if variant != "seed":
            _line(tput_ax, sizes, spreads, f"{variant} (with the local emulators)", COLORS[variant], "--", "s")
    tput_ax.set(xscale="log", xlabel="object size (MiB)", ylabel="throughput (MiB/s)", ylim=(0, None))
    tput_ax.set_title("Upload: throughput (median, min-max whiskers)")

    # 3. triggers: lag percentiles (s) and CPU share (%).
    trig = results.get("trigger") or []
    if trig:
        labels = ["all at once" if not r["spread_s"] else f"spread over {r['spread_s']:g} s" for r in trig]
        x = range(len(trig))
        width = 0.27
        trig_ax.bar([i - width for i in x], [r["lag_p50"] for r in trig], width, label="lag p50 (s)", color="#7f8fd8")
        trig_ax.bar(list(x), [r["lag_p99"] for r in trig], width, label="lag p99 (s)", color="#283593")
        limit = trig[0]["poll_interval"] + 1
        trig_ax.axhline(limit, color="red", linewidth=1, linestyle=":", label=f"lag target {limit:g} s")
        trig_ax.set(ylabel="lag after the job completed (s)", xticks=list(x), xticklabels=labels)
        cpu_ax = trig_ax.twinx()
        cpu_ax.bar([i + width for i in x], [r["cpu_share"] * 100 for r in trig], width, color="#009650")
        cpu_ax.set(ylabel="CPU (% of one core)", ylim=(0, max(20.0, max(r["cpu_share"] * 100 for r in trig) * 1.2)))
        from matplotlib.patches import Patch

        handles, labels = trig_ax.get_legend_handles_labels()
        handles.append(Patch(color="#009650"))
        labels.append("CPU (% of one core, right axis)")
        trig_ax.legend(handles, labels, fontsize=8, loc="upper left")
        trig_ax.set_title(f"{trig[0]['triggers']} triggers in one process (poll {trig[0]['poll_interval']:g} s)")

    # 4. DAG parse: import time over airflow.sdk, min-max whiskers over the fresh processes.
    parse = results.get("parse")
    if parse:
        rows = parse["dags"]
        labels = [
            row["file"].split("/")[-1].removesuffix(".py") + (" (what-if)" if row.get("what_if") else "")
            for row in rows
        ]
        mid, err = _whiskers([{"median": r["dag_s"], "min": r["dag_s_min"], "max": r["dag_s_max"]} for r in rows])
        parse_ax.bar(labels, mid, yerr=err, capsize=4, color="#d27800")
        parse_ax.axhline(PARSE_TARGET, color="red", linewidth=1, linestyle=":", label=f"target {PARSE_TARGET} s")
        parse_ax.set(ylabel="import time over bare airflow.sdk (s)")
        parse_ax.set_title(f"DAG parse (median of {parse['repeat']} fresh processes)")
        parse_ax.tick_params(axis="x", labelsize=8)
        parse_ax.legend(fontsize=8)

    _plot_triggerer_scale(scale_ax, results.get("triggerer"))
    _plot_discovery(disc_ax, results.get("discovery"), results.get("events"))

    for ax in (rss_ax, tput_ax):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"symbl-airflow benchmarks ({results['mode']} run, {results['finished']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_triggerer_scale(ax, result: dict | None) -> None:
    """5. Waits in one triggerer: CPU share and job GETs per job, today's trigger vs the new one (log x)."""
    if not result or not result.get("runs"):
        ax.set_visible(False)
        return
    sizes = sorted({r["triggers"] for r in result["runs"]})
    gets_ax = ax.twinx()
    for variant, color in (("baseline", "#9e9e9e"), ("current", "#283593")):
        runs = {n: [r[variant] for r in result["runs"] if r["triggers"] == n and variant in r] for n in sizes}
        cpu = [_runs_spread(runs[n], "cpu_share", 0.01) for n in sizes if runs[n]]
        gets = [_runs_spread(runs[n], "gets_per_job") for n in sizes if runs[n]]
        label = "today's trigger" if variant == "baseline" else "new trigger"
        _line(ax, sizes, cpu, f"{label}: CPU (% of a core)", color)
        _line(gets_ax, sizes, gets, f"{label}: job GETs per job (right)", color, "--", "s")
    ax.axhline(15, color="red", linewidth=1, linestyle=":", label="CPU target 15%")
    ax.set(xscale="log", xlabel="waits in one triggerer", ylabel="CPU (% of one core)", ylim=(0, None))
    gets_ax.set(ylabel="job GETs per job", ylim=(0, None))
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = gets_ax.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Triggerer scale (median, min-max over runs)")


def _plot_discovery(ax, discovery: dict | None, events: dict | None) -> None:
    """6. Discovery S3 requests (log y) and the event path's drop-to-accepted latency."""
    if not discovery:
        ax.set_visible(False)
        return
    labels = ["indexed scan", "full read"]
    requests = [discovery["indexed_requests"], discovery["full_requests"]]
    ax.bar(labels, requests, color=["#009650", "#9e9e9e"])
    ax.set(yscale="log", ylabel=f"S3 requests per discovery ({discovery['folders']:,} folders)")
    for i, value in enumerate(requests):
        ax.annotate(f"{value:,}", (i, value), ha="center", va="bottom", fontsize=8)
    title = "Discovery: S3 requests"
    phases = (events or {}).get("phases") or ([events] if events and "p50_s" in events else [])
    if phases:
        paced = max(phases, key=lambda p: p["interval_s"])
        title += f"; event path p50 {paced['p50_s']:.1f} s / p99 {paced['p99_s']:.1f} s"
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)


# ------------------------------------------------------------------------------------------------ markdown
def _machine(results: dict) -> list[str]:
    m = results["machine"]
    v = m["versions"]
    return [
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['nproc']} cores (`nproc`) |",
        f"| RAM | {m['ram_gib']} GiB |",
        f"| OS | {m['os']}, kernel {m['kernel']} |",
        f"| Python | {m['python']} |",
        f"| Airflow | apache-airflow {v['apache-airflow']}, task SDK {v['apache-airflow-task-sdk']} |",
        f"| Libraries | requests {v['requests']}, boto3 {v['boto3']}, aiohttp {v['aiohttp']}, moto {v['moto']} |",
        f"| Run | {results['mode']}, {results['started']} -> {results['finished']} |",
        f"| Load average | {', '.join(f'{x:.1f}' for x in results['loadavg_before'])} before, "
        f"{', '.join(f'{x:.1f}' for x in results['loadavg_after'])} after |",
    ]


def _upload(results: dict) -> list[str]:
    up = results["upload"]["summary"]
    lines = [
        "| size | variant | MiB/s median | MiB/s best | client CPU s/GiB | extra RSS (MiB) "
        "| sandbox RSS growth (MiB) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in up:
        for v in ("raw", "operator", "seed"):
            r = row[v]
            lines.append(
                f"| {row['size_mib']} MiB | {v} | {r['mib_s']:.0f} | {r['best_mib_s']:.0f} | {r['cpu_s_per_gib']:.2f} "
                f"| {_mib(r['extra_rss'])} | {_mib(r['sandbox_extra'])} |"
            )
    lines += [
        "",
        "Ratios (operator against the baselines of the same run):",
        "",
        "| size | operator / raw MiB/s (median) | (best of runs) | operator / raw CPU | seed / operator extra RSS "
        "| operator checks (HEAD + 64-byte GET) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in up:
        lines.append(
            f"| {row['size_mib']} MiB | {row['throughput_vs_raw']:.2f}x | {row['best_throughput_vs_raw']:.2f}x "
            f"| {row['cpu_vs_raw']:.2f}x | {row['rss_seed_over_operator']:.1f}x "
            f"| {row['operator']['inspect_s']:.2f} s |"
        )
    return lines


def _spread_cell(spread: dict, scale: float = 1.0, fmt: str = "{:.0f}") -> str:
    mid, low, high = (spread[k] / scale for k in ("median", "min", "max"))
    return f"{fmt.format(mid)} ({fmt.format(low)}-{fmt.format(high)})"


def _isolated(results: dict) -> list[str]:
    iso = results["isolated"]
    lines = [
        f"`chunk_size` {iso['chunk_size'] >> 10} KiB (`symbl_airflow.hooks.DEFAULT_CHUNK_SIZE`); previous hook: "
        f"`hooks.py` at `{iso['previous_rev']}`. Medians with (min-max) over the repeats.",
        "",
        "| size | variant | MiB/s | client CPU s/GiB | extra RSS (MiB) | pre-upload checks (ms) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for row in iso["summary"]:
        for v in ("socket", "plugin", "previous"):
            r = row[v]
            checks = "-" if v == "socket" else _spread_cell(r["checks_s"], 1e-3, "{:.1f}")
            lines.append(
                f"| {row['size_mib']} MiB | {v} | {_spread_cell(r['mib_s'])} "
                f"| {_spread_cell(r['cpu_s_per_gib'], 1.0, '{:.2f}')} | {_spread_cell(r['extra_rss'], MiB, '{:.1f}')} "
                f"| {checks} |"
            )
    lines += [
        "",
        "Ratios paired by repeat (each repeat runs the three variants back to back), median (min-max):",
        "",
        "| size | repeats | plugin / socket copy (MiB/s) | plugin / previous hook (MiB/s) "
        "| previous hook / plugin (client CPU) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in iso["summary"]:
        lines.append(
            f"| {row['size_mib']} MiB | {row['repeats']} | {_ratio(row['plugin_vs_socket'])} "
            f"| {_ratio(row['plugin_vs_previous'])} | {_ratio(row['cpu_previous_over_plugin'])} |"
        )
    sweep = iso.get("sweep_summary") or []
    if sweep:
        lines += [
            "",
            f"Chunk-size sweep (plugin, {sweep[0]['size_mib']} MiB object, {sweep[0]['repeats']} runs each):",
            "",
            "| chunk_size | MiB/s | client CPU s/GiB | extra RSS (MiB) |",
            "|---:|---:|---:|---:|",
        ]
        for row in sweep:
            lines.append(
                f"| {row['chunk_size'] >> 10} KiB | {_spread_cell(row['mib_s'])} "
                f"| {_spread_cell(row['cpu_s_per_gib'], 1.0, '{:.2f}')} "
                f"| {_spread_cell(row['extra_rss'], MiB, '{:.1f}')} |"
            )
    return lines


def _hooks(results: dict) -> list[str]:
    h = results["hooks"]
    lines = [
        f"{h['triggers']} triggers, jobs of {h['job_seconds']:g} s, poll interval {h['poll_interval']:g} s; "
        f"previous hook: `hooks.py` at `{h['previous_rev']}`.",
        "",
        "| repeat | hook | job GETs | client CPU (s) | CPU per GET (ms) | events success |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in h["runs"]:
        lines.append(
            f"| {r['repeat']} | {r['hook']} | {r['gets']} | {r['cpu_s']:.2f} | {r['ms_per_get']:.3f} "
            f"| {r['success']}/{r['triggers']} |"
        )
    lines += ["", f"CPU per GET, previous / current, paired by repeat: {_ratio(h['speed_ratio'])}."]
    return lines


def _trigger(results: dict) -> list[str]:
    lines = [
        "| scenario | triggers | CPU share of one core | CPU s / wall s | job GETs sent (ideal) | GETs per trigger "
        "| token fetches | lag p50 | lag p99 | lag max | loop wake-up p99 / max | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["trigger"]:
        tag = "all start at once" if not r["spread_s"] else f"starts spread over {r['spread_s']:g} s"
        lines.append(
            f"| {tag} | {r['triggers']} | {r['cpu_share'] * 100:.1f}% | {r['cpu_s']:.1f} / {r['wall_s']:.0f} "
            f"| {r['requests_sent']} ({r['requests_ideal']}) | {r['requests_per_trigger']:.1f} | {r['token_fetches']} "
            f"| {r['lag_p50']:.2f} s | {r['lag_p99']:.2f} s | {r['lag_max']:.2f} s "
            f"| {r['loop_lag_p99'] * 1000:.0f} / {r['loop_lag_max'] * 1000:.0f} ms | {_mib(r['max_rss'])} MiB |"
        )
    first = results["trigger"][0]
    poke = first["poke"]
    pm = first["poke_mode"]
    lines += [
        "",
        f"Poke mode instead (same {first['triggers']} waits, same checks): measured one poke = "
        f"{poke['cpu_per_poke'] * 1000:.1f} ms CPU, {poke['wall_per_poke'] * 1000:.1f} ms wall "
        f"(sync `SymblHook.get_job`, token cached, {poke['pokes']} pokes); a task process that imported the sensor "
        f"holds {_mib(poke['rss'])} MiB.",
        "",
        "| | deferrable (one triggerer) | poke mode |",
        "|---|---:|---:|",
        f"| worker slots held while waiting | 0 | {pm['worker_slots_held']} |",
        f"| memory while waiting | {_mib(pm['deferrable_rss_total'])} MiB (one process) "
        f"| {pm['rss_total'] / (1 << 30):,.0f} GiB ({pm['worker_slots_held']} task processes, "
        "supervisors not counted) |",
        f"| CPU for the status checks | {pm['deferrable_cpu_s']:.1f} s | {pm['cpu_s_for_pokes']:.1f} s |",
    ]
    return lines


def _parse(results: dict) -> list[str]:
    p = results["parse"]
    lines = [
        f"Bare `import airflow.sdk`: {p['sdk_s']:.3f} s (median of {p['repeat']} fresh processes; "
        f"{p['sdk_network_attempts']} network attempts).",
        "",
        "| DAG file | import over airflow.sdk (median) | min / max | ratio to bare airflow.sdk | DAGs / tasks "
        "| network attempts (all runs) | boto3/requests/aiohttp loaded | slowest imports it triggers |",
        "|---|---:|---:|---:|---|---:|---|---|",
    ]
    for row in p["dags"]:
        top = ", ".join(f"`{t['module']}` {t['cumulative_s'] * 1000:.0f} ms" for t in row["importtime_top"][:4])
        what_if = f" with `{row['what_if']}` (what-if)" if row.get("what_if") else ""
        lines.append(
            f"| `{row['file']}`{what_if} | {row['dag_s']:.3f} s | {row['dag_s_min']:.3f} / {row['dag_s_max']:.3f} s "
            f"| {row['ratio_to_sdk']:.2f}x | {', '.join(row['dags'])} / {row['tasks']} | {row['network_attempts']} "
            f"| {', '.join(row['heavy_modules_loaded']) or 'none'} | {top} |"
        )
    return lines


def _measured(results: dict) -> list[str]:
    when = results.get("measured") or {}
    if not when:
        return []
    return ["", "| section | measured |", "|---|---|"] + [f"| {name} | {at} |" for name, at in when.items()]


def write(results: dict, docs: Path, benchmarks: dict | None = None) -> tuple[Path, Path]:
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / "benchmarks.png"
    plot(results, png)
    md = docs / "benchmarks.md"
    template = (Path(__file__).parent / "benchmarks_template.md").read_text()
    sections = {
        "MACHINE": _machine(results) + _measured(results),
        "TARGETS": ["| benchmark | target | measured | |", "|---|---|---|---|"]
        + [f"| {b} | {t} | {m} | {_ok(ok)} |" for b, t, m, ok in targets(results, benchmarks)],
        "UPLOAD": _upload(results) if "upload" in results else ["(not run)"],
        "ISOLATED": _isolated(results) if "isolated" in results else ["(not run)"],
        "TRIGGER": _trigger(results) if "trigger" in results else ["(not run)"],
        "HOOKS": _hooks(results) if "hooks" in results else ["(not run)"],
        "PARSE": _parse(results) if "parse" in results else ["(not run)"],
    }
    for name, (_, module) in (benchmarks or {}).items():
        render = getattr(module, "markdown", None)
        if module.__name__ not in _BUILTIN and render is not None:
            sections[name.upper()] = render(results[name]) if name in results else ["(not run)"]
    text = template
    for key, lines in sections.items():
        text = text.replace("{{" + key + "}}", "\n".join(lines))
    md.write_text(text)
    return md, png
