"""Pure algorithms under the stages: arrays in, arrays out; no config, no sessions, no I/O."""
