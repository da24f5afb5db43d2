"""Stage orchestrators: each reads the config, builds components, calls the library, writes the
run directory. ``python -m dreamdance.run stage=<name>`` runs ``stages/<name>.py``'s ``run``."""
