"""Control plane: ``/api`` routes for keys, model inventory and promotion, jobs, usage, audit."""
