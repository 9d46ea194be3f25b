"""bench/results.json, shared by every bench script: each merges its rows in by name, and running this
file prints the table. `make bench` runs it last.

{"machine": "...", "rows": [{"name", "value", "unit", "baseline", "ratio", "goal"}]}
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"load average at the start {load}")


def row(name: str, value: float, unit: str, goal: str, baseline: float | None = None,
        ratio: float | None = None) -> dict:
    if ratio is None and baseline:
        ratio = value / baseline
    return {"name": name, "value": round(value, 2), "unit": unit,
            "baseline": round(baseline, 2) if baseline is not None else None,
            "ratio": round(ratio, 3) if ratio is not None else None, "goal": goal}


def record(rows: list[dict]) -> None:
    current = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"machine": machine(), "rows": []}
    names = {r["name"] for r in rows}
    current["rows"] = [r for r in current["rows"] if r["name"] not in names] + rows
    current["machine"] = machine()
    RESULTS.write_text(json.dumps(current, indent=2, ensure_ascii=False) + "\n")


def table(results: dict) -> str:
    lines = [f"Machine: {results['machine']}", "",
             f"| {'name':<26} | {'value':>10} | {'unit':<10} | {'baseline':>9} | {'ratio':>6} | goal",
             f"|{'-' * 28}|{'-' * 12}|{'-' * 12}|{'-' * 11}|{'-' * 8}|{'-' * 40}"]
    for r in results["rows"]:
        baseline = "—" if r["baseline"] is None else f"{r['baseline']:g}"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(f"| {r['name']:<26} | {r['value']:>10g} | {r['unit']:<10} | {baseline:>9} | {ratio:>6} | "
                     f"{r['goal']}")
    return "\n".join(lines)


if __name__ == "__main__":
    if RESULTS.exists():
        print(table(json.loads(RESULTS.read_text())))
    else:
        print("bench/results.json: no results yet")
