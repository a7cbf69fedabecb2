"""OIDC authentication reverse proxy: server-side sessions in Redis, logout that really logs out."""
