"""Load on the web studio: many tabs playing at once against one server (issue 13, point 4).

    .venv/bin/python evaluation/bench_studio.py [--tabs 8] [--max-sessions 8] [--seconds 60]
        [--out FILE.md]

Starts `structdiff serve` (loopback only, the studio's default cue sheet, its default of one
torch thread) with `--max-sessions`, opens `--tabs` WebSocket clients at once, presses play in
each and, for `--seconds`, a new state every 8 bars, then reads back per tab from
`/api/status`: the bars played, underruns (a bar not written in time, played again) and the
real-time factor (seconds spent writing / seconds of music). Each client also measures how late
its events arrive against the session's own timeline: each event's arrival minus its session
time, less the smallest such difference of that tab (the 95th percentile; the jitter of
delivery, 0 when every event arrives exactly on its schedule).
A last client then opens past the limit and must be refused with the server's message. The
whole run is bounded by `--seconds` plus a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from structdiff.metrics.report import publish

STATES = ("explore", "stealth", "battle", "victory", "menu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def tab(url: str, seconds: float, index: int) -> dict:
    lateness, bars, full = [], 0, None
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        hello = json.loads((await ws.receive()).data)
        await ws.send_json({"op": "play"})
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            try:
                msg = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
            except TimeoutError:
                continue
            if msg["type"] == "full":
                full = msg["message"]
                break
            if msg["type"] != "event":
                continue
            ev = msg["event"]
            if ev["type"] in ("note_on", "bar", "beat"):  # programs are sent before bar 0
                lateness.append(time.monotonic() - ev["t"])
            if ev["type"] == "bar":
                bars += 1
                if bars % 8 == 0:
                    await ws.send_json({"op": "state", "name": STATES[(bars // 8 + index) % 5]})
        await ws.send_json({"op": "stop"})
    if lateness:
        base = min(lateness)
        lateness = sorted(x - base for x in lateness)
    return {"session": hello["session"], "bars_seen": bars, "full": full,
            "late95": lateness[int(0.95 * (len(lateness) - 1))] if lateness else float("nan")}


async def run(url: str, tabs: int, seconds: float) -> tuple[list[dict], dict]:
    results = await asyncio.gather(*(tab(url, seconds, i) for i in range(tabs)))
    async with aiohttp.ClientSession() as http:
        status = await (await http.get(url + "/api/status")).json()
    return results, status


async def one_more(url: str, tabs: int, seconds: float) -> str | None:
    """Fill the server with `tabs` playing tabs, then one more: its refusal message."""
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(url + "/ws") for _ in range(tabs + 1)]
        for ws in sockets:
            await ws.receive()
        for ws in sockets[:-1]:
            await ws.send_json({"op": "play"})
        await asyncio.sleep(seconds)
        await sockets[-1].send_json({"op": "play"})
        refused = None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            msg = json.loads((await sockets[-1].receive()).data)
            if msg["type"] in ("full", "status"):
                refused = msg.get("message") if msg["type"] == "full" else None
                break
        for ws in sockets:
            await ws.close()
        return refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=8)
    parser.add_argument("--max-sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "structdiff.cli", "serve", "--port",
                               str(port), "--max-sessions", str(args.max_sessions)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        results, status = asyncio.run(asyncio.wait_for(
            run(url, args.tabs, args.seconds), args.seconds + 60))
        refused = asyncio.run(asyncio.wait_for(
            one_more(url, args.max_sessions, 4.0), 60))
    finally:
        server.terminate()
        server.wait(10)
    by_id = {t["session"]: t for t in status["tabs"]}
    rows = []
    for r in results:
        t = by_id.get(r["session"], {})
        rtf = t.get("write_seconds", 0) / max(t.get("music_seconds", 0), 1e-9)
        rows.append((r["session"], t.get("bars", 0), t.get("underruns", 0), rtf,
                     r["late95"], r["full"]))
    playing = [r for r in rows if r[5] is None]
    lines = [
        "# The studio under load",
        "",
        f"`.venv/bin/python evaluation/bench_studio.py --tabs {args.tabs} --max-sessions "
        f"{args.max_sessions} --seconds {args.seconds:.0f}` on {os.cpu_count()} cores: one "
        f"server, {args.tabs} tabs playing the default cue sheet at once for "
        f"{args.seconds:.0f} s, a new state every 8 bars.",
        "",
        "| tab | bars played | underruns | real-time factor (writing / music) | "
        "events late, 95th pct (s) | refused |",
        "|---|---|---|---|---|---|",
        *[f"| {i + 1} | {b} | {u} | {f:.3f} | {late:.3f} | {full or ''} |"
          for i, (_, b, u, f, late, full) in enumerate(rows)],
        "",
        f"Playing: {len(playing)} of {args.tabs}; underruns in all: "
        f"{sum(r[2] for r in playing)}; real-time factor, mean over tabs: "
        f"{statistics.mean(r[3] for r in playing) if playing else float('nan'):.3f} (the "
        f"sum, {sum(r[3] for r in playing):.2f}, against {os.cpu_count()} cores).",
        "",
        f"One tab more than --max-sessions {args.max_sessions}: "
        + (f"refused with \"{refused}\"" if refused else "**not refused**"),
    ]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
