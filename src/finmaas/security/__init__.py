"""Security: API keys, principals and roles, grants, limits and quotas, usage metering."""
