"""The `continuum` command.

Exit codes: 0 pass, 1 fail, 2 bad input, 3 harness error, 4 inconclusive, 130 interrupted.
Every file and flag is validated before the first Docker call and before anything is written;
errors name file:line:column or the flag. Any exception that is not the system's verdict is a
harness error on every command: exit 3, one line on stderr, the traceback in a log file whose
path that line gives (the run's continuum.log, or a file under the temp directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from harness import __version__
from harness.errors import ContinuumError, HarnessError, InputError, Interrupted, ReportWriteError

EXIT_INPUT = 2
EXIT_HARNESS = 3
EXIT_INTERRUPTED = 130
RUN_LOG = "continuum.log"

log = logging.getLogger("harness.cli")


def _image_overrides(values: list[str]) -> dict[str, str]:
    """`--image SERVICE=IMAGE`, checked by the same rules as a compose file's `image:`."""
    from harness.model.imageref import parse_image_reference
    from harness.model.units import NAME_HELP, check_name

    out: dict[str, str] = {}
    for v in values or []:
        svc, sep, image = v.partition("=")
        if not sep:
            raise InputError(f"--image {v[:200]!r}: expected SERVICE=IMAGE, e.g. app=ledger:candidate",
                             field="--image")
        try:
            check_name(svc)
        except ValueError:
            raise InputError(f"--image {v[:200]!r}: {svc[:60]!r} is not a service name ({NAME_HELP})",
                             field="--image") from None
        try:
            parse_image_reference(image)
        except ValueError as exc:
            raise InputError(f"--image {v[:200]!r}: {exc}", field="--image") from None
        if svc in out:
            raise InputError(f"--image {svc}= is given twice ({out[svc]} and {image})", field="--image")
        out[svc] = image
    return out


def _target_flag(value: str | None) -> Path | None:
    """`--target DIR`: a directory holding a compose file, checked before anything else."""
    if value is None:
        return None
    from harness.model.target import COMPOSE_FILES
    from harness.yamlsafe import path_problem

    if not value or "\x00" in value or len(value) > 4096:
        raise InputError(f"--target {value[:80]!r}: not a usable path", field="--target")
    p = Path(value)
    try:
        resolved = p.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"--target {value}: {path_problem(p)}", field="--target") from None
    if not resolved.is_dir():
        raise InputError(f"--target {value}: not a directory (a target is a directory with a "
                         f"{COMPOSE_FILES[0]})", field="--target")
    if not any((resolved / n).is_file() for n in COMPOSE_FILES):
        raise InputError(f"--target {value}: no {COMPOSE_FILES[0]} in it", field="--target")
    return resolved


def _baseline(value: str | None) -> dict | None:
    """`--baseline DIR`, read and checked now: before the run writes anything, so it can never
    be a file this run is about to replace."""
    if value is None:
        return None
    from harness.report.results import ResultsFileError, load_results

    try:
        return load_results(Path(value))
    except ResultsFileError as exc:
        raise InputError(f"--baseline {value}: {exc}", field="--baseline") from None


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
    from harness.report.rundir import check_root

    return check_root(value)


def _say(text: str) -> None:
    print(f"continuum: {text}", file=sys.stderr, flush=True)


# ─────────────────────────────────── commands ───────────────────────────────────


def cmd_run(args: argparse.Namespace) -> int:
    from harness.loader import load_experiments

    # Every flag and file is checked before any Docker call and before anything is written.
    overrides = _image_overrides(args.image)
    report_root = _report_dir(args.report_dir)
    target = _target_flag(args.target)
    experiments = load_experiments([Path(p) for p in args.paths], target=target)
    if not experiments:
        raise InputError("no experiment files found in " + ", ".join(args.paths))
    _check_overrides(overrides, [e.target for e in experiments])
    experiments = _load_overrides(experiments, args)
    # What the targets accept but ignore is said once before the run, as `validate` says it.
    for w in dict.fromkeys(w for e in experiments for w in e.target.warnings):
        print(f"continuum: warning: {w}", file=sys.stderr)
    baseline = _baseline(args.baseline)
    if (args.trials or 1) > 1 or args.trial_budget is not None or (
            args.trials is None and any(e.trials > 1 for e in experiments)):
        return _run_trials(experiments, report_root, overrides, args, baseline=baseline)
    return _run_suite(experiments, report_root, overrides, args, baseline=baseline)


