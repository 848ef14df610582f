"""Deploy checks: validates deploy/ and docker-compose.yml without a cluster or a Docker engine.

One module per family (kubernetes, prometheus, grafana, compose), each with pure functions that
return problems, plus `cli` which runs them against the repository and prints one line each.
"""
