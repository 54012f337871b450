"""The append engine: S3 recordings into one Symbl conversation, in order, each part exactly once.

One module per concern, the operator (``symbl_airflow.operators.append``) only wires them:

* :mod:`~symbl_airflow.appends.ledger`: the ledger's records (parts, lease, writer) and its mutations;
* :mod:`~symbl_airflow.appends.stores`: where a ledger lives (S3 object, task state) with conditional writes;
* :mod:`~symbl_airflow.appends.plan`: the pure decision of the next step (no I/O; table-tested);
* :mod:`~symbl_airflow.appends.run`: one execution's state and one small method per planned action;
* :mod:`~symbl_airflow.appends.lease`: keeping the lease alive (and fenced) while a part uploads;
* :mod:`~symbl_airflow.appends.messages`: every remediation text;
* :mod:`~symbl_airflow.appends.cli`: ``python -m symbl_airflow.ledger``.
"""
