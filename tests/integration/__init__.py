"""Integration lane: real PostgreSQL, Redis and Celery worker (run through ``python -m tests.integration.services``)."""
