"""Registry events -> desired deployments -> reconciled deployments (see README, "Registry hooks").

* :mod:`.policy`: the deploy policy (YAML), validated with file and line.
* :mod:`.store`: the controller's state (deployments and their leases, events, the audit log).
* :mod:`.registry`: the version a rule wants, and the status tags written back.
* :mod:`.targets`: the deployment targets behind one interface.
* :mod:`.reconcile`: one level-triggered pass for one deployment, under its lease.
* :mod:`.controller`: the loop (wake-ups, polling, a worker pool).
* :mod:`.receiver`: the webhook receiver and wake-up endpoint.
* :mod:`.app`: ``mlflow server --app-name registry-hooks``.
"""
