# The two commands of the README. Each does its own set-up first (scripts/setup.sh).
.PHONY: suite test setup

# The main job: images, the reference target, the standard experiment suite, reports/.
suite:
	bash scripts/setup.sh
	.venv/bin/continuum run experiments/ --report-dir reports/suite

# Unit tests (fake backend) and integration tests (real Docker, Toxiproxy, Locust).
test:
	bash scripts/setup.sh --test
	CONTINUUM_SHORT=1 .venv/bin/pytest -p no:cacheprovider --durations=30 tests/

setup:
	bash scripts/setup.sh
