"""The docs tables that come from the models: the fault actions, the metrics, the probes and
the Compose acceptance table.

    python -m harness.docs          rewrite the tables in docs/experiment-format.md and
                                    docs/target-format.md
    python -m harness.docs --check  exit 1 if they are out of date (a unit test runs this)

The tables sit between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` markers, so a
new fault family appears in the docs by running this, and a stale table fails the tests.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from harness.faults import actions
from harness.model.assertions import AUDIT_METRICS, DRILL_METRICS, METRICS, MONITOR_METRICS, VERSION_METRICS
from harness.model.compose import KEYS, TOP_KEYS
from harness.model.probes import DEFAULT_MODE, KINDS, MODES

DOCS_DIR = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS_DIR / "experiment-format.md"
TARGET_DOC = DOCS_DIR / "target-format.md"
COMMON = ("name", "action", "at")
UNITS = {"ratio": "`%` (required): `\">= 99.9%\"`", "seconds": "`ms`, `s` or `m` (required): `\"<= 800ms\"`",
         "count": "none, whole number: `\"== 0\"`", "rate": "`/s`: `\">= 100/s\"`"}


def fault_table() -> str:
    rows = ["| action | family | fields (required in bold) | notes |", "|---|---|---|---|"]
    for action, cls in actions().items():
        fields = []
        for name, f in cls.model_fields.items():
            key = f.alias or name
            if key in COMMON or key not in cls.input_keys():
                continue
            fields.append(f"**{key}**" if f.is_required() else key)
        rows.append(f"| `{action}` | {cls.family()} | {', '.join(fields)} | {cls.summary} |")
    return "\n".join(rows)


def metric_table() -> str:
    rows = ["| metric | kind | unit in the threshold |", "|---|---|---|"]
    for metric, kind in METRICS.items():
        note = " (needs the target's durability read-back)" if metric in AUDIT_METRICS else \
            " (slo only; needs the target's x-continuum.monitoring)" if metric in MONITOR_METRICS else \
            " (whole run; needs `version` in the requests' context)" if metric in VERSION_METRICS else \
            " (slo only; a drill: needs a `drill.disaster` fault)" if metric in DRILL_METRICS else ""
        rows.append(f"| `{metric}` | {kind} | {UNITS[kind]}{note} |")
    rows.append("| *an invariant's name* | invariant | `\"== 1\"`: 1 when the target's named invariant "
                "holds, 0 when not (`x-continuum.durability.invariants`; the ledger's is "
                "`money_conserved`) |")
    return "\n".join(rows)


def probe_table() -> str:
    rows = ["| kind | fields (required in bold) | a sample passes when |", "|---|---|---|"]
    common = {"name", "as", "mode", "interval", "timeout"}
    for kind, cls in KINDS.items():
        fields = [f"**{k}**" if cls.model_fields[n].is_required() else k
                  for n, f in cls.model_fields.items() for k in [f.alias or n]
                  if k in cls.input_keys() and k not in common]
        rows.append(f"| `{kind}` | {', '.join(fields)} | {' '.join((cls.__doc__ or '').split())} |")
    rows += ["", "| `as` | modes (default first) |", "|---|---|"]
    for use, modes in MODES.items():
        ordered = [DEFAULT_MODE[use]] + [m for m in modes if m != DEFAULT_MODE[use]]
        rows.append(f"| `{use}` | {', '.join(f'`{m}`' for m in ordered)} |")
    return "\n".join(rows)


def _compose_rows(keys: dict) -> list[str]:
    order = {"accepted": 0, "warned": 1, "refused": 2}
    rows = ["| key | | what the harness does |", "|---|---|---|"]
    for key, rule in sorted(keys.items(), key=lambda kv: (order[kv[1].status], kv[0])):
        rows.append(f"| `{key}` | {rule.status} | {rule.note.replace('|', chr(92) + '|')} |")
    return rows


def compose_table() -> str:
    return "\n".join(_compose_rows(KEYS))


def compose_top_table() -> str:
    return "\n".join(_compose_rows(TOP_KEYS))


TABLES = {"faults": fault_table, "metrics": metric_table, "probes": probe_table}
TARGET_TABLES = {"compose": compose_table, "compose-top": compose_top_table}


def render(text: str, tables: dict = TABLES, doc: Path = DOC) -> str:
    for name, make in tables.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n)(?:.*?\n)?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{doc}: no <!-- generated:{name} --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(argv: list[str]) -> int:
    stale = 0
    for doc, tables in ((DOC, TABLES), (TARGET_DOC, TARGET_TABLES)):
        text = doc.read_text(encoding="utf-8")
        new = render(text, tables, doc)
        if "--check" in argv:
            if new != text:
                print(f"{doc} is out of date: run `python -m harness.docs`", file=sys.stderr)
                stale += 1
            continue
        doc.write_text(new, encoding="utf-8")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
