"""FFI overhead from Python: opening a replica with three building documents, N small `identity`
reads and N `record_visit` calls through the generated bindings (compare
bindings/examples/bench_ffi.rs).

Run by `scripts/bindings-test.sh --bench`; prints one JSON object per measurement.
"""

import json
import os
import shutil
import sys
import tempfile
import time

import doorstep_ffi as d


def report(name, calls, seconds):
    ms = seconds * 1000
    print(json.dumps({"bench": name, "lang": "python", "calls": calls,
                      "total_ms": round(ms, 1), "per_call_us": round(ms * 1000 / calls, 1)}))


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    work = tempfile.mkdtemp(prefix="doorstep-bench-")
    try:
        open_path = os.path.join(work, "open.db")
        d.seed_demo_replica(open_path)
        started = time.perf_counter()
        opened = d.DoorstepReplica.open(open_path)
        report("open_replica", 1, time.perf_counter() - started)
        started = time.perf_counter()
        assert len(opened.buildings()) == 3
        report("first_read_3_buildings", 1, time.perf_counter() - started)

        started = time.perf_counter()
        for _ in range(calls):
            opened.identity()
        report("identity", calls, time.perf_counter() - started)

        path = os.path.join(work, "visits.db")
        seed = d.seed_demo_replica(path)
        replica = d.DoorstepReplica.open(path)
        units = [u.unit.code for b in seed.buildings for u in replica.units(b, None)]
        started = time.perf_counter()
        for i in range(calls):
            replica.record_visit(seed.resolution, units[i % len(units)], d.DoorOutcome.NOT_HOME, "")
        report("record_visit", calls, time.perf_counter() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
