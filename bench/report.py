"""Render benchmark results into docs/benchmarks.md and docs/benchmarks.png, and judge the targets."""

from __future__ import annotations

from pathlib import Path

from bench.common import MiB
from bench.png import Canvas, bar_chart

COLORS = {"raw": (70, 90, 200), "operator": (0, 150, 80), "seed": (210, 120, 0)}
RSS_TARGET = 64 * MiB
PARSE_TARGET = 0.3
CPU_TARGET = 0.15


def _mib(value: float) -> str:
    return f"{value / MiB:,.1f}"


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


# ------------------------------------------------------------------------------------------------ verdicts
def targets(results: dict) -> list[tuple[str, str, str, bool]]:
    """(benchmark, target, measured, met) for every target of issue #9 that was measured."""
    rows = []
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
    return rows


def verdicts(results: dict) -> list[str]:
    return [
        f"[{'met' if ok else 'MISSED'}] {bench}: {target}: {measured}"
        for bench, target, measured, ok in targets(results)
    ]


# ------------------------------------------------------------------------------------------------ plot
def plot(results: dict, path: Path) -> None:
    up = results.get("upload", {}).get("summary") or []
    trig = results.get("trigger") or []
    parse = results.get("parse")
    canvas = Canvas(1200, 760)
    if up:
        groups = [f"{r['size_mib']} MIB" for r in up]
        series = [(v, COLORS[v], [r[v]["extra_rss"] / MiB for r in up]) for v in ("raw", "operator", "seed")]
        bar_chart(
            canvas,
            (20, 10, 570, 360),
            "UPLOAD: EXTRA RSS OF THE UPLOADER",
            groups,
            series,
            unit="MIB",
            target=64,
            target_label="TARGET 64 MIB",
        )
        series = [(v, COLORS[v], [r[v]["mib_s"] for r in up]) for v in ("raw", "operator", "seed")]
        bar_chart(canvas, (620, 10, 560, 360), "UPLOAD: THROUGHPUT (MEDIAN)", groups, series, unit="MIB/S")
    if trig:
        groups = ["ALL AT ONCE" if not r["spread_s"] else f"SPREAD {r['spread_s']:g} S" for r in trig]
        series = [
            ("LAG P50", (120, 120, 220), [r["lag_p50"] for r in trig]),
            ("LAG P99", (40, 40, 160), [r["lag_p99"] for r in trig]),
            ("CPU % OF A CORE", (0, 150, 80), [r["cpu_share"] * 100 for r in trig]),
        ]
        limit = trig[0]["poll_interval"] + 1
        bar_chart(
            canvas,
            (20, 390, 570, 360),
            f"{trig[0]['triggers']} TRIGGERS: LAG (S), CPU (%)",
            groups,
            series,
            target=limit,
            target_label=f"LAG TARGET {limit:g} S",
        )
    if parse:
        groups = [
            row["file"].split("/")[-1].removesuffix(".py").replace("symbl_", "")
            + (" (NO S3 URI)" if row.get("what_if") else "")
            for row in parse["dags"]
        ]
        series = [("+S OVER AIRFLOW.SDK", (210, 120, 0), [row["dag_s"] for row in parse["dags"]])]
        bar_chart(
            canvas,
            (620, 390, 560, 360),
            "DAG PARSE: IMPORT TIME (S)",
            groups,
            series,
            target=PARSE_TARGET,
            target_label="TARGET 0.3 S",
        )
    path.write_bytes(canvas.png())


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


def write(results: dict, docs: Path) -> tuple[Path, Path]:
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / "benchmarks.png"
    plot(results, png)
    md = docs / "benchmarks.md"
    template = (Path(__file__).parent / "benchmarks_template.md").read_text()
    sections = {
        "MACHINE": _machine(results),
        "TARGETS": ["| benchmark | target | measured | |", "|---|---|---|---|"]
        + [f"| {b} | {t} | {m} | {_ok(ok)} |" for b, t, m, ok in targets(results)],
        "UPLOAD": _upload(results) if "upload" in results else ["(not run)"],
        "TRIGGER": _trigger(results) if "trigger" in results else ["(not run)"],
        "PARSE": _parse(results) if "parse" in results else ["(not run)"],
    }
    text = template
    for key, lines in sections.items():
        text = text.replace("{{" + key + "}}", "\n".join(lines))
    md.write_text(text)
    return md, png
