"""Bulk import of clients: a file streamed to disk, then read and written in batches by a background task."""
