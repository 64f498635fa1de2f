"""benches/load/bench.py --rounds: the rows of every round are folded into medians, and the
ratio tables read the folded rows and show each round's ratio beside them."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches" / "load"))

import bench  # noqa: E402


def row(target, round_, rps, cpu, rss, conns=0):
    return {"scenario": "json_30k", "target": target, "mode": "max", "round": round_, "rps": rps,
            "cpu_ms_per_req": cpu, "p50_ms": 1.0 * round_, "p99_ms": 2.0 * round_, "switches_per_req": 0.5,
            "peak_rss_mb": rss, "ok": 100, "non_200": 0, "errors": 0, "upstream_connections": conns,
            "upstream_requests": 100, "body_bytes": 30_000, "connections": 64}


def test_rounds_fold_into_medians_with_their_spread():
    rows = [row("gateway", 1, 7000, 0.20, 40.0, 2), row("gateway", 2, 9000, 0.15, 46.5, 0),
            row("gateway", 3, 8000, 0.18, 41.0, 1)]
    folded = [r for r in bench.medians(rows) if "round" not in r]
    assert len(folded) == 1
    gw = folded[0]
    assert gw["rounds"] == 3
    assert gw["rps"] == 8000 and gw["cpu_ms_per_req"] == 0.18 and gw["p50_ms"] == 2.0
    assert gw["spread"]["rps"] == [7000, 9000] and gw["spread"]["cpu_ms_per_req"] == [0.15, 0.20]
    assert gw["peak_rss_mb"] == 46.5, "memory takes the largest round, not the median"
    assert gw["upstream_connections"] == 3 and gw["ok"] == 300
    assert gw["body_bytes"] == 30_000


def test_the_ratio_table_reads_the_medians_and_lists_each_round(capsys):
    rows = [row("gateway", 1, 7000, 0.20, 40.0), row("pingora", 1, 8000, 0.16, 20.0),
            row("gateway", 2, 9000, 0.15, 40.0), row("pingora", 2, 9000, 0.15, 20.0),
            row("gateway", 3, 8000, 0.18, 40.0), row("pingora", 3, 7000, 0.17, 20.0)]
    bench.print_tables(bench.medians(rows), rates=[])
    out = capsys.readouterr().out
    # Medians 8 000 / 8 000 req/s and 0.18 / 0.16 ms: 1.00 and 1.12; rounds 0.88, 1.25; 1.00, 1.00; 1.14, 1.06.
    # The CPU added: 20 µs between the medians, 40, 0 and 10 µs round by round.
    assert "| json_30k | 1.00 | 1.12 | 0.88, 1.25; 1.00, 1.00; 1.14, 1.06 | 20 (40; 0; 10) |" in out


def test_a_single_run_shows_the_cpu_added_without_rounds(capsys):
    rows = [row("gateway", 1, 7000, 0.095, 40.0), row("pingora", 1, 8000, 0.080, 20.0)]
    for r in rows:
        del r["round"]
    bench.print_tables(rows, rates=[])
    out = capsys.readouterr().out
    assert "| scenario | gateway / bare Pingora: max req/s (target ≥ 0.92) | CPU per request (target ≤ 1.10) | " \
           "CPU added, µs a request |" in out
    assert "| json_30k | 0.88 | 1.19 | 15 |" in out


def test_the_metered_floor_gets_its_own_tables(capsys):
    rows = [row("gateway", 1, 7000, 0.0500, 40.0), row("pingora", 1, 8000, 0.0400, 20.0),
            row("pingora_meter", 1, 7600, 0.0440, 30.0)]
    for r in rows:
        del r["round"]
    bench.print_tables(rows, rates=[])
    out = capsys.readouterr().out
    assert "| scenario | bare Pingora with the metering row / bare Pingora: max req/s | CPU per request |" in out
    # 7 600 / 8 000 req/s, 0.044 / 0.040 ms: 0.95 and 1.10, 4 µs added.
    assert "| json_30k | 0.95 | 1.10 | 4 |" in out
    # The gateway over that floor: 7 000 / 7 600, 0.050 / 0.044: 0.92 and 1.14, 6 µs.
    assert "| json_30k | 0.92 | 1.14 | 6 |" in out
