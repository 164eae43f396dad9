"""pytest plugin: experiment files as test items, and fixtures for experiments in Python.

    pytest experiments/ --junitxml=reports/pytest.xml -k kill -x

Every YAML file under a directory named `experiments` (or any path given with
`--continuum-experiments`) whose `kind` is Experiment becomes one item; the item fails with the
SLO assertions that failed, errors when the harness broke (pytest's own "error" outcome is for
fixtures, so a harness failure is reported as a failure whose message starts with ERROR),
and is skipped as INCONCLUSIVE when there was too little evidence. So pytest's `--junitxml`,
`-k` and `-x` work as usual.

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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("continuum")
    group.addoption(REPORT_DIR_OPTION, default=None, help="also write Continuum's own reports here")
    group.addoption(
        "--continuum-experiments", action="store_true", help="collect experiment YAML files outside experiments/ too"
    )


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
    try:
        head = path.read_text(errors="replace")[:4000]
    except OSError:
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
    pass


class ExperimentItem(pytest.Item):
    def __init__(self, *, experiment, **kw):
        super().__init__(**kw)
        self.experiment = experiment
        self.result = None

    def runtest(self) -> None:
        from harness.measure import Verdict
        from harness.run import run_experiment

        record, result = run_experiment(self.experiment)
        self.result = result
        self.user_properties.append(("verdict", result.verdict.value))
        for a in result.assertions:
            self.user_properties.append((f"{a.scope}:{a.key}", a.message))
        out_dir = self.config.getoption(REPORT_DIR_OPTION)
        if out_dir:
            from harness.report import write_reports

            write_reports([result], [record], Path(out_dir) / self.experiment.name)
        if result.verdict == Verdict.PASS:
            return
        if result.verdict == Verdict.INCONCLUSIVE:
            pytest.skip("INCONCLUSIVE: " + "; ".join(result.reasons))
        prefix = "ERROR (harness, not the system)" if result.verdict == Verdict.ERROR else "FAIL"
        raise ExperimentFailed(f"{prefix}: " + "; ".join(result.reasons))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ExperimentFailed):
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
    def __init__(self, stack, gen):
        self.stack, self.gen, self.t0 = stack, gen, gen.t_start or time.monotonic()

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
            load=None, source=None)
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
        return _LoadHandle(stack, gen)

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
