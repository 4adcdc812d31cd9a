"""The stages: each turns a Frame into a Frame from its own slice of the config, and the
networks one stage drives sit next to it."""
