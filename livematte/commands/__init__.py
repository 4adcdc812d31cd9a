"""The processing fronts of the CLI; importing this package registers their subcommands."""

from livematte.commands import cam, image, video  # noqa: F401
