"""Celery/kombu extension points that keep unreadable messages from killing or looping a worker."""
