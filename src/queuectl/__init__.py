"""queuectl: a command-line background job queue."""

__version__ = "0.1.0"
