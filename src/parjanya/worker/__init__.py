"""The worker runtime the Celery tasks call: context, admission, dispatch, feeders, lease, reaper,
dead letters, chain assembly. It never imports `parjanya.tasks`."""
