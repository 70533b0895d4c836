"""Run one bench/ours.py function in this (fresh) process; print one JSON line.

usage: python -m bench._run_ours FUNCTION 'KWARGS_JSON'
"""

from __future__ import annotations

import json
import sys
import traceback

RESULT_PREFIX = "BENCH_RESULT "


def main(argv: list[str]) -> int:
    name, kwargs = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    from bench import ours

    fn = getattr(ours, name)
    try:
        result = fn(**kwargs)
        if not isinstance(result, dict):
            result = {"error": f"{name} returned {type(result).__name__}, not dict"}
    except NotImplementedError as exc:
        result = {"not_implemented": str(exc) or "not implemented"}
    except Exception as exc:
        result = {"error": repr(exc), "traceback": traceback.format_exc()[-3000:]}
    result["process_peak_rss_bytes"] = ours._vmhwm()
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
