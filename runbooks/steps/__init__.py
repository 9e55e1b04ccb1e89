"""The step library: the catalogue (``catalog``), the planners (``backup``, ``recreate``, ``verify``)."""