class _QuietFileHandler(logging.FileHandler):
    """A log file that cannot break the run: when the disk is full, records are dropped and
    the loss is said once at the end, never a logging traceback on stderr."""

    lost = 0

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        self.lost += 1


class _RunLog:
    """The run folder's continuum.log: everything the harness logs at INFO (DEBUG with -v),
    tracebacks included. Attached to the root logger for the length of the suite."""

    def __init__(self, path: Path, verbose: bool):
        self.path = path
        self.handler = _QuietFileHandler(path, encoding="utf-8", delay=False)
        self.handler.setLevel(logging.DEBUG if verbose else logging.INFO)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def __enter__(self) -> "_RunLog":
        root = logging.getLogger()
        root.addHandler(self.handler)
        root.setLevel(min(root.level, self.handler.level))
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.handler)
        try:
            self.handler.close()
        except OSError:
            self.handler.lost += 1
        if self.handler.lost:
            _say(f"{self.path} is incomplete: {self.handler.lost} record(s) could not be written")


def _run_suite(experiments, report_root: Path, overrides, args, pacer=None, keep_stack=False,
               baseline: dict | None = None) -> int:
    from harness.events import Events
    from harness.measure import suite_exit_code
    from harness.report import write_reports
    from harness.report.console import ConsoleReporter, print_summary
    from harness.report.journal import JOURNAL_FILE, Journal
    from harness.report.rundir import claim
    from harness.run import run_experiment, signals_as_interrupt

    run_dir = claim(report_root)                # a new folder: no other run's file is touched
    (run_dir / JOURNAL_FILE).open("x").close()  # created exclusively: never another run's journal
    args._run_log = run_dir / RUN_LOG
    results, records = [], []
    events = Events()
    ConsoleReporter(events, live=None if not getattr(args, "plain", False) else False)
    with _RunLog(run_dir / RUN_LOG, getattr(args, "verbose", False)), \
            Journal(run_dir / JOURNAL_FILE) as journal, signals_as_interrupt():
        journal.attach(events)
        try:
            for exp in experiments:
                try:
                    record, result = run_experiment(
                        exp, events=events, image_overrides=overrides, pacer=pacer, keep_stack=keep_stack,
                        artifacts_dir=run_dir / "artifacts")
                except InputError as exc:   # validated before any Docker call: here it is our bug
                    raise HarnessError(f"input problem found only during the run: {exc}") from exc
                records.append(record)
                results.append(result)
                write_reports(results, records, run_dir, baseline=baseline)
        except Interrupted as exc:
            record = getattr(exc, "record", None)
            if record is not None:
                records.append(record)
                results.append(exc.result)  # type: ignore[attr-defined]
                _write_quietly(write_reports, results, records, run_dir, baseline)
            print_summary(results)
            _say(f"{exc}: faults reverted, stack removed; reports in {run_dir}")
            return EXIT_INTERRUPTED
        except ReportWriteError as exc:
            log.error("%s", exc)
            print_summary(results)
            _say(f"harness error (not the system's failure): {exc}")
            _say(f"the suite stopped at experiment {len(results)} of {len(experiments)}; "
                 f"log in {run_dir / RUN_LOG}")
            return EXIT_HARNESS
    print_summary(results)
    _say(f"reports in {run_dir}/ (junit.xml, results.json, journal.jsonl, report.html; "
         f"{report_root / 'latest'} points here)")
    late = events.take_failures()          # a listener that failed on the last event of a run
    if late:
        for f in late:
            _say(f"harness error: {f}")
        return EXIT_HARNESS
    code = suite_exit_code(results)
    if code == EXIT_HARNESS:
        _say(f"harness error (not the system's failure): details in {run_dir / RUN_LOG}")
    return code


def _write_quietly(write, results, records, run_dir, baseline) -> None:
    try:
        write(results, records, run_dir, baseline=baseline)
    except ReportWriteError as exc:
        _say(str(exc))


