"""Pipeline stages: sources, matting, temporal filters, keypoints, effects, compose and sinks.

Each stage takes its settings in ``__init__`` and one ``Frame`` per ``process(frame)`` call,
fills its own fields, and offers ``reset()`` and ``close()``.
"""
