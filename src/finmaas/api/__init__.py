"""Control plane: ``/api`` routes for keys, model inventory and promotion, usage, audit."""
