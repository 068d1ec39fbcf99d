"""The measurements behind `flowergan bench` (one module per area, timing helpers in `tools`); not to be
confused with the repository's bench/ scripts, which make the figures of docs/BENCHMARKS.md. They sit on top
of the library like the CLI: no library area imports them."""
