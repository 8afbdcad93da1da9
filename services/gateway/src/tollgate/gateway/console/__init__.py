"""The web console: static assets served by the gateway at /console (see docs/console.md)."""
