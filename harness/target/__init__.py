"""What a target offers at run time, beyond its containers: live roles (which instance is the
primary right now) and the durability read-back (what the system holds after the run).

The target's *shape* (its Compose file and x-continuum block) is `harness.model.target`; loading
it from disk is `harness.loader.load_target`.
"""
