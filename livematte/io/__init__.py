"""The I/O edge: where frames come from and where they go.

``base`` holds the two contracts (:class:`~livematte.io.base.Source`,
:class:`~livematte.io.base.Sink`); the sources are ``sources`` (video files, image sequences),
``synthetic`` and ``capture`` (cameras, streams); the sinks are ``sinks`` (images, PNG
sequences, memory, null), ``video_sink``, ``live_sinks`` (virtual camera, network stream) and
``window``, all named in the table ``table``.  Nothing here imports a pipeline stage or a
runner; modules are imported one by one (PyAV, OpenCV's GUI and pyvirtualcam load only when
used).
"""
