"""The web dashboard (`queuectl dashboard`): a starlette app over the Queue service
API.  Nothing here is imported unless the dashboard runs."""
