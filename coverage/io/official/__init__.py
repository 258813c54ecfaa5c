"""Official open data, one job per module.

- :mod:`~coverage.io.official.sources`: the one table of official URLs;
- :mod:`~coverage.io.official.cache`: the download cache and its index;
- :mod:`~coverage.io.official.fetch`: downloads (resume, retries, checksums);
- :mod:`~coverage.io.official.readers`: reading the official files as published;
- :mod:`~coverage.io.official.territory`: a département's communes, clip area and roads;
- :mod:`~coverage.io.official.prepare`: ``prepare``, the official files → the input
  contracts.

The ``fetch`` and ``prepare`` commands themselves (arguments, printing) are in
:mod:`coverage.cli.official`.
"""

__all__: list[str] = []
