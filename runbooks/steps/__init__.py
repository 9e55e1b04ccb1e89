"""The step library: ``registry`` (the ``@step`` decorator and ``catalog()``), then one module per concern:
``backup`` (keep what a later step destroys), ``recreate`` (delete the VM and build it again), ``power``
(start, deallocate, restart, redeploy, resize, update a property)."""
