"""The CLI's subcommands; importing this package registers them (``livematte.commands.base``).

Import order is the order ``livematte --help`` lists them.
"""

from livematte.commands import image, video, cam, serve  # noqa: F401, I001
