"""pytest plugin: experiment files as test items, and fixtures for experiments in Python.

    pytest experiments/ --junitxml=reports/pytest.xml -k kill -x

Every YAML file under a directory named `experiments` (or any path given with
`--continuum-experiments`) whose `kind` is Experiment becomes one item. The experiment runs in
the item's setup and is judged in its call, so the outcomes keep Continuum's contract:

    FAIL (an SLO missed)            the item *fails*: JUnit <failure> with the measured value
    ERROR (the harness broke)       the item *errors* in setup: JUnit <error>, never <failure>
    INCONCLUSIVE                    the item is skipped, with the reason
    bad experiment file             a collection error with file:line:column (pytest exits 2)

and pytest's exit code follows the suite rule (ERROR outranks FAIL): a session in which a
Continuum item errored, or a `HarnessError` escaped a test or fixture, exits 3 instead of 1.
pytest's `--junitxml`, `-k` and `-x` work as usual. `--continuum-report-dir DIR` also writes
Continuum's own reports, into a new run folder of DIR (with `latest`), as `continuum run` does.

Fixtures for writing an experiment in Python:

    def test_kill_one_app(continuum_stack, continuum_load, continuum_fault):
        stack = continuum_stack("targets/reference")
        load = continuum_load(stack, profile="ledger", users=20)
        with continuum_fault(stack, "container.kill", service="app"):
            time.sleep(5)
        record = load.finish()
        assert record.overall.availability >= 0.999
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REPORT_DIR_OPTION = "--continuum-report-dir"
EXIT_HARNESS = 3
_harness_error = pytest.StashKey[bool]()
_suite = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("continuum")
    group.addoption(REPORT_DIR_OPTION, default=None, help="also write Continuum's own reports here")
    group.addoption(
        "--continuum-experiments", action="store_true", help="collect experiment YAML files outside experiments/ too"
    )


def pytest_configure(config: pytest.Config) -> None:
    out = config.getoption(REPORT_DIR_OPTION, default=None)
    config.stash[_harness_error] = False
    config.stash[_suite] = {"root": None, "dir": None, "results": [], "records": []}
    if out:
        from harness.errors import InputError
        from harness.report.rundir import check_root

        try:
            config.stash[_suite]["root"] = check_root(out, flag=REPORT_DIR_OPTION)
        except InputError as exc:       # bad input: exit 2 before anything runs or is written
            pytest.exit(f"continuum: error: {exc}", returncode=2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    from harness.errors import HarnessError

    if isinstance(call.excinfo.value, (HarnessError, HarnessItemError)):
        item.config.stash[_harness_error] = True


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # ERROR outranks FAIL, as in a suite: red because the harness broke is not "tests failed".
    if session.config.stash.get(_harness_error, False) and int(exitstatus) == int(pytest.ExitCode.TESTS_FAILED):
        session.exitstatus = EXIT_HARNESS


def _is_experiment_file(path: Path, config: pytest.Config) -> bool:
    if path.suffix not in (".yaml", ".yml"):
        return False
    if not config.getoption("--continuum-experiments"):
        try:
            parts = path.relative_to(config.rootpath).parts
        except ValueError:
            parts = path.parts
        # A suite is the files directly in a folder named experiments (subfolders such as
        # experiments/fragile are suites of their own: name them with --continuum-experiments);
        # the project's own test corpora (tests/**) hold broken files on purpose.
        if len(parts) < 2 or parts[-2] != "experiments" or "tests" in parts:
            return False
    from harness.errors import InputError
    from harness.yamlsafe import read_regular_file

    try:        # never blocks: a FIFO or a device named *.yaml is not read (nor collected)
        head = read_regular_file(path).decode("utf-8", errors="replace")[:4000]
    except InputError:
        return False
    return "kind: Experiment" in head


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if _is_experiment_file(file_path, parent.config):
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


class ExperimentFile(pytest.File):
    def collect(self):
        from harness.loader import load_experiment

        # A bad file is a collection error with the loader's file:line:column message.
        experiment = load_experiment(self.path)
        yield ExperimentItem.from_parent(self, name=experiment.name, experiment=experiment)


class ExperimentFailed(Exception):
    """The system missed its SLOs: the item fails (JUnit <failure>)."""


class HarnessItemError(Exception):
    """The harness broke while running the experiment: the item errors (JUnit <error>)."""


class ExperimentItem(pytest.Item):
    def __init__(self, *, experiment, **kw):
        super().__init__(**kw)
        self.experiment = experiment
        self.result = None

    def setup(self) -> None:
        """Run the experiment. Anything that goes wrong here is the harness's, never the system's."""
        from harness.errors import Interrupted
        from harness.measure import Verdict
        from harness.run import run_experiment

        try:
            record, result = run_experiment(self.experiment)
        except Interrupted as exc:
            raise KeyboardInterrupt(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - the contract: an unexpected error is ERROR
            raise HarnessItemError(f"ERROR (harness, not the system): unexpected "
                                   f"{type(exc).__name__}: {exc}") from exc
        self.result = result
        self.user_properties.append(("verdict", result.verdict.value))
        for a in result.assertions:
            self.user_properties.append((f"{a.scope}:{a.key}", a.message))
        self._write_reports(record, result)
        if result.verdict == Verdict.ERROR:
            raise HarnessItemError("ERROR (harness, not the system): " + "; ".join(result.reasons))

    def _write_reports(self, record, result) -> None:
        suite = self.config.stash[_suite]
        if suite["root"] is None:
            return
        from harness.errors import ReportWriteError
        from harness.report import write_reports
        from harness.report.rundir import claim

        if suite["dir"] is None:
            suite["dir"] = claim(suite["root"])
        suite["results"].append(result)
        suite["records"].append(record)
        try:
            write_reports(suite["results"], suite["records"], suite["dir"])
        except ReportWriteError as exc:
            raise HarnessItemError(f"ERROR (harness, not the system): {exc}") from exc

    def runtest(self) -> None:
        from harness.measure import Verdict

        result = self.result
        if result is None or result.verdict == Verdict.PASS:
            return
        if result.verdict == Verdict.INCONCLUSIVE:
            pytest.skip("INCONCLUSIVE: " + "; ".join(result.reasons))
        raise ExperimentFailed("FAIL: " + "; ".join(result.reasons))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (ExperimentFailed, HarnessItemError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"experiment {self.experiment.name}"


# ─────────────────────────────── fixtures for Python experiments ───────────────────────────────


@pytest.fixture
def continuum_stack():
    """`continuum_stack(target_path, **kw) -> Stack`, up and healthy; torn down after the test."""
    from harness.loader import load_target
    from harness.stack.engine import connect
    from harness.stack.images import ensure_images
    from harness.stack.stack import Stack

    stacks = []

    def make(target_path, **kw):
        target = load_target(Path(target_path))
        client = connect()
        ensure_images(client, [target])
        stack = Stack(target, client=client, **kw).__enter__()
        stacks.append(stack)
        return stack

    yield make
    for stack in reversed(stacks):
        stack.__exit__(None, None, None)


class _LoadHandle:
    def __init__(self, stack, gen, load):
        self.stack, self.gen, self.t0 = stack, gen, gen.t_start or time.monotonic()
        self.load = load                # the LoadSpec it was started with (closed-loop pace)

    def finish(self):
        """Stop load and return the measured metrics (harness.measure Result without SLOs)."""
        from harness.measure import evaluate
        from harness.model.experiment import Experiment
        from harness.model.record import Phase, RunRecord

        self.gen.stop()
        t_end = time.monotonic()
        samples = self.gen.samples()
        exp = Experiment.model_construct(
            name="python-experiment", description="-", target=self.stack.target, duration_s=t_end - self.t0,
            faults=(), slo=(), steady_state=(), abort_if=None, recovery_window_s=3.0, min_samples=1,
            load=self.load, source=None, probes=(), trials=1, source_text=None)
        record = RunRecord(
            experiment=exp, run_id=self.stack.run_id, started_at="", t0=self.t0, t_end=t_end,
            samples=tuple(s for s in samples if s.t >= self.t0), phases=(Phase("baseline", self.t0, t_end),),
            faults=(), writes=self.gen.writes(),
        )
        return evaluate(record)


@pytest.fixture
def continuum_load():
    """`continuum_load(stack, profile, users=10, ...) -> handle`; `handle.finish()` → Result."""
    from harness.load.runner import LoadGenerator

    gens = []

    def make(stack, profile, users=10, spawn_rate=None, request_timeout_s=2.0, max_duration_s=600):
        endpoints = stack.endpoints()
        gen = LoadGenerator(
            stack.target.load_profile, profile, host=endpoints[0], users=users, spawn_rate=spawn_rate or users,
            request_timeout_s=request_timeout_s, max_duration_s=max_duration_s,
            env={"CONTINUUM_ENDPOINTS": ",".join(endpoints)},
        )
        gen.start()
        gens.append(gen)
        from harness.model.experiment import LoadSpec

        load = LoadSpec.model_construct(profile=profile, mode="closed", rate=None, users=users,
                                        spawn_rate=spawn_rate or users, request_timeout_s=request_timeout_s,
                                        host=None)
        return _LoadHandle(stack, gen, load)

    yield make
    for gen in gens:
        try:
            gen.stop()
        except Exception:
            pass


@pytest.fixture
def continuum_fault():
    """`with continuum_fault(stack, action, **fields):` injects a fault for the block and
    reverts it (confirmed) on exit, whatever happens inside.

    Fields are written as in an experiment file (`link="lb->app-1"`, `latency="300ms"`,
    `select={"service": "app"}`) and checked by the same rules; `service=`, `role=`, `pick=`
    and `seed=` are shortcuts for `select`. The window is the `with` block (`for` defaults to
    the longest allowed)."""
    from harness.faults import build
    from harness.faults.base import MAX_FAULT_WINDOW_S, FaultContext

    @contextmanager
    def fault(stack, action, *, service=None, role=None, pick=None, seed=None, **fields):
        if service or role:
            select = {"service": service} if service else {"role": role}
            if pick is not None:
                select["pick"] = pick
            if seed is not None:
                select["seed"] = seed
            fields["select"] = select
        spec_cls = __import__("harness.faults", fromlist=["actions"]).actions().get(action)
        if spec_cls is not None and "for" in spec_cls.input_keys() and "for" not in fields:
            fields["for"] = f"{int(MAX_FAULT_WINDOW_S)}s"
        spec = build(action, fields, stack.target)
        injection = spec.inject(FaultContext(stack=stack, run_id=stack.run_id))
        try:
            yield injection
        finally:
            injection.revert()

    return fault
