"""Command-line interface (click). Nothing in the library imports this package."""
