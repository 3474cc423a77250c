"""Benchmark (opt-in: HAPPY_BENCH=1): reconnect time to daemon state `running` after
a server restart, restarts spaced 31 s apart so each starts from a fresh reconnect
schedule (SPEC §4.4: it restarts after a connection that stayed up 30 s).
Results go to Benchmarks/sync.md by hand."""
import os
import statistics
import time

import pytest

from sync_fixtures import Account, SyncHappy, emu, wait_until  # noqa: F401
from test_sync import running_since

pytestmark = pytest.mark.skipif(os.environ.get("HAPPY_BENCH") != "1", reason="benchmark: set HAPPY_BENCH=1")


@pytest.mark.parametrize("spacing", [31.0, 5.0])
def test_bench_reconnect_after_restart(tmp_path, emu, spacing):
    h = SyncHappy(tmp_path, emu, Account(emu, "legacy"))
    try:
        h.start()
        assert h.wait_running()
        times, outages = [], []
        for _ in range(int(os.environ.get("HAPPY_BENCH_RUNS", "5"))):
            time.sleep(spacing)
            emu.stop()
            down = time.monotonic()
            emu.start()
            t_up = time.time()
            outages.append(time.monotonic() - down)
            t_run = wait_until(lambda: running_since(h, t_up - 0.5), 10)
            assert t_run
            times.append(max(0.0, t_run - t_up))
        print(f"\nspacing {spacing} s; outages {[round(o, 2) for o in outages]}; "
              f"reconnect→running (s) {[round(t, 3) for t in times]}; median {statistics.median(times):.3f}, worst {max(times):.3f}")
    finally:
        h.cleanup()
