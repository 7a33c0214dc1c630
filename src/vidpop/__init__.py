"""vidpop: predict, explain and recommend online videos.

The package is layered: ``data`` (schema, adapters, splits, labels) -> ``features``
(pretrained encoders, cached feature store) -> ``models`` (one module per method, plus
baselines) -> ``training`` (loop, metrics, distributed) -> ``explain`` -> ``serve`` -> ``cli``.
"""

__version__ = "0.1.0"