def _run_trials(experiments, report_root: Path, overrides, args, baseline: dict | None = None) -> int:
    """`run --trials N` / `--trial-budget D` / files with `trials:`: each experiment is a trial
    set judged on intervals (harness.run.trials); reports are rewritten after every trial, into
    a run folder of its own (the same contract as `_run_suite`)."""
    from harness.events import Events
    from harness.measure import exit_code, worst_verdict
    from harness.report import write_reports
    from harness.report.console import ConsoleReporter, print_trial_summary
    from harness.report.journal import JOURNAL_FILE, Journal
    from harness.report.rundir import claim
    from harness.run import signals_as_interrupt
    from harness.run.trials import run_suite_trials

    run_dir = claim(report_root)
    (run_dir / JOURNAL_FILE).open("x").close()
    args._run_log = run_dir / RUN_LOG
    events = Events()
    ConsoleReporter(events, live=None if not getattr(args, "plain", False) else False)
    recorders: list = []

    def write(_=None) -> None:
        done = [r for r in recorders if r.results]
        write_reports([x for r in done for x in r.results], [x for r in done for x in r.records], run_dir,
                      baseline=baseline, trial_sets=[r.summary() for r in done])

    with _RunLog(run_dir / RUN_LOG, getattr(args, "verbose", False)), \
            Journal(run_dir / JOURNAL_FILE) as journal, signals_as_interrupt():
        journal.attach(events)
        try:
            run_suite_trials(experiments, trials=args.trials, budget_s=args.trial_budget, events=events,
                             image_overrides=overrides, recorders=recorders, on_trial=write)
        except Interrupted as exc:
            try:
                write()
            except ReportWriteError as wexc:
                _say(str(wexc))
            print_trial_summary([r.summary() for r in recorders if r.results])
            _say(f"{exc}: faults reverted, stack removed; reports in {run_dir}")
            return EXIT_INTERRUPTED
        except ReportWriteError as exc:
            log.error("%s", exc)
            print_trial_summary([r.summary() for r in recorders if r.results])
            _say(f"harness error (not the system's failure): {exc}")
            return EXIT_HARNESS
    sets = [r.summary() for r in recorders if r.results]
    print_trial_summary(sets)
    _say(f"reports in {run_dir}/ (junit.xml, results.json, journal.jsonl, report.html; "
         f"{report_root / 'latest'} points here)")
    late = events.take_failures()
    if late:
        for f in late:
            _say(f"harness error: {f}")
        return EXIT_HARNESS
    code = exit_code(worst_verdict(ts.verdict for ts in sets))
    if code == EXIT_HARNESS:
        _say(f"harness error (not the system's failure): details in {run_dir / RUN_LOG}")
    return code


def _trials_arg(value: str) -> int:
    from harness.model.experiment import MAX_TRIALS

    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of trials") from None
    if not 1 <= n <= MAX_TRIALS:
        raise argparse.ArgumentTypeError(f"{n} trials: must be 1 to {MAX_TRIALS}")
    return n


def _budget_arg(value: str) -> float:
    from harness.model.units import parse_duration

    try:
        s = parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if s <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be longer than zero")
    return s


