"""The Docker backend: images, networks, containers, the run's Toxiproxy, reaper and janitor."""
