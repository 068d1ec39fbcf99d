"""Datasets: prepare images into the official StyleGAN2-ADA zip layout, render procedural flowers, read for training.

Modules: `prepare` (any photo source -> dataset zip), `synthetic` (procedural flowers), `download` (Oxford 102),
`dataset` (`ImageDataset`, `InfiniteSampler`), `bench` (`run_bench`). This package imports nothing else from flowergan.
"""
