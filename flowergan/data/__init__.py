"""Datasets: prepare photos into the official zip layout, render procedural flowers, read them for training.

Modules: `prepare` (any photo source -> dataset zip), `synthetic` (procedural flowers), `download`
(Oxford 102), `dataset` (`ImageDataset`, `InfiniteSampler`), `loader` (batches for training). This package
imports nothing else from flowergan.
"""