def _seed_arg(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 <= n < 2**31:
        raise argparse.ArgumentTypeError(f"{n}: a seed is 0 to {2**31 - 1}")
    return n


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
    """Without a run id: only runs whose owner is provably gone (their lease ended), never a
    live run of another job, a detached stack or a run without a lease (harness.stack.lease)."""
    from harness.runid import check_run_id
    from harness.stack.cleanup import list_runs, remove_run
    from harness.stack.engine import connect

    run_id = check_run_id(args.run) if args.run else None      # bad input before the engine
    client = connect()
    runs = list_runs(client)
    kept: dict[str, list[str]] = {}
    if run_id is not None:
        if not any(r.run_id == run_id for r in runs):
            raise InputError(f"no run {run_id} (see `continuum ps`)", field="RUN")
        chosen = [run_id]
    else:
        chosen = []
        for r in runs:
            if args.all or r.state == "gone":
                chosen.append(r.run_id)
            else:
                kept.setdefault(r.state, []).append(r.run_id)
    for rid in chosen:
        t = time.monotonic()
        c, n = remove_run(client, rid)
        print(f"removed run {rid}: {c} containers, {n} networks in {time.monotonic() - t:.1f} s")
    if not chosen:
        print("nothing to remove")
    why = {"alive": "owner alive (another job's run)", "starting": "owner starting it",
           "detached": "detached (continuum up): remove with `continuum down RUN`",
           "unknown": "no lease, so its owner cannot be judged: remove with `continuum down RUN`"}
    for state, ids in sorted(kept.items()):
        print(f"kept {len(ids)} run(s), {why.get(state, state)}: {', '.join(ids)}")
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from harness.stack.cleanup import list_runs
    from harness.stack.engine import connect

    runs = list_runs(connect())
    if not runs:
        print("no Continuum runs")
        return 0
    print(f"{'RUN':12} {'TARGET':20} {'CONTAINERS':>10} {'RUNNING':>8} {'NETWORKS':>9}  {'OWNER':9} LABEL")
    for r in runs:
        print(f"{r.run_id:12} {r.target:20} {r.containers:>10} {r.running:>8} {r.networks:>9}  "
              f"{r.state:9} {r.owner}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import run_doctor

    return run_doctor(Path(args.target))


def cmd_report(args: argparse.Namespace) -> int:
    """Regenerate report.html next to the results.json it is made from (a run folder, or a
    directory of runs: its latest). The results file is checked first: exit 2 if it is bad."""
    from harness.report.html import REPORT_FILE, write_html
    from harness.report.results import load_results, results_path

    path = results_path(Path(args.results_dir))
    doc = load_results(path)                        # ResultsFileError: an InputError, exit 2
    target = path.parent / REPORT_FILE
    write_html(doc, target)
    print(f"wrote {target}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.report.compare import cmd_compare as compare

    return compare(Path(args.baseline), Path(args.candidate))


def cmd_init(args: argparse.Namespace) -> int:
    from harness.init import init_target, next_steps

    result = init_target(args.compose_file, args.dir)
    print(next_steps(result))
    return 0


def cmd_gameday(args: argparse.Namespace) -> int:
    from harness.gameday import OperatorConsole
    from harness.loader import load_experiment

    overrides = _image_overrides(args.image)
    report_dir = _report_dir(args.report_dir)
    exp = load_experiment(Path(args.experiment))
    _check_overrides(overrides, [exp.target])
    args.plain = True  # prompts and a live panel would fight over the terminal
    with OperatorConsole(exp) as pacer:
        return _run_suite([exp], report_dir, overrides, args, pacer=pacer, keep_stack=args.keep)


def cmd_explore(args: argparse.Namespace) -> int:
    """`continuum explore TARGET`: search the target's fault space (harness.explore, docs/explore.md)."""
    from harness.events import Events, Message
    from harness.explore.candidates import Params, generate
    from harness.explore.explorer import SUMMARY_FILE, explore
    from harness.explore.findings import summary_text, write_summary
    from harness.explore.runner import StackRunner
    from harness.loader import load_target
    from harness.run import signals_as_interrupt

    # Every flag is checked before any Docker call and before anything is written.
    overrides = _image_overrides(args.image)
    target = load_target(Path(args.target))
    _check_overrides(overrides, [target])
    declared = [i.name for i in target.durability.invariants] if target.durability else []
    invariants = None
    if args.invariants is not None:
        invariants = tuple(n for n in args.invariants.split(",") if n)
        unknown = [n for n in invariants if n not in declared]
        if unknown:
            raise InputError(f"--invariants: {', '.join(unknown)} not declared by target {target.name!r} "
                             f"(declared: {', '.join(declared) or 'none'})", field="--invariants")
    if not target.load_profiles:
        raise InputError(f"target {target.name!r} offers no load profiles (x-continuum.load): "
                         "explore needs load to judge a fault", field="TARGET")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty directory (findings are never "
                         "written over another search's)", field="--out")
    params = Params(invariants=invariants, window_s=args.window)
    cands = generate(target, args.seed, with_pairs=not args.no_pairs)
    events = Events()
    events.subscribe(lambda m: m.level != "info" and _say(m.text), Message)
    _say(f"exploring {target.name}: {len(cands)} candidates, budget {args.budget:.0f} s, seed {args.seed}, "
         f"{args.stack} stack; findings in {out}/found/")
    with signals_as_interrupt(), StackRunner(target, args.stack, events, overrides) as runner:
        try:
            summary = explore(target, budget_s=args.budget, seed=args.seed, out_dir=out, run=runner.run,
                              params=params, candidates=cands, confirm=args.confirm, events=events,
                              stack=args.stack, say=_say, max_candidates=args.max_candidates,
                              dedup=not args.all_failures)
        except Interrupted as exc:
            s = getattr(exc, "summary", None)
            if s is not None:
                print(summary_text(s))
            _say(f"{exc}: faults reverted, stack removed; what was found is in {out}")
            return EXIT_INTERRUPTED
        summary.stacks_up = runner.ups
    write_summary(out / SUMMARY_FILE, summary)
    print(summary_text(summary))
    _say(f"summary in {out / SUMMARY_FILE}")
    if summary.findings:
        return 1
    judged = summary.passed + summary.failed
    if not judged:
        _say("harness error (not the system's failure): no candidate could be judged", )
        return EXIT_HARNESS
    return 0


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
    sp.add_argument("--report-dir", default="reports",
                    help="a directory of runs: each run writes a new folder in it and `latest` "
                         "points to the newest (default reports)")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE", help="override a service's image")
    sp.add_argument("--baseline", metavar="DIR", help="a previous report dir to compare against in report.html")
    sp.add_argument("--target", metavar="TARGET", help="run the experiments against this target instead of their own")
    sp.add_argument("--plain", action="store_true", help="one line per event even on a terminal")
    sp.add_argument("--trials", type=_trials_arg, metavar="N",
                    help="run each experiment N times and judge every assertion on a confidence interval")
    sp.add_argument("--trial-budget", type=_budget_arg, metavar="DURATION",
                    help="e.g. 30m: after a few trials each, spend the time where verdicts are closest to their thresholds")

    sp.add_argument("--load-workers", type=_load_workers_arg, metavar="N",
                    help="load worker processes for every experiment (its load.workers): 1, N or auto")
    sp.add_argument("--remote-load-workers", type=_remote_workers_arg, default=0, metavar="M",
                    help="also wait for M workers started elsewhere with `continuum load-worker`")
    sp.add_argument("--load-master", type=_master_arg, metavar="HOST:PORT",
                    help="where the load master listens (default 127.0.0.1 on a free port)")

    sp = add("load-worker", cmd_load_worker, "a load worker joining a run's Locust master, e.g. on "
                                             "another machine (docs/scaling.md)")
    sp.add_argument("--master", required=True, type=_master_arg, metavar="HOST:PORT",
                    help="the address the run's master listens on (continuum run --load-master)")
    sp.add_argument("target", metavar="TARGET", help="the target folder (its locustfile is used)")
    sp.add_argument("profile", metavar="PROFILE", help="the experiment's load profile")

    sp = add("validate", cmd_validate, "check experiment files; touches nothing")
    sp.add_argument("paths", nargs="+", metavar="FILE")
    add("schema", cmd_schema, "print the JSON Schema of experiment files")
    sp = add("plan", cmd_plan, "print the timeline an experiment would run; touches nothing")
    sp.add_argument("paths", nargs="+", metavar="FILE")

    sp = add("init", cmd_init, "write a target folder (x-continuum, a load profile, a starter "
                               "suite) for an existing Compose file; never overwrites")
    sp.add_argument("compose_file", metavar="COMPOSE_FILE")
    sp.add_argument("--dir", metavar="DIR", help="where to write it (default: continuum/ beside "
                                                 "the Compose file)")

    sp = add("up", cmd_up, "bring a target up (detached unless --hold) and print its run id")
    sp.add_argument("target", metavar="TARGET")
    sp.add_argument("--run-id")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE")
    sp.add_argument("--hold", action="store_true", help="stay in the foreground; tear down on Ctrl-C/SIGTERM")
    sp = add("down", cmd_down, "remove a run's containers and networks (default: only runs whose "
                               "owner is provably gone)")
    sp.add_argument("run", nargs="?", metavar="RUN")
    sp.add_argument("--all", action="store_true",
                    help="every run on the engine, live runs of other jobs and detached stacks included")
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
    sp = add("explore", cmd_explore, "search a target's fault space for failures and shrink each to a "
                                     "minimal experiment file (docs/explore.md); exit 1 when it found any")
    sp.add_argument("target", metavar="TARGET")
    sp.add_argument("--budget", type=_budget_arg, default=1800.0, metavar="DURATION",
                    help="wall time for the search, e.g. 30m (default 30m); no candidate is started "
                         "that would overrun it")
    sp.add_argument("--seed", type=_seed_arg, default=0, metavar="N", help="orders and picks; the same seed replays")
    sp.add_argument("--invariants", metavar="NAME,...",
                    help="the target's invariants to check (default: every one it declares)")
    sp.add_argument("--out", default="explore", metavar="DIR", help="a new or empty directory (default explore)")
    sp.add_argument("--stack", choices=("reused", "fresh"), default="reused",
                    help="one stack settled between candidates (default), or a fresh stack each")
    sp.add_argument("--confirm", type=_trials_arg, default=3, metavar="N",
                    help="runs confirming each shrunk finding (default 3; a finding fails 2 of 3)")
    sp.add_argument("--window", type=_budget_arg, default=10.0, metavar="DURATION",
                    help="each fault's window before shrinking (default 10s)")
    sp.add_argument("--max-candidates", type=_trials_arg, metavar="N", help="try at most the first N candidates")
    sp.add_argument("--no-pairs", action="store_true", help="single faults only")
    sp.add_argument("--all-failures", action="store_true",
                    help="shrink every failure, even one repeating a finding's component and invariant")
    sp.add_argument("--image", action="append", default=[], metavar="SERVICE=IMAGE")
    return p


class _NoTracebackFormatter(logging.Formatter):
    """One line per record on the terminal; tracebacks go to the log file (and with -v here)."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def _load_workers_arg(text: str) -> int | str:
    from harness.model.experiment import MAX_LOAD_WORKERS

    if text == "auto":
        return text
    if not text.isdigit() or not 1 <= int(text) <= MAX_LOAD_WORKERS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_LOAD_WORKERS} or auto, got {text!r}")
    return int(text)


def _remote_workers_arg(text: str) -> int:
    from harness.model.experiment import MAX_LOAD_WORKERS

    if not text.isdigit() or not 0 <= int(text) <= MAX_LOAD_WORKERS:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_LOAD_WORKERS}, got {text!r}")
    return int(text)


def _master_arg(text: str) -> str:
    from harness.load.config import split_address

    try:
        host, port = split_address(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if port == 0:
        raise argparse.ArgumentTypeError(f"the master's port is needed, got {text!r}")
    return text


def _load_overrides(experiments: list, args: argparse.Namespace) -> list:
    """--load-workers, --remote-load-workers, --load-master onto every experiment's load."""
    update: dict = {}
    if args.load_workers is not None:
        update["workers"] = args.load_workers
    if args.remote_load_workers:
        if args.load_master is None:
            raise InputError("--remote-load-workers needs --load-master HOST:PORT (an address the "
                             "remote workers reach, with a fixed port)")
        update["remote_workers"] = args.remote_load_workers
    if args.load_master is not None:
        update["master_bind"] = args.load_master
    if not update:
        return experiments
    return [e.model_copy(update={"load": e.load.model_copy(update=update)}) for e in experiments]


def cmd_load_worker(args: argparse.Namespace) -> int:
    """Become a load worker (exec: this process turns into it, gevent and all)."""
    from harness.loader import load_target

    target = load_target(Path(args.target))         # InputError: exit 2, file:line:column
    if args.profile not in target.load_profiles or target.load_profile is None:
        raise InputError(f"profile: {target.name!r} offers no load profile {args.profile!r}; it offers: "
                         f"{', '.join(target.load_profiles) or 'none'}")
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "harness.load.distributed", "--master", args.master,
                               "--locustfile", str(Path(target.load_profile).resolve()),
                               "--user-class", args.profile], env)
    return 0        # not reached


def _console_logging(verbose: bool) -> None:
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_continuum_console", False)]:
        root.removeHandler(h)               # main() called again in one process (tests)
    console = logging.StreamHandler(sys.stderr)
    console._continuum_console = True       # type: ignore[attr-defined]
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if verbose
                         else _NoTracebackFormatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _traceback_file(args: argparse.Namespace, exc: BaseException) -> str:
    """Where the traceback of an unexpected exception goes: the run's log when a run folder
    exists, else a file of its own under the temp directory. Returns the path as text."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    run_log = getattr(args, "_run_log", None)
    candidates = [run_log] if run_log is not None else []
    import tempfile

    stamp = time.strftime("%Y%m%dT%H%M%S")
    candidates.append(Path(tempfile.gettempdir()) / "continuum" /
                      f"{getattr(args, 'command', 'continuum')}-{stamp}-{os.getpid()}.log")
    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} harness error in "
                         f"`continuum {getattr(args, 'command', '')}`\n{text}")
            return str(path)
        except OSError:
            continue
    sys.stderr.write(text)              # nowhere to write it: the disk is full or read-only
    return "stderr (above)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)          # a bad flag: argparse's message, exit 2
    _console_logging(args.verbose)
    try:
        return int(args.fn(args))
    except InputError as exc:
        print(f"continuum: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Interrupted as exc:
        _say(str(exc))
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except ContinuumError as exc:
        where = _traceback_file(args, exc)
        print(f"continuum: harness error (not the system's failure): {exc}; details in {where}",
              file=sys.stderr)
        return EXIT_HARNESS
    except Exception as exc:  # noqa: BLE001 - the contract: anything unexpected is a harness ERROR
        where = _traceback_file(args, exc)
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"continuum: harness error (not the system's failure): unexpected "
              f"{type(exc).__name__}{': ' + text if text else ''}; traceback in {where}", file=sys.stderr)
        return EXIT_HARNESS


if __name__ == "__main__":
    raise SystemExit(main())
