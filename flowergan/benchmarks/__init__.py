"""Benchmarks behind `flowergan bench` (one module per area, timing helpers in `tools`). They sit on top of
the library like the CLI: no library area imports them."""
