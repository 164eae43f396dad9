"""The `continuum` command.

Exit codes: 0 pass, 1 fail, 2 bad input, 3 harness error, 4 inconclusive, 130 interrupted.
Every file and flag is validated before the first Docker call; errors name file:line:column.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from harness import __version__
from harness.errors import ContinuumError, InputError, Interrupted

EXIT_INTERRUPTED = 130


def _image_overrides(values: list[str]) -> dict[str, str]:
    import re

    out: dict[str, str] = {}
    for v in values or []:
        m = re.fullmatch(r"([a-z][a-z0-9_-]*)=([A-Za-z0-9][A-Za-z0-9._/:@-]*)", v)
        if not m:
            raise InputError(f"--image {v!r}: expected SERVICE=IMAGE, e.g. app=ledger:candidate", field="--image")
        out[m.group(1)] = m.group(2)
    return out


def _check_overrides(overrides: dict[str, str], targets) -> None:
    """Every overridden service must exist in at least one of the targets that will run, so a
    typo is bad input (exit 2) before any container starts, not a harness error half-way."""
    if not overrides:
        return
    known: set[str] = set()
    for t in targets:
        known.update(s.name for s in t.services)
    for svc, image in overrides.items():
        if svc not in known:
            raise InputError(
                f"--image {svc}={image}: no service {svc!r} in the target(s); services: {', '.join(sorted(known))}",
                field="--image",
            )


def _report_dir(value: str) -> Path:
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise InputError(f"--report-dir {value}: exists and is not a directory", field="--report-dir")
    return path


def _say(text: str) -> None:
    print(f"continuum: {text}", file=sys.stderr, flush=True)


# ─────────────────────────────────── commands ───────────────────────────────────


def cmd_run(args: argparse.Namespace) -> int:
    from harness.loader import load_experiments

    overrides = _image_overrides(args.image)
    report_dir = _report_dir(args.report_dir)
    # All validated before any Docker call, against --target when given.
    experiments = load_experiments([Path(p) for p in args.paths], target=args.target)
    if not experiments:
        raise InputError("no experiment files found in " + ", ".join(args.paths))
    _check_overrides(overrides, [e.target for e in experiments])
    return _run_suite(experiments, report_dir, overrides, args)


def _run_suite(experiments, report_dir: Path, overrides, args, pacer=None, keep_stack=False) -> int:
    from harness.events import Events
    from harness.measure import suite_exit_code
    from harness.report import write_reports
    from harness.report.console import ConsoleReporter, print_summary
    from harness.report.journal import Journal
    from harness.run import run_experiment, signals_as_interrupt

    report_dir.mkdir(parents=True, exist_ok=True)
    baseline = Path(args.baseline) if getattr(args, "baseline", None) else None
    results, records = [], []
    events = Events()
    ConsoleReporter(events, live=None if not getattr(args, "plain", False) else False)
    with Journal(report_dir / "journal.jsonl") as journal, signals_as_interrupt():
        journal.attach(events)
        try:
            for exp in experiments:
                record, result = run_experiment(
                    exp, events=events, image_overrides=overrides, pacer=pacer, keep_stack=keep_stack
                )
                records.append(record)
                results.append(result)
                write_reports(results, records, report_dir, baseline)
        except Interrupted as exc:
            record = getattr(exc, "record", None)
            if record is not None:
                records.append(record)
                results.append(exc.result)  # type: ignore[attr-defined]
                write_reports(results, records, report_dir, baseline)
            print_summary(results)
            _say(f"{exc}: faults reverted, stack removed; reports in {report_dir}")
            return EXIT_INTERRUPTED
    print_summary(results)
    _say(f"reports in {report_dir}/ (junit.xml, results.json, journal.jsonl, report.html)")
    late = events.take_failures()          # a listener that failed on the last event of a run
    if late:
        for f in late:
            _say(f"harness error: {f}")
        return 3
    return suite_exit_code(results)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.plan import cmd_validate as validate

    return validate(args.paths)


def cmd_schema(args: argparse.Namespace) -> int:
    from harness.plan import cmd_schema as schema

    return schema()


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.plan import cmd_plan as plan

    return plan(args.paths)


def cmd_images(args: argparse.Namespace) -> int:
    from harness.stack.engine import connect
    from harness.loader import load_target
    from harness.stack.images import ensure_images

    targets = [load_target(Path(p)) for p in (args.targets or ["targets/reference"])]
    t = time.monotonic()
    statuses = ensure_images(connect(), targets, say=_say)
    for s in statuses:
        print(f"{s.action:8} {s.name}  ({s.seconds:.1f} s)")
    print(f"images ready in {time.monotonic() - t:.1f} s")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from harness.run import signals_as_interrupt
    from harness.runid import check_run_id
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images
    from harness.loader import load_target
    from harness.stack.stack import Stack

    target = load_target(Path(args.target))
    overrides = _image_overrides(args.image)
    _check_overrides(overrides, [target])
    run_id = check_run_id(args.run_id) if args.run_id else None
    client = connect()
    ensure_images(client, [target], overrides=overrides, say=_say)
    with signals_as_interrupt():
        stack = Stack(target, run_id, client=client, image_overrides=overrides, detach=not args.hold, say=_say)
        t = time.monotonic()
        try:
            with stack:
                print(f"run {stack.run_id}: {target.name} healthy in {time.monotonic() - t:.1f} s")
                for url in stack.endpoints():
                    print(f"  entry point {url}")
                print(f"  toxiproxy   http://{stack.toxiproxy.address}")
                mon = target.monitoring
                for what, sp in (("prometheus", mon and mon.prometheus), ("alertmanager", mon and mon.alertmanager)):
                    if sp:
                        print(f"  {what:<11} {stack.published_url(sp.service, sp.port)}")
                if args.hold:
                    print("holding; Ctrl-C or SIGTERM tears it down", flush=True)
                    while True:
                        time.sleep(3600)
                else:
                    print(f"stop it with: continuum down {stack.run_id}")
        except Interrupted as exc:
            _say(f"{exc}: stack removed")
            return EXIT_INTERRUPTED
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from harness.runid import check_run_id, owner_alive
    from harness.stack.cleanup import list_runs, remove_run
    from harness.stack.engine import connect

    client = connect()
    runs = list_runs(client)
    if args.run:
        run_id = check_run_id(args.run)
        if not any(r.run_id == run_id for r in runs):
            raise InputError(f"no run {run_id} (see `continuum ps`)", field="RUN")
        chosen = [run_id]
    else:
        # Without a run id: every detached stack and orphan, never a run a live process owns.
        chosen = [r.run_id for r in runs if args.all or r.owner == "detached" or not owner_alive(r.owner)]
    for run_id in chosen:
        t = time.monotonic()
        c, n = remove_run(client, run_id)
        print(f"removed run {run_id}: {c} containers, {n} networks in {time.monotonic() - t:.1f} s")
    if not chosen:
        print("nothing to remove")
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from harness.runid import owner_alive
    from harness.stack.cleanup import list_runs
    from harness.stack.engine import connect

    runs = list_runs(connect())
    if not runs:
        print("no Continuum runs")
        return 0
    print(f"{'RUN':12} {'TARGET':20} {'CONTAINERS':>10} {'RUNNING':>8} {'NETWORKS':>9}  OWNER")
    for r in runs:
        owner = r.owner if r.owner == "detached" else (f"{r.owner} (alive)" if owner_alive(r.owner) else f"{r.owner} (gone)")
        print(f"{r.run_id:12} {r.target:20} {r.containers:>10} {r.running:>8} {r.networks:>9}  {owner}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import run_doctor

    return run_doctor(Path(args.target))


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.html import cmd_report as report

    return report(Path(args.results_dir))


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import cmd_compare as compare

    return compare(Path(args.baseline), Path(args.candidate))


def cmd_gameday(args: argparse.Namespace) -> int:
    from harness.gameday import OperatorConsole
    from harness.loader import load_experiment

    exp = load_experiment(Path(args.experiment))
    report_dir = _report_dir(args.report_dir)
    overrides = _image_overrides(args.image)
    _check_overrides(overrides, [exp.target])
    args.plain = True  # prompts and a live panel would fight over the terminal
    with OperatorConsole(exp) as pacer:
        return _run_suite([exp], report_dir, overrides, args, pacer=pacer, keep_stack=args.keep)


# ─────────────────────────────────── parser ───────────────────────────────────


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="continuum",
        description="Break a redundant stack under load, measure, and gate on the numbers.",
    )
    p.add_argument("--version", action="version", version=f"continuum {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("run", cmd_run, "run experiment files or folders (a suite); exit code is the worst verdict")
    sp.add_argument("paths", nargs="+", metavar="PATH")
    sp.add_argument("--report-dir", default="reports/latest", help="where reports go (default reports/latest)")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE", help="override a service's image")
    sp.add_argument("--baseline", metavar="DIR", help="a previous report dir to compare against in report.html")
    sp.add_argument("--target", metavar="TARGET", help="run the experiments against this target instead of their own")
    sp.add_argument("--plain", action="store_true", help="one line per event even on a terminal")

    sp = add("validate", cmd_validate, "check experiment files; touches nothing")
    sp.add_argument("paths", nargs="+", metavar="FILE")
    add("schema", cmd_schema, "print the JSON Schema of experiment files")
    sp = add("plan", cmd_plan, "print the timeline an experiment would run; touches nothing")
    sp.add_argument("paths", nargs="+", metavar="FILE")

    sp = add("up", cmd_up, "bring a target up (detached unless --hold) and print its run id")
    sp.add_argument("target", metavar="TARGET")
    sp.add_argument("--run-id")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE")
    sp.add_argument("--hold", action="store_true", help="stay in the foreground; tear down on Ctrl-C/SIGTERM")
    sp = add("down", cmd_down, "remove a run's containers and networks (default: detached and orphaned runs)")
    sp.add_argument("run", nargs="?", metavar="RUN")
    sp.add_argument("--all", action="store_true", help="also runs whose owner is alive")
    add("ps", cmd_ps, "list Continuum runs on this engine")
    sp = add("images", cmd_images, "pull or build every image the targets and the harness need")
    sp.add_argument("targets", nargs="*", metavar="TARGET")
    sp = add("doctor", cmd_doctor, "check the engine, images, ports and disk; say how to fix what is missing")
    sp.add_argument("target", nargs="?", default="targets/reference", metavar="TARGET")
    sp = add("report", cmd_report, "regenerate report.html from a results directory")
    sp.add_argument("results_dir", metavar="RESULTS_DIR")
    sp = add("compare", cmd_compare, "compare a candidate's results with a baseline's; exit 1 on regression")
    sp.add_argument("baseline", metavar="BASELINE_DIR")
    sp.add_argument("candidate", metavar="CANDIDATE_DIR")
    sp = add("gameday", cmd_gameday, "run an experiment at human pace: confirm each fault, add notes, abort")
    sp.add_argument("experiment", metavar="EXPERIMENT")
    sp.add_argument("--report-dir", default="reports/gameday")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE")
    sp.add_argument("--keep", action="store_true", help="keep the stack running afterwards")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.fn(args))
    except InputError as exc:
        print(f"continuum: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        _say(str(exc))
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except ContinuumError as exc:
        print(f"continuum: harness error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
