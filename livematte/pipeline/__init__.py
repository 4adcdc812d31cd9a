"""Pipeline stages: matting, temporal filters, keypoints, effects, compose (sources and sinks
are the I/O edge, ``livematte.io``).

Each stage takes its settings in ``__init__`` and one ``Frame`` per ``process(frame)`` call,
fills its own fields, and offers ``reset()`` and ``close()``.
"""
