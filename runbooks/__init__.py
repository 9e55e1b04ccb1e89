"""azure-rca-runbooks: scripted remediations for Azure self-help RCA articles.

The library never imports invoke; ``tasks.py`` is the CLI on top of it.
"""

__version__ = "0.1.0"
