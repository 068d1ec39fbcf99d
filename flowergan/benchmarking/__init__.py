"""The measurements behind `flowergan bench` (not the scripts in bench/); only the CLI imports them.

One module per area, timing helpers in `tools`. The repository's bench/ scripts make the figures of
docs/BENCHMARKS.md; these functions are the ones `flowergan bench` runs, and tests call them."""
