"""Plug-ins of the Dagster instance (dagster.yaml), installed with the project.

Every Dagster process loads its instance before any code location (the webserver, the daemon, `dagster job
execute`, each run worker), so a class named in dagster.yaml must be importable from site-packages, not only from
the repo root as assets/, jobs/ and resources/ are. This package is the one the project installs.
"""
